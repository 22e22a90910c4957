//! The `infra` command line.
fn main() {}
