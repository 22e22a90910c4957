//! Command-line interface: one module per subcommand, each with its arguments and `run`.

mod envs;
mod plan;
mod render;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Environment, Layers};

/// Typed Kubernetes manifests for the AI API proxy, from layered environment files.
///
/// Layers, later wins: <environments>/base.toml, then <environments>/<env>.toml, then
/// INFRA_* environment variables (nested keys joined by `__`, e.g.
/// INFRA_AUTOSCALING__MAX_REPLICAS=20), then `--set key.path=value` flags.
#[derive(Debug, Parser)]
#[command(name = "infra", version, propagate_version = true)]
pub struct Cli {
    /// Folder holding base.toml and one <env>.toml per environment.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "environments"
    )]
    environments: PathBuf,
    /// Folder that holds one rendered folder per environment (committed for GitOps).
    #[arg(long, global = true, value_name = "DIR", default_value = "out")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the manifests of an environment to <out>/<env>/ (replacing what was there).
    Render(render::RenderArgs),
    /// Show what `render` would change in <out>/<env>/, object by object; writes nothing.
    Plan(plan::PlanArgs),
    /// List the environments defined in the environments folder.
    Envs,
    /// Print the JSON Schema of environment files (for editor completion and checks).
    Schema,
}

/// Which environment to load, and the overrides applied on top of its files.
#[derive(Debug, Args)]
struct EnvArgs {
    /// Environment name: the stem of a file in the environments folder (e.g. `production`).
    #[arg(long, short, value_name = "ENV")]
    env: String,
    /// Override one key after every other layer, e.g. `--set autoscaling.max_replicas=20`
    /// (repeatable; values are read as TOML-like scalars: numbers, booleans, [lists], strings).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl Cli {
    /// Runs the chosen command; `Ok` carries the exit code of a command that ran to the end.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Render(args) => args.run(&self.environments, &self.out),
            Command::Plan(args) => args.run(&self.environments, &self.out),
            Command::Envs => envs::run(&self.environments),
            Command::Schema => schema::run(),
        }
    }
}

impl EnvArgs {
    fn layers(&self, dir: &std::path::Path) -> Layers {
        Layers {
            dir: dir.to_owned(),
            env: self.env.clone(),
            sets: self.sets.clone(),
        }
    }

    fn load(&self, dir: &std::path::Path) -> anyhow::Result<Environment> {
        Ok(config::load(&self.layers(dir))?)
    }
}
