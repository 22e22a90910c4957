//! Side by side on one real control plane, in one run, interleaved: `infra apply --env
//! production --no-wait` and `infra apply --atomic` (which also takes the lock, waits and
//! records a revision) against `kubectl apply --server-side -k out/production`, and `infra
//! plan --env production --live` against `kubectl diff --server-side -k out/production`, both
//! on an environment already applied (the steady state of a deploy pipeline). Not a test:
//! `bash bench/compare-kubectl.sh` runs it (`--ignored`) with a release build of infra and
//! prints the table for BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::panic, reason = "benchmark code")]

mod cluster;
mod plane;
mod sandbox;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster::Cluster;

fn time(mut cmd: Command, ok: &[i32]) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok.contains(&code),
        "{cmd:?} exited {code}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
#[ignore = "a benchmark: bash bench/compare-kubectl.sh"]
fn infra_against_kubectl() {
    let Some(c) = Cluster::new("bench") else {
        panic!("the control plane is not built: bash e2e/build-plane.sh")
    };
    let infra_bin = std::env::var_os("BENCH_INFRA_BIN")
        .unwrap_or_else(|| panic!("BENCH_INFRA_BIN: the release infra to measure"));
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let set = format!("namespace={}", c.ns);
    let infra = |args: &[&str]| {
        let mut cmd = Command::new(&infra_bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("INFRA_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(c.sandbox.root())
            .env("NO_COLOR", "1")
            .args(args)
            .args(["--env", "production", "--set", &set]);
        if args[0] != "render" {
            cmd.arg("--kubeconfig").arg(c.plane.kubeconfig());
        }
        cmd
    };
    let kubectl = |args: &[&str]| {
        let mut cmd = c.plane.kubectl_command();
        cmd.args(args).arg(c.sandbox.out().join("production"));
        cmd
    };
    time(infra(&["render"]), &[0]);
    time(infra(&["apply", "--timeout", "120s"]), &[0]);
    // Warm both: kubectl's discovery cache, the API server's caches.
    time(kubectl(&["apply", "--server-side", "-k"]), &[0]);
    time(infra(&["apply", "--no-wait"]), &[0]);

    let mut rows = Vec::new();
    for (name, ours, theirs, ours_ok, theirs_ok) in [
        (
            "apply (unchanged environment)",
            vec!["apply", "--no-wait"],
            vec!["apply", "--server-side", "-k"],
            &[0][..],
            &[0][..],
        ),
        (
            "apply --atomic (unchanged environment: lock, wait, revision recorded)",
            vec!["apply", "--atomic", "--timeout", "60s"],
            vec!["apply", "--server-side", "-k"],
            &[0],
            &[0],
        ),
        (
            "live plan / diff",
            vec!["plan", "--live"],
            vec!["diff", "--server-side", "-k"],
            &[0],
            &[0, 1],
        ),
    ] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..runs {
            // Interleaved, alternating who goes first.
            if i % 2 == 0 {
                a.push(time(infra(&ours), ours_ok));
                b.push(time(kubectl(&theirs), theirs_ok));
            } else {
                b.push(time(kubectl(&theirs), theirs_ok));
                a.push(time(infra(&ours), ours_ok));
            }
        }
        let (a, b) = (median(a), median(b));
        rows.push(format!(
            "| {name} | `infra {}`: {} | `kubectl {} out/production`: {} | {:.2}x |",
            ours.join(" "),
            ms(a),
            theirs.join(" "),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        ));
    }
    println!(
        "\n{runs} runs each, interleaved, median wall time; infra release build, kubectl and the control plane {}:\n",
        c.plane
            .kubectl(["version", "--client", "-o", "json"])
            .lines()
            .find(|l| l.contains("gitVersion"))
            .unwrap_or("")
            .trim()
            .trim_start_matches("\"gitVersion\": ")
            .trim_end_matches(',')
    );
    println!("| step | infra | kubectl | infra / kubectl |\n| --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
}
