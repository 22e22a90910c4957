//! Where the plane's binaries are: `E2E_PLANE_BIN` when set (then they must be there), else the
//! cache folder `e2e/build-plane.sh --cached` names (absent: the e2e tests are skipped).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every program the plane runs, as `e2e/build-plane.sh` names them.
pub const TOOLS: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
];

/// Why there is no plane.
pub enum Missing {
    /// Not built, and not asked for: the tests skip, printing this.
    Skip(String),
    /// Asked for (`E2E_PLANE_BIN`) but unusable: the tests fail with this.
    Fail(String),
}

/// The folder holding [`TOOLS`] (and kwok's `kwok-stages/`).
pub fn locate() -> Result<PathBuf, Missing> {
    locate_built("E2E_PLANE_BIN", "build-plane.sh", &TOOLS)
}

/// A folder of Go-built `tools`: `$var` when set (then every tool must be there, or the tests
/// fail), else what `e2e/<script> --cached` prints (or a skip with its reason).
pub fn locate_built(var: &str, script: &str, tools: &[&str]) -> Result<PathBuf, Missing> {
    if let Some(dir) = std::env::var_os(var) {
        let dir = PathBuf::from(dir);
        return match tools.iter().find(|tool| !dir.join(tool).is_file()) {
            None => Ok(dir),
            Some(tool) => Err(Missing::Fail(format!(
                "{var}={}: no executable {tool} there",
                dir.display()
            ))),
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("e2e")
        .join(script);
    let out = Command::new("bash")
        .arg(&script)
        .arg("--cached")
        .output()
        .map_err(|e| Missing::Skip(format!("cannot run bash {}: {e}", script.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match (out.status.success(), stdout.trim()) {
        (true, dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Err(Missing::Skip(format!("{}, or set {var}", stderr.trim()))),
    }
}
