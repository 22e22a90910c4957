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
        let rendered = self.env.build(environments)?.files()?;
        let dir = out.join(&self.env.env);
        let plan = plan::compare(&output::read(&dir)?, &rendered);
        let color = match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        print!("{}", plan.report(color));
        println!("\nPlan for {}: {}.", dir.display(), plan.summary());
        if self.check && !plan.is_empty() {
            eprintln!(
                "error: {} is stale: run `infra render --env {}` and commit the result",
                dir.display(),
                self.env.env
            );
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}
