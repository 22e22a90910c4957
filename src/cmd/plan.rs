//! `infra plan`: what `render` would change in `<out>/<env>/`, for one environment or all; writes
//! nothing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EnvArgs, SET_HELP};
use crate::plan::{self, Plan, Sides};
use crate::{config, output};

/// Arguments of `infra plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Environment name: the stem of a file in the environments folder (e.g. `production`).
    #[arg(
        long,
        short,
        value_name = "ENV",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    env: Option<String>,
    /// Plan every environment of the environments folder in one run (one exit status).
    #[arg(long)]
    all: bool,
    #[arg(long = "set", value_name = "KEY=VALUE", help = SET_HELP)]
    sets: Vec<String>,
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
    /// `text` for people; `json` for CI bots and pull-request comments: per file the object,
    /// the action and the unified diff (with --all, an array with one plan, or one `error`,
    /// per environment).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// When to colour output.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    pub(super) fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// How to print a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Output {
    Text,
    Json,
}

impl PlanArgs {
    pub(super) fn run(self, environments: &Path, out: &Path) -> anyhow::Result<ExitCode> {
        let names = match &self.env {
            Some(env) => vec![env.clone()],
            None => config::environments(environments)?,
        };
        let mut failed = false;
        let mut plans = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let dir = out.join(name);
            let args = EnvArgs {
                env: name.clone(),
                sets: self.sets.clone(),
            };
            let plan = args.build(environments).and_then(|built| {
                if self.live {
                    let (live, folder) = super::cluster::live_plan(&self.cluster, &built, name)?;
                    return Ok((live.plan, folder, live.revision));
                }
                let (current, rendered) = (output::read(&dir)?, built.files()?);
                let plan = plan::compare(&current, &rendered, Sides::default());
                Ok((plan, dir.display().to_string(), None))
            });
            let (plan, folder, revision) = match plan {
                Ok(plan) => plan,
                Err(e) if self.all => {
                    eprintln!("error: {e:#}");
                    if self.output == Output::Json {
                        let error = format!("{e:#}");
                        plans.push(serde_json::json!({"environment": name, "error": error}));
                    }
                    failed = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.output == Output::Json {
                let mut json = plan.json(&[("environment", name), ("folder", &folder)]);
                if let Some(r) = &revision {
                    json["live_revision"] = serde_json::json!({
                        "number": r.number, "status": r.status, "time": r.time,
                        "who": r.who, "drift": r.drift,
                    });
                }
                plans.push(json);
            } else {
                if i > 0 {
                    println!();
                }
                print!("{}", plan.report(self.color.enabled()));
                println!("\nPlan for {folder}: {}.", plan.summary());
                if self.live {
                    match &revision {
                        Some(r) => println!("{}", r.line()),
                        None => println!("Live revision: none (no recorded apply)."),
                    }
                }
            }
            if self.check && !plan.is_empty() {
                stale(&plan, &folder, name, self.live);
                failed = true;
            }
        }
        if self.output == Output::Json {
            let json = match (self.all, plans.pop()) {
                (false, Some(plan)) => plan,
                (_, last) => serde_json::Value::Array(plans.into_iter().chain(last).collect()),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn stale(plan: &Plan, folder: &str, env: &str, live: bool) {
    if live {
        eprintln!("error: {folder} is stale: run `infra apply --env {env}`");
        return;
    }
    let what = if plan.changes_objects() {
        ""
    } else {
        " (its provenance headers only)"
    };
    eprintln!(
        "error: {folder} is stale{what}: run `infra render --env {env}` and commit the result"
    );
}
