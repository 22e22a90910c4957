//! `infra render`: writes an environment's manifests to `<out>/<env>/`, or prints them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::EnvArgs;
use crate::render::{self, File, Provenance};
use crate::{build, output};

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
        let (objects, provenance) = self.env.build(environments)?;
        if self.stdout {
            print!("{}", render::stream(&objects, &provenance)?);
            return Ok(ExitCode::SUCCESS);
        }
        let files = render::files(&objects, &provenance)?;
        let dir = out.join(&self.env.env);
        output::write(&dir, &files).with_context(|| format!("cannot write {}", dir.display()))?;
        println!("wrote {} files to {}", files.len(), dir.display());
        Ok(ExitCode::SUCCESS)
    }
}

impl EnvArgs {
    /// Loads and validates the environment and builds its objects.
    pub(super) fn load_and_build(
        &self,
        environments: &Path,
    ) -> anyhow::Result<(crate::config::Environment, Vec<build::Object>)> {
        let env = self.load(environments)?;
        let objects = build::objects(&env, &self.env);
        Ok((env, objects))
    }

    /// Loads the environment and builds its objects, with the provenance for file headers.
    pub(super) fn build(
        &self,
        environments: &Path,
    ) -> anyhow::Result<(Vec<build::Object>, Provenance)> {
        let (_, objects) = self.load_and_build(environments)?;
        let files = ["base".to_owned(), self.env.clone()]
            .iter()
            .map(|stem| {
                environments
                    .join(format!("{stem}.toml"))
                    .display()
                    .to_string()
            })
            .collect();
        let mut overrides: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with(crate::config::ENV_PREFIX))
            .collect();
        overrides.sort();
        overrides.extend(
            self.sets
                .iter()
                .map(|s| format!("--set {}", s.split('=').next().unwrap_or(s))),
        );
        Ok((
            objects,
            Provenance {
                env: self.env.clone(),
                files,
                overrides,
            },
        ))
    }

    /// The files `render` would write.
    pub(super) fn render(&self, environments: &Path) -> anyhow::Result<Vec<File>> {
        let (objects, provenance) = self.build(environments)?;
        Ok(render::files(&objects, &provenance)?)
    }
}
