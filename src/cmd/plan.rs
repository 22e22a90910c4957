//! `infra plan`: what `render` would change in `<out>/<env>/`; writes nothing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::EnvArgs;
use crate::{output, plan};

/// Arguments of `infra plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Exit with status 1 when <out>/<env>/ is not what `render` would write (for CI).
    #[arg(long)]
    check: bool,
    /// Compare with the cluster instead of <out>/<env>/: a server-side dry run of `apply`
    /// diffed against the live objects, plus what a prune would delete.
    #[arg(long)]
    live: bool,
    #[command(flatten)]
    cluster: super::cluster::ClusterArgs,
    /// Colour the diff: `auto` colours when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

/// When to colour output.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl PlanArgs {
    pub(super) fn run(self, environments: &Path, out: &Path) -> anyhow::Result<ExitCode> {
        let built = self.env.build(environments)?;
        let dir = out.join(&self.env.env);
        let (plan, dir) = if self.live {
            super::cluster::live_plan(&self.cluster, &built, &self.env.env)?
        } else {
            let plan = plan::compare(&output::read(&dir)?, &built.files()?);
            (plan, dir.display().to_string())
        };
        let color = match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        print!("{}", plan.report(color));
        println!("\nPlan for {dir}: {}.", plan.summary());
        if self.check && !plan.is_empty() {
            let fix = if self.live { "apply" } else { "render" };
            eprintln!(
                "error: {dir} is stale: run `infra {fix} --env {}`{}",
                self.env.env,
                if self.live {
                    ""
                } else {
                    " and commit the result"
                }
            );
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}
