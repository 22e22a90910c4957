//! `infra schema`: the JSON Schema of environment files.

use std::process::ExitCode;

use crate::config::Environment;

/// Prints the schema as pretty JSON.
pub fn run() -> anyhow::Result<ExitCode> {
    let schema = schemars::schema_for!(Environment);
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
