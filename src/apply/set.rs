//! One `infra apply` of an environment as an ApplySet, step by step: discovery (the server
//! answers), the parent (ours, or refuse), preflight, a server-side dry run of everything
//! (conflicts and refusals before any write), apply in render order, prune of what left the
//! plan, the parent's final record, and the wait. `cmd/apply.rs` only parses and prints.

use std::time::Duration;

use ai_api_proxy_config::{ConfigMapRef, SecretRef};

use super::discovery::Discovery;
use super::target::{Setup, Target};
use super::{Error, Outcome, Result, preflight, prune, server_side, summary, wait};
use crate::objects::{Object, Readiness};

/// How to apply.
#[derive(Clone, Debug)]
pub struct Options {
    /// Server-side dry run: nothing is persisted, no wait.
    pub dry_run: bool,
    /// Delete members of the set that left the plan.
    pub prune: bool,
    /// Take over fields other managers own instead of failing on the conflict.
    pub force_conflicts: bool,
    /// Wait for readiness, up to this long (`None`: do not wait).
    pub wait: Option<Duration>,
}

/// What `run` has to say while it works.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// One object applied, left unchanged or pruned.
    Outcome(&'a Outcome),
    /// A line of the report.
    Note(&'a str),
    /// Where the wait stands (replaces the previous status on a terminal).
    Status(&'a str),
}

/// Applies `target` with `options`, on a server that serves `discovery`.
pub async fn run(
    client: &kube::Client,
    discovery: &Discovery,
    target: &Target,
    options: &Options,
    report: &mut impl FnMut(Event<'_>),
) -> Result<Vec<Outcome>> {
    let namespace = target.namespace.as_str();
    let setup = Setup::read(client, discovery.clone(), target).await?;
    let superset = setup.superset();
    let plan = target.with_parent(&superset);
    let secrets: Vec<&SecretRef> = target.secrets.iter().collect();
    let config_maps: Vec<&ConfigMapRef> = target.config_maps.iter().collect();

    let checked = preflight::run(
        client,
        &setup.discovery,
        &plan,
        options.prune.then_some(setup.prune_kinds.as_slice()),
        namespace,
        preflight::Reads {
            secrets: &secrets,
            config_maps: &config_maps,
        },
        !options.force_conflicts,
    )
    .await?;
    let planned = server_side::check(
        client,
        &plan,
        options.force_conflicts,
        checked.namespace_exists,
    )
    .await?;
    let candidates = if options.prune {
        prune::candidates(
            client,
            namespace,
            &setup.prune_kinds,
            &target.selector,
            &plan,
        )
        .await?
    } else {
        Vec::new()
    };

    let mut on_outcome = |o: &Outcome| report(Event::Outcome(o));
    let mut outcomes = if options.dry_run {
        let outcomes = server_side::dry_run_outcomes(&planned);
        outcomes.iter().for_each(&mut on_outcome);
        outcomes
    } else {
        server_side::apply(client, &planned, options.force_conflicts, &mut on_outcome).await?
    };
    match prune::delete(
        client,
        namespace,
        &candidates,
        options.dry_run,
        &mut on_outcome,
    )
    .await
    {
        Ok(pruned) => outcomes.extend(pruned),
        Err(cause) => {
            return Err(Error::Partial {
                applied: outcomes,
                not_applied: candidates
                    .iter()
                    .map(|c| format!("prune of {} {namespace}/{}", c.resource.kind, c.name()))
                    .collect(),
                cause: Box::new(cause),
            });
        }
    }
    if options.prune && superset != setup.members && !options.dry_run {
        let parent = [target.parent_recording(&setup.members)];
        let final_record = server_side::check(client, &parent, false, true).await?;
        server_side::apply(client, &final_record, false, &mut |_| {}).await?;
    }
    let verb = if options.dry_run {
        "Dry run of"
    } else {
        "Applied"
    };
    report(Event::Note(&format!(
        "\n{verb} `{}` in {namespace}: {}.",
        target.env_name,
        summary(&outcomes)
    )));

    if let (Some(timeout), false) = (options.wait, options.dry_run) {
        let awaited: Vec<&Object> = target
            .objects
            .iter()
            .filter(|o| o.kind_of().readiness() != Readiness::Exists)
            .collect();
        report(Event::Note(&format!(
            "Waiting up to {} for {} objects to be ready...",
            humantime::format_duration(timeout),
            awaited.len()
        )));
        let ready = wait::ready(client, &awaited, timeout, &mut |line| {
            report(Event::Status(line))
        })
        .await?;
        for (object, note) in ready {
            report(Event::Note(&format!("ready {object}: {note}")));
        }
    }
    Ok(outcomes)
}
