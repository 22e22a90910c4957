//! `infra apply`: preflight, server-side apply, prune and wait against a cluster, recorded as
//! a revision, one apply at a time.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::EnvArgs;
use super::cluster::{ClusterArgs, runtime};
use super::screen::Screen;
use crate::apply::release::{self, Options};
use crate::apply::revision::Provenance;
use crate::apply::set;
use crate::apply::target::Target;

/// Arguments of `infra apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Server-side dry run (`dryRun=All`): the API server validates and admits every apply and
    /// prune but persists nothing; nothing is waited for, locked or recorded.
    #[arg(long)]
    dry_run: bool,
    /// When anything after the first write fails (a write refused midway, a rollout that fails
    /// or times out), apply the last deployed revision again at once, wait for it, and exit 1
    /// saying what failed and "rolled back to revision N".
    #[arg(long, conflicts_with = "dry_run")]
    atomic: bool,
    /// Keep objects that left the plan instead of deleting them.
    #[arg(long)]
    no_prune: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// What `apply` and `rollback` share: conflicts, the wait, the history and the lock.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Take over fields another field manager owns (e.g. after `kubectl scale` or `kubectl
    /// edit`) instead of failing on the conflict.
    #[arg(long)]
    force_conflicts: bool,
    /// Return once everything is applied, without waiting for it to be ready.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for readiness (e.g. `90s`, `5m`, `1h`); past it, exit 1 naming what is
    /// not ready and why.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How many revisions to keep in the cluster (the oldest beyond it are deleted).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    history_max: u16,
    /// When another apply of the environment holds its lock, queue this long for it (e.g.
    /// `2m`) instead of failing at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    wait_for_lock: Duration,
}

impl RunArgs {
    /// The options of a recorded apply.
    pub fn options(&self, dry_run: bool, prune: bool, atomic: bool) -> Options {
        Options {
            apply: set::Options {
                dry_run,
                prune,
                force_conflicts: self.force_conflicts,
                wait: (!self.no_wait).then_some(self.timeout),
            },
            atomic,
            history_max: usize::from(self.history_max),
            wait_for_lock: self.wait_for_lock,
        }
    }
}

impl ApplyArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let built = self.env.build(environments)?;
        let target = Target::of_built(&built, &self.env.env);
        let provenance = Provenance::of(&built.provenance);
        let options = self.run.options(self.dry_run, !self.no_prune, self.atomic);
        runtime()?.block_on(async {
            let (client, cluster) = self.cluster.client().await?;
            let dry = if self.dry_run {
                " (server-side dry run: nothing is persisted)"
            } else {
                ""
            };
            println!(
                "Applying {} objects of environment `{}` and their ApplySet to {cluster}, namespace {}{dry}",
                built.objects.len(),
                self.env.env,
                built.env.namespace.as_str(),
            );
            let mut screen = Screen::new();
            let result = release::apply(&client, &target, provenance, &options, &mut |event| {
                screen.show(event)
            })
            .await;
            screen.clear();
            result?;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
