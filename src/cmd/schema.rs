//! `infra schema`: the JSON Schema of an environment file, or of the merged environment.

use std::process::ExitCode;

use clap::Args;

use crate::config::schema;

/// Arguments of `infra schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The merged environment's schema (every required key required) instead of a layer file's.
    #[arg(long)]
    merged: bool,
}

impl SchemaArgs {
    /// Prints the schema as pretty JSON.
    pub(super) fn run(self) -> anyhow::Result<ExitCode> {
        let schema = if self.merged {
            schema::merged()
        } else {
            schema::layer()
        };
        println!("{}", serde_json::to_string_pretty(&schema)?);
        Ok(ExitCode::SUCCESS)
    }
}
