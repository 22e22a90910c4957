//! `infra diff`: what promoting one environment's settings to another would change, object by
//! object, in the plan's format; reads no `out/`, writes nothing.
//!
//! Promotion moves settings, not the place: the promoted settings are built under the target's
//! identity (its environment name, which names the instance and the ApplySet, and its
//! namespace), so the diff shows what would change in the target, not that the two environments
//! live in different namespaces.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::EnvArgs;
use super::plan::{Color, Output};
use crate::plan::{self, Sides};
use crate::{objects, render};

/// Arguments of `infra diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The environment whose settings are promoted (`--env staging`); `--set` applies to it.
    #[command(flatten)]
    env: EnvArgs,
    /// The environment they would replace (e.g. `production`).
    #[arg(long, value_name = "ENV")]
    against: String,
    /// Colour the diff: `auto` colours when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// `text` for people, `json` for scripts (the plan's JSON).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

impl DiffArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let target = EnvArgs {
            env: self.against.clone(),
            sets: Vec::new(),
        };
        let target = target.build(environments)?;
        let current: BTreeMap<String, String> = target
            .files()?
            .into_iter()
            .map(|f| (f.name, f.content))
            .collect();
        let mut settings = self.env.build(environments)?.env;
        settings.namespace = target.env.namespace.clone();
        let objects = objects::objects(&settings, &self.against);
        let promoted = render::files(&objects, &target.provenance)?;
        let (from, to) = (self.against.as_str(), self.env.env.as_str());
        let plan = plan::compare(&current, &promoted, Sides { old: from, new: to });
        if self.output == Output::Json {
            let about = [("environment", to), ("against", from)];
            println!("{}", serde_json::to_string_pretty(&plan.json(&about))?);
        } else {
            print!("{}", plan.report(self.color.enabled()));
            println!(
                "\nPromoting `{to}`'s settings to `{from}`: {}.",
                plan.summary()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
