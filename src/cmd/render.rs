//! `infra render`: writes an environment's manifests to `<out>/<env>/`, or prints them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::EnvArgs;
use crate::{output, render};

/// Arguments of `infra render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Print one multi-document YAML stream to stdout instead of writing files.
    #[arg(long)]
    stdout: bool,
}

impl RenderArgs {
    pub(super) fn run(self, environments: &Path, out: &Path) -> anyhow::Result<ExitCode> {
        let built = self.env.build(environments)?;
        if self.stdout {
            print!("{}", render::stream(&built.objects, &built.provenance)?);
            return Ok(ExitCode::SUCCESS);
        }
        let files = built.files()?;
        let dir = out.join(&self.env.env);
        output::write(&dir, &files).with_context(|| format!("cannot write {}", dir.display()))?;
        println!("wrote {} files to {}", files.len(), dir.display());
        Ok(ExitCode::SUCCESS)
    }
}
