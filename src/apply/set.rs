//! One `infra apply` of an environment as an ApplySet: preflight, apply of the members and
//! their parent, prune of what left the plan, wait. `cmd/apply.rs` only parses and prints.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Outcome, Result, applyset, preflight, prune, wait};
use crate::build::{self, Kind, Object};
use crate::pipeline::Built;

/// How to apply.
#[derive(Clone, Debug)]
pub struct Options {
    /// Server-side dry run: nothing is persisted, no wait.
    pub dry_run: bool,
    /// Keep objects that left the plan.
    pub prune: bool,
    /// Wait for readiness, up to this long (`None`: do not wait).
    pub wait: Option<Duration>,
}

/// What a finished apply did.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per applied or pruned object, in order.
    pub outcomes: Vec<Outcome>,
}

/// Applies `built` (environment `env_name`) with `options`, reporting each object as it goes
/// through `report` and each wait step through `progress`.
pub async fn run(
    client: &kube::Client,
    built: &Built,
    env_name: &str,
    options: &Options,
    mut report: impl FnMut(&Outcome),
    mut progress: impl FnMut(&str),
) -> Result<Report> {
    let env = &built.env;
    let objects = &built.objects;
    let namespace = env.namespace.as_str();
    preflight::check_secrets(client, namespace, &env.proxy.secret_refs()).await?;

    // The ApplySet parent records the union of what the cluster may hold (its old record)
    // and what we are about to apply, until prune has removed what left the plan.
    let id = build::applyset::id(env);
    let parent_name = build::applyset::parent_name(env);
    let members: BTreeSet<String> = objects
        .iter()
        .filter(|o| o.kind_of().prunable())
        .map(|o| o.kind_of().meta().group_kind())
        .collect();
    let recorded = applyset::recorded_kinds(client, namespace, &parent_name, &id).await?;
    let superset: BTreeSet<String> = members.union(&recorded).cloned().collect();
    let parent = |kinds| Object::ConfigMap(build::applyset::parent(env, env_name, kinds));
    let mut plan = objects.to_vec();
    plan.push(parent(&superset));

    let mut outcomes = super::apply(client, &plan, options.dry_run, &mut report).await?;
    if options.prune {
        let selector = build::applyset::member_selector(env, env_name);
        outcomes.extend(
            prune::prune(
                client,
                namespace,
                &selector,
                &plan,
                options.dry_run,
                &mut report,
            )
            .await?,
        );
        if superset != members {
            super::apply(client, &[parent(&members)], options.dry_run, &mut |_| {}).await?;
        }
    }
    let verb = if options.dry_run {
        "Dry run of"
    } else {
        "Applied"
    };
    progress(&format!(
        "\n{verb} `{env_name}` in {namespace}: {}.",
        super::summary(&outcomes)
    ));

    if let (Some(timeout), false) = (options.wait, options.dry_run) {
        let find = |kind: Kind| {
            objects
                .iter()
                .find(|o| o.kind_of() == kind)
                .map(Object::name)
        };
        if let Some(deployment) = find(Kind::Deployment) {
            let hpa = find(Kind::HorizontalPodAutoscaler);
            progress(&format!(
                "Waiting up to {} for Deployment {namespace}/{deployment} to roll out...",
                humantime::format_duration(timeout)
            ));
            let available = wait::rollout(client, namespace, deployment, hpa, timeout).await?;
            let replicas = if available == 1 {
                "replica"
            } else {
                "replicas"
            };
            progress(&format!(
                "Deployment {namespace}/{deployment} rolled out: {available} {replicas} available."
            ));
        }
    }
    Ok(Report { outcomes })
}
