//! The `infra` command line: parses arguments and runs one command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A closed stdout (`infra plan | head`) ends the process quietly, as it does `cat`,
    // instead of `println!` panicking on EPIPE.
    sigpipe::reset();
    let cli = infra::cmd::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
