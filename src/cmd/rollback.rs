//! `infra rollback`: apply a recorded revision's objects again, as a new revision, with the
//! same preflight, dry run, conflict rules, prune and wait as `apply`. It reads the revision,
//! not the environment files (only `name` and `namespace` are read from them), so it works
//! when the files have changed since or no longer build.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::EnvArgs;
use super::apply::RunArgs;
use super::cluster::{ClusterArgs, runtime};
use super::screen::Screen;
use crate::apply::release;

/// Arguments of `infra rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The revision to return to (see `infra history`); default: the last deployed revision
    /// before the current one.
    #[arg(long, value_name = "N")]
    to: Option<u32>,
    #[command(flatten)]
    run: RunArgs,
}

impl RollbackArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let place = self.env.locate(environments)?;
        let options = self.run.options(false, true, false);
        runtime()?.block_on(async {
            let (client, cluster) = self.cluster.client().await?;
            println!(
                "Rolling back environment `{}` on {cluster}, namespace {}",
                self.env.env, place.namespace
            );
            let mut screen = Screen::new();
            let result = release::rollback(
                &client,
                &place.namespace,
                &place.parent,
                self.to,
                &options,
                &mut |event| screen.show(event),
            )
            .await;
            screen.clear();
            result?;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
