//! A real Kubernetes control plane for the e2e tests (`tests/e2e_*.rs`): etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok standing in for two nodes (zone-a, zone-b),
//! built from the Go modules under `e2e/` by `e2e/build-plane.sh` and started on 127.0.0.1 with
//! free ports and certificates made for the run. Pods really get scheduled and become Ready
//! (kwok's fast stages), or fail as `e2e/failure-stages.yaml` says for pods labelled
//! `e2e.infra/fail: image-pull | crash-loop | unready`.
//!
//! ```ignore
//! mod plane;
//!
//! #[test]
//! fn rolls_out() {
//!     let Some(plane) = plane::shared() else { return }; // not built: skipped, reason printed
//!     let ns = plane.namespace("rollout");                 // fresh, its `default` SA exists
//!     plane.kubectl(["-n", &ns, "create", "deployment", "web", "--image=nginx:1.29"]);
//!     let mut infra = Command::new(env!("CARGO_BIN_EXE_infra"));
//!     infra.env("KUBECONFIG", plane.kubeconfig()); // kube-rs reads the same file
//! }
//! ```
//!
//! [`shared`] is the plane of the whole test binary (started once, a few seconds; tests run in
//! parallel on it, so each takes its own namespace); [`Plane::start`] gives a test a plane of
//! its own, stopped when dropped. Either way every process stops when the test binary exits,
//! however it exits (`procs`). When the binaries are not built and `E2E_PLANE_BIN` is not set,
//! both return `None` after printing why, and the test passes without running; with
//! `E2E_PLANE_BIN` set (CI) a missing binary or a plane that does not start fails the test.
//! `E2E_PLANE_KEEP=1` keeps the plane's folder (logs, certificates) after the run.

#![allow(
    dead_code,
    reason = "each test crate that includes this module uses a part of it"
)]

mod bins;
mod components;
pub mod flux;
pub mod git_server;
mod pki;
mod procs;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bins::Missing;
use components::{Components, NODE_COUNT, NODES};
use pki::Pki;
use procs::Procs;

/// The plane of this test binary, started on first use; `None` (reason printed once) when the
/// binaries are not built. Panics when `E2E_PLANE_BIN` is set and the plane cannot start.
pub fn shared() -> Option<&'static Plane> {
    static PLANE: OnceLock<Result<Plane, Missing>> = OnceLock::new();
    match PLANE.get_or_init(Plane::launch) {
        Ok(plane) => Some(plane),
        Err(Missing::Skip(_)) => None,
        Err(Missing::Fail(why)) => panic!("e2e control plane: {why}"),
    }
}

/// One running control plane.
pub struct Plane {
    dir: PathBuf,
    bin: PathBuf,
    server: String,
    pki: Pki,
    procs: Mutex<Procs>,
    next_name: AtomicUsize,
    started_in: Duration,
}

impl Plane {
    /// A plane of the test's own, stopped on drop; `None` (reason printed) when not built.
    pub fn start() -> Option<Self> {
        match Self::launch() {
            Ok(plane) => Some(plane),
            Err(Missing::Skip(_)) => None,
            Err(Missing::Fail(why)) => panic!("e2e control plane: {why}"),
        }
    }

    /// The kubeconfig of the cluster admin (CN=admin, O=system:masters), for kubectl and kube-rs.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A folder `name` inside the plane's own (removed with it), created if missing.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// How long the plane took to start, from nothing to nodes Ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// A kubeconfig for a user without privileges (client certificate CN=`user`, O=`groups`):
    /// grant it what a test needs with Roles and RoleBindings made by [`Plane::kubectl`].
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        let path = self.dir.join(format!("{user}.kubeconfig"));
        self.pki.client(user, groups).unwrap();
        fs::write(&path, self.pki.kubeconfig(&self.server, user)).unwrap();
        path
    }

    /// `kubectl` of the same release as the server, on the admin kubeconfig, with its own
    /// discovery cache; add arguments, stdin, `KUBECTL_APPLYSET=true`…
    pub fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.join("kube-cache"));
        cmd
    }

    /// Runs kubectl with `args`, whatever its exit status.
    pub fn try_kubectl(&self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Output {
        self.kubectl_command().args(args).output().unwrap()
    }

    /// Runs kubectl with `args` and returns its stdout; panics with its stderr if it fails.
    pub fn kubectl(&self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> String {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.try_kubectl(&args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A name no other caller of this plane gets: `<prefix>-<n>`.
    pub fn unique_name(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}",
            self.next_name.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A new namespace named after `prefix`, once its `default` ServiceAccount exists (the
    /// ServiceAccount admission plugin rejects pods until then).
    pub fn namespace(&self, prefix: &str) -> String {
        let ns = self.unique_name(prefix);
        self.kubectl(["create", "namespace", &ns]);
        let ready = Duration::from_secs(30);
        self.wait_for(&format!("namespace {ns}"), ready, || {
            let out = self.try_kubectl(["-n", &ns, "get", "serviceaccount", "default"]);
            out.status.success().then_some(())
        })
        .unwrap();
        ns
    }

    /// Polls `ready` every 100 ms for at most `limit`; fails early, with the plane's logs, when
    /// one of its processes has exited.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Result<T, String> {
        let start = Instant::now();
        loop {
            self.procs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .check()
                .map_err(|e| format!("waiting for {what}: {e}"))?;
            if let Some(value) = ready() {
                return Ok(value);
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "{what}: not ready after {limit:?}\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of every process's log (for a failing test's message).
    pub fn logs(&self) -> String {
        let procs = self.procs.lock().unwrap_or_else(PoisonError::into_inner);
        procs.tails()
    }

    fn launch() -> Result<Self, Missing> {
        static SKIPPED: Once = Once::new();
        let bin = bins::locate().inspect_err(|missing| {
            if let Missing::Skip(why) = missing {
                let crate_name = env!("CARGO_CRATE_NAME");
                SKIPPED.call_once(|| say(&format!("e2e tests of {crate_name} skipped: {why}")));
            }
        })?;
        let start = Instant::now();
        let dir = std::env::temp_dir().join(format!(
            "infra-e2e-{}-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id(),
            PLANES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let keep = format!("(E2E_PLANE_KEEP=1 keeps {})", dir.display());
        Self::boot(bin, dir, start).map_err(|e| Missing::Fail(format!("{e}\n{keep}")))
    }

    fn boot(bin: PathBuf, dir: PathBuf, start: Instant) -> Result<Self, String> {
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let procs = Procs::new(&dir)?;
        let pki = Pki::create(&dir)?;
        pki.client("admin", &["system:masters"])?;
        let [etcd, peer, api] = free_ports()?;
        let server = format!("https://127.0.0.1:{api}");
        let plane = Self {
            dir,
            bin,
            server,
            pki,
            procs: Mutex::new(procs),
            next_name: AtomicUsize::new(0),
            started_in: Duration::ZERO,
        };
        let kubeconfig = plane.kubeconfig();
        fs::write(&kubeconfig, plane.pki.kubeconfig(&plane.server, "admin"))
            .map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
        let components = Components {
            bin: &plane.bin,
            dir: &plane.dir,
            pki: &plane.pki,
            kubeconfig: &kubeconfig,
        };
        plane.spawn("etcd", components.etcd(etcd, peer))?;
        plane.spawn("kube-apiserver", components.apiserver(etcd, api))?;
        plane.wait_for("kube-apiserver /readyz", Duration::from_secs(90), || {
            let out = plane.try_kubectl(["get", "--raw", "/readyz"]);
            out.status.success().then_some(())
        })?;
        let api_ready = start.elapsed();

        plane.spawn("kube-controller-manager", components.controller_manager())?;
        plane.spawn("kube-scheduler", components.scheduler())?;
        plane.spawn("kwok", components.kwok())?;
        let nodes = plane.dir.join("nodes.yaml");
        fs::write(&nodes, NODES).map_err(|e| format!("{}: {e}", nodes.display()))?;
        let out = plane.try_kubectl([OsStr::new("create"), "-f".as_ref(), nodes.as_os_str()]);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("creating the nodes: {stderr}"));
        }
        plane.wait_for(
            "Ready nodes without taints",
            Duration::from_secs(60),
            || {
                let out = plane.try_kubectl(["get", "nodes", "-o", "json"]);
                nodes_ready(&out.stdout).then_some(())
            },
        )?;
        plane.install_crds()?;
        say(&format!(
            "e2e control plane up in {:.1} s (API server ready in {:.1} s) at {} ({})",
            start.elapsed().as_secs_f64(),
            api_ready.as_secs_f64(),
            plane.server,
            plane.dir.display()
        ));
        Ok(Self {
            started_in: start.elapsed(),
            ..plane
        })
    }

    /// Installs the CRDs of the custom resources infra renders (HTTPRoute, PodMonitor,
    /// PrometheusRule, as `.ci/fetch-crds` pins them), as a platform team's cluster has them.
    fn install_crds(&self) -> Result<(), String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/fetch-crds");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("bash {}: {e}", script.display()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("fetching the CRDs: {stderr}"));
        }
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        for args in [
            vec!["apply", "--server-side", "-f", dir.as_str()],
            vec![
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=60s",
            ],
        ] {
            let out = self.try_kubectl(&args);
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(format!("kubectl {}: {stderr}", args.join(" ")));
            }
        }
        Ok(())
    }

    fn spawn(&self, name: &'static str, cmd: Command) -> Result<(), String> {
        let mut procs = self.procs.lock().unwrap_or_else(PoisonError::into_inner);
        procs.spawn(name, cmd)
    }
}

static PLANES: AtomicUsize = AtomicUsize::new(0);

/// Every node Ready, and without the not-ready taint the node-lifecycle controller removes.
fn nodes_ready(json: &[u8]) -> bool {
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(json) else {
        return false;
    };
    let Some(items) = list["items"].as_array() else {
        return false;
    };
    items.len() == NODE_COUNT
        && items.iter().all(|node| {
            let ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready && node["spec"]["taints"].is_null()
        })
}

/// Distinct free ports on 127.0.0.1 (all held open until every one is picked).
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("free port: {e}"))?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().map_err(|e| e.to_string())?.port();
    }
    Ok(ports)
}

/// A line on the test binary's stderr that the test harness does not capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
