//! One `infra apply` of an environment as an ApplySet, step by step: discovery (the server
//! answers), the parent (ours, or refuse), preflight, a server-side dry run of everything
//! (conflicts and refusals before any write), apply in render order, prune of what left the
//! plan, the parent's final record, and the wait. `cmd/apply.rs` only parses and prints.

use std::collections::BTreeSet;
use std::time::Duration;

use super::discovery::Discovery;
use super::{Error, Outcome, Result, applyset, preflight, prune, server_side, summary, wait};
use crate::objects::{self, Object, Readiness};
use crate::pipeline::Built;

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

/// The environment's objects plus the ApplySet parent recording `group_kinds`.
pub fn with_parent(built: &Built, env_name: &str, group_kinds: &BTreeSet<String>) -> Vec<Object> {
    let mut plan = built.objects.clone();
    plan.push(Object::ConfigMap(objects::applyset::parent(
        &built.env,
        env_name,
        group_kinds,
    )));
    plan
}

/// The group-kinds of the set's members: every object we build but the Namespace.
pub fn member_kinds(built: &Built) -> BTreeSet<String> {
    built
        .objects
        .iter()
        .filter(|o| o.kind_of().prunable())
        .map(|o| o.kind_of().meta().group_kind())
        .collect()
}

/// Applies `built` (environment `env_name`) with `options`.
pub async fn run(
    client: &kube::Client,
    built: &Built,
    env_name: &str,
    options: &Options,
    report: &mut impl FnMut(Event<'_>),
) -> Result<Vec<Outcome>> {
    let env = &built.env;
    let namespace = env.namespace.as_str();
    let discovery = Discovery::read(client).await?;

    // The parent records the union of what the cluster may hold (its old record) and what we
    // apply, until prune has removed what left the plan.
    let id = objects::applyset::id(env);
    let parent_name = objects::applyset::parent_name(env);
    let recorded = applyset::recorded_kinds(client, namespace, &parent_name, &id).await?;
    let members = member_kinds(built);
    let superset: BTreeSet<String> = members.union(&recorded).cloned().collect();
    let plan = with_parent(built, env_name, &superset);
    let prune_kinds = prune::kinds(&recorded, &discovery);

    let checked = preflight::run(
        client,
        &discovery,
        &plan,
        options.prune.then_some(prune_kinds.as_slice()),
        namespace,
        &env.proxy.secret_refs(),
        &env.proxy.config_map_refs(),
    )
    .await?;
    let planned = server_side::check(
        client,
        &plan,
        options.force_conflicts,
        checked.namespace_exists,
    )
    .await?;
    let selector = objects::applyset::member_selector(env, env_name);
    let candidates = if options.prune {
        prune::candidates(client, namespace, &prune_kinds, &selector, &plan).await?
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
    if options.prune && superset != members && !options.dry_run {
        let parent = [Object::ConfigMap(objects::applyset::parent(
            env, env_name, &members,
        ))];
        let final_record = server_side::check(client, &parent, false, true).await?;
        server_side::apply(client, &final_record, false, &mut |_| {}).await?;
    }
    let verb = if options.dry_run {
        "Dry run of"
    } else {
        "Applied"
    };
    report(Event::Note(&format!(
        "\n{verb} `{env_name}` in {namespace}: {}.",
        summary(&outcomes)
    )));

    if let (Some(timeout), false) = (options.wait, options.dry_run) {
        let awaited: Vec<&Object> = built
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
