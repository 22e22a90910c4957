//! `infra apply`: preflight, server-side apply, prune and rollout wait against a cluster.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::EnvArgs;
use crate::apply::set::{self, Options};

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
        let built = self.env.build(environments)?;
        // One thread is plenty for a handful of sequential requests; `main` stays synchronous.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            let config = kube::Config::infer().await.context(
                "cannot find a Kubernetes configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account)",
            )?;
            let cluster = config.cluster_url.to_string();
            let client =
                kube::Client::try_from(config).context("cannot create a Kubernetes client")?;
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
            let options = Options {
                dry_run: self.dry_run,
                prune: !self.no_prune,
                wait: (!self.no_wait).then_some(self.timeout),
            };
            set::run(
                &client,
                &built,
                &self.env.env,
                &options,
                |o| println!("{o}"),
                |line| println!("{line}"),
            )
            .await?;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
