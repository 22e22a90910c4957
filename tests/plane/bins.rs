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
    if let Some(dir) = std::env::var_os("E2E_PLANE_BIN") {
        let dir = PathBuf::from(dir);
        return match missing_tools(&dir) {
            None => Ok(dir),
            Some(tool) => Err(Missing::Fail(format!(
                "E2E_PLANE_BIN={}: no executable {tool} there",
                dir.display()
            ))),
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/build-plane.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--cached")
        .output()
        .map_err(|e| Missing::Skip(format!("cannot run bash {}: {e}", script.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match (out.status.success(), stdout.trim()) {
        (true, dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Err(Missing::Skip(format!(
            "{}, or set E2E_PLANE_BIN",
            stderr.trim()
        ))),
    }
}

fn missing_tools(dir: &Path) -> Option<&'static str> {
    TOOLS.into_iter().find(|tool| !dir.join(tool).is_file())
}
