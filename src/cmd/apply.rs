//! `infra apply`: preflight, server-side apply, prune and rollout wait against a cluster.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::EnvArgs;
use std::collections::BTreeSet;

use crate::apply::{self, applyset, preflight, prune, wait};
use crate::build::{self, Object};
use crate::config::Environment;

/// Arguments of `infra apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Server-side dry run (`dryRun=All`): the API server validates and admits every apply and
    /// prune but persists nothing; the rollout is not waited for.
    #[arg(long)]
    dry_run: bool,
    /// Keep objects that left the plan instead of deleting them.
    #[arg(long)]
    no_prune: bool,
    /// Return once everything is applied, without waiting for the Deployment's rollout.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the rollout (e.g. `90s`, `5m`, `1h`); past it, exit 1 with the
    /// Deployment's conditions.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

impl ApplyArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let (env, objects) = self.env.load_and_build(environments)?;
        // One thread is plenty for a handful of sequential requests; `main` stays synchronous.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(self.apply(&env, &objects))?;
        Ok(ExitCode::SUCCESS)
    }

    async fn apply(&self, env: &Environment, objects: &[Object]) -> anyhow::Result<()> {
        let config = kube::Config::infer().await.context(
            "cannot find a Kubernetes configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account)",
        )?;
        let cluster = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).context("cannot create a Kubernetes client")?;
        let namespace = env.namespace.as_str();
        let dry = if self.dry_run {
            " (server-side dry run: nothing is persisted)"
        } else {
            ""
        };
        println!(
            "Applying {} objects of environment `{}` and their ApplySet to {cluster}, namespace {namespace}{dry}",
            objects.len(),
            self.env.env
        );

        preflight::check_secrets(&client, namespace, &env.proxy.secret_refs()).await?;

        // The ApplySet parent records the union of what the cluster may hold (its old record)
        // and what we are about to apply, until prune has removed what left the plan.
        let id = build::applyset::id(env);
        let parent_name = build::applyset::parent_name(env);
        let members: BTreeSet<String> = objects
            .iter()
            .filter(|o| !matches!(o, Object::Namespace(_)))
            .map(|o| build::applyset::group_kind(o.api_version(), o.kind()))
            .collect();
        let recorded = applyset::recorded_kinds(&client, namespace, &parent_name, &id).await?;
        let superset: BTreeSet<String> = members.union(&recorded).cloned().collect();
        let parent = |kinds| Object::ConfigMap(build::applyset::parent(env, &self.env.env, kinds));
        let mut plan = objects.to_vec();
        plan.push(parent(&superset));

        let print = |o: &apply::Outcome| println!("{o}");
        let mut outcomes = apply::apply(&client, &plan, self.dry_run, print).await?;
        if !self.no_prune {
            let selector = build::applyset::member_selector(env, &self.env.env);
            outcomes.extend(
                prune::prune(&client, namespace, &selector, &plan, self.dry_run, print).await?,
            );
            if superset != members {
                apply::apply(&client, &[parent(&members)], self.dry_run, |_| {}).await?;
            }
        }
        let verb = if self.dry_run {
            "Dry run of"
        } else {
            "Applied"
        };
        println!(
            "\n{verb} `{}` in {namespace}: {}.",
            self.env.env,
            apply::summary(&outcomes)
        );

        if self.no_wait || self.dry_run {
            return Ok(());
        }
        let find = |kind: &str| objects.iter().find(|o| o.kind() == kind).map(Object::name);
        if let Some(deployment) = find("Deployment") {
            let hpa = find("HorizontalPodAutoscaler");
            println!(
                "Waiting up to {} for Deployment {namespace}/{deployment} to roll out...",
                humantime::format_duration(self.timeout)
            );
            let available =
                wait::rollout(&client, namespace, deployment, hpa, self.timeout).await?;
            let replicas = if available == 1 {
                "replica"
            } else {
                "replicas"
            };
            println!(
                "Deployment {namespace}/{deployment} rolled out: {available} {replicas} available."
            );
        }
        Ok(())
    }
}
