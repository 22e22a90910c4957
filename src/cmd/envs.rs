//! `infra envs`: the environments that exist.

use std::path::Path;
use std::process::ExitCode;

/// Prints one environment name per line.
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    for name in crate::config::environments(dir)? {
        println!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
