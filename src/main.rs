//! The `infra` command line: parses arguments and runs one command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = infra::cmd::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
