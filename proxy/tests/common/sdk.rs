//! The official OpenAI (Python and Node) and Anthropic (Python) SDKs, for acceptance tests: a
//! script under `proxy/tests/sdk/` runs against the real proxy and prints what the SDK saw.
//! CI installs the pinned versions (`.ci/tools.sh`: `sdk_python`, `sdk_node_path`) and sets
//! `SDK_PYTHON`, `SDK_NODE_PATH` and `SDK_REQUIRED`; elsewhere a test without them skips.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: each test uses a part; a failed setup must abort the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the SDK scripts live.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// Skips (returns `None`) with a reason, or fails when CI requires the SDKs.
fn missing(what: &str) -> Option<PathBuf> {
    assert!(
        std::env::var_os("SDK_REQUIRED").is_none(),
        "SDK_REQUIRED is set but {what}"
    );
    eprintln!("SKIPPED: {what} (bash -c 'source .ci/tools.sh && sdk_python && sdk_node_path')");
    None
}

/// A python interpreter that imports `openai` and `anthropic`: `SDK_PYTHON`, else `python3`
/// when it has both.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&candidate)
        .args(["-c", "import openai, anthropic"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(candidate)
    } else {
        missing("no python with the openai and anthropic SDKs (SDK_PYTHON)")
    }
}

/// A `node_modules` folder holding the `openai` package: `SDK_NODE_PATH`.
pub fn node_path() -> Option<PathBuf> {
    match std::env::var_os("SDK_NODE_PATH").map(PathBuf::from) {
        Some(p) if p.join("openai").is_dir() => Some(p),
        _ => missing("no node_modules with the openai Node SDK (SDK_NODE_PATH)"),
    }
}

/// What a script printed, and how it ended.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The script's last stdout line, parsed as JSON (each script prints one result line).
    pub fn json(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "the script's last line is not JSON ({e}): {line:?}\nstderr: {}",
                self.stderr
            )
        })
    }
}

/// Runs `program script args` with `env`, bounded by `within` (killed after).
fn run(mut cmd: Command, env: &[(&str, &str)], within: Duration) -> Run {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the SDK script");
    let end = Instant::now() + within;
    while child.try_wait().expect("poll the SDK script").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("the SDK script's output");
    Run {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs a Python SDK script (at most 60 s).
pub fn run_python(python: &Path, name: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(python);
    cmd.arg(script(name));
    run(cmd, env, Duration::from_secs(60))
}

/// Runs a Node SDK script (at most 60 s).
pub fn run_node(node_path: &Path, name: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("node");
    cmd.arg(script(name)).env("NODE_PATH", node_path);
    run(cmd, env, Duration::from_secs(60))
}
