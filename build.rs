//! Links the `infra` executable position-dependent (`-no-pie`) on Linux.
//!
//! `infra` is a short-lived command: a PIE makes the loader patch about 20,000 pointers
//! into freshly copied pages at every start, a third of `infra plan`'s own start-up cost
//! (see BENCHMARKS.md). Without PIE the linker resolves them once, at build time. Shared
//! libraries, heap and stack are still placed at random; only the executable's image is not.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bin=infra=-no-pie");
    }
}
