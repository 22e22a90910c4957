//! Flux on a plane: source-controller and kustomize-controller (built from their Go modules by
//! `e2e/build-flux.sh`) as processes with the admin kubeconfig, their CRDs installed from the
//! same module zips, as `flux install` would set them up minus the container runtime.
//! source-controller serves its artifacts on 127.0.0.1; leader election is off.
//!
//! The binaries come from `E2E_FLUX_BIN` when set (then they must be there and start: CI), else
//! from the cache folder `e2e/build-flux.sh --cached` names (absent: the tests skip, saying so).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::bins::Missing;
use super::{Plane, free_ports, say};

/// The namespace the controllers run in and their objects live in, as `flux install` makes it.
pub const NAMESPACE: &str = "flux-system";
/// The two controllers, as `e2e/build-flux.sh` names them.
const CONTROLLERS: [&str; 2] = ["source-controller", "kustomize-controller"];

/// Flux running against a plane.
pub struct Flux {
    /// Where source-controller serves artifacts (`http://127.0.0.1:<port>`).
    pub storage: String,
}

impl Plane {
    /// Starts Flux's controllers against this plane; `Ok(None)` (reason printed) when they are
    /// not built and `E2E_FLUX_BIN` is not set; an error when they are asked for and cannot
    /// start. Once per plane.
    pub fn start_flux(&self) -> Result<Option<Flux>, String> {
        let bin = match locate() {
            Ok(bin) => bin,
            Err(Missing::Skip(why)) => {
                say(&format!(
                    "GitOps tests of {} skipped: {why}",
                    env!("CARGO_CRATE_NAME")
                ));
                return Ok(None);
            }
            Err(Missing::Fail(why)) => return Err(format!("Flux: {why}")),
        };
        self.boot_flux(&bin)
            .map(Some)
            .map_err(|e| format!("Flux: {e}"))
    }

    fn boot_flux(&self, bin: &Path) -> Result<Flux, String> {
        let crds = bin.join("crds");
        for args in [
            vec!["apply", "--server-side", "-f", &crds.to_string_lossy()],
            vec![
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=60s",
            ],
            vec!["create", "namespace", NAMESPACE],
        ]
        .iter()
        {
            let out = self.try_kubectl(args);
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(format!("kubectl {}: {stderr}", args.join(" ")));
            }
        }
        let [
            storage,
            source_health,
            source_metrics,
            kustomize_health,
            kustomize_metrics,
        ] = free_ports()?;
        let storage_dir = self.scratch("flux-storage");
        let kubeconfig = self.kubeconfig();
        // argv[0] names the plane's folder, which is how the watchdog knows its processes.
        let dir = self.dir.clone();
        let common = |cmd: &mut Command, name: &str, health: u16, metrics: u16| {
            cmd.arg0(dir.join(name))
                .env("RUNTIME_NAMESPACE", NAMESPACE)
                .env("KUBECONFIG", &kubeconfig)
                .arg(format!("--health-addr=127.0.0.1:{health}"))
                .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
                .arg("--enable-leader-election=false")
                .arg("--watch-all-namespaces=true")
                .arg("--log-encoding=console");
        };
        let mut source = Command::new(bin.join("source-controller"));
        common(
            &mut source,
            "source-controller",
            source_health,
            source_metrics,
        );
        source
            .arg(format!("--storage-path={}", storage_dir.display()))
            .arg(format!("--storage-addr=127.0.0.1:{storage}"))
            .arg(format!("--storage-adv-addr=127.0.0.1:{storage}"));
        let mut kustomize = Command::new(bin.join("kustomize-controller"));
        common(
            &mut kustomize,
            "kustomize-controller",
            kustomize_health,
            kustomize_metrics,
        );
        self.spawn("source-controller", source)?;
        self.spawn("kustomize-controller", kustomize)?;
        for (name, port) in [
            ("source-controller", source_health),
            ("kustomize-controller", kustomize_health),
        ] {
            self.wait_for(&format!("{name} /readyz"), Duration::from_secs(60), || {
                (http_status(port, "/readyz") == Some(200)).then_some(())
            })?;
        }
        say(&format!(
            "Flux up: source-controller serving artifacts at http://127.0.0.1:{storage}"
        ));
        Ok(Flux {
            storage: format!("http://127.0.0.1:{storage}"),
        })
    }
}

/// The status code of `GET path` on 127.0.0.1:`port`, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The folder holding the controllers and `crds/`.
fn locate() -> Result<PathBuf, Missing> {
    super::bins::locate_built("E2E_FLUX_BIN", "build-flux.sh", &CONTROLLERS)
}
