//! One environment reconciled by a real Flux (`tests/plane/flux.rs`) from a real Git server
//! (`tests/plane/git_server.rs`) on the shared plane: a sandbox that is also the Git work tree
//! (environments/ and the rendered out/, committed and pushed as a user would), the Secrets
//! created by hand as the README says, and the GitRepository + Kustomization that
//! `infra gitops --flux` prints, applied with kubectl. Flux's objects live in a namespace of
//! their own per test (`<ns>-flux`), so tests run side by side on one Flux.

#![allow(
    dead_code,
    reason = "each test crate that includes this module uses a part of it"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, stderr, stdout};
use crate::plane;
use crate::plane::flux::Flux;
use crate::plane::git_server::GitServer;
use crate::sandbox::Sandbox;

/// The name `infra gitops` gives Flux's objects for `production`.
pub const NAME: &str = "ai-api-proxy-production";

/// Flux and the Git server of this test binary, started once; `None` when skipped. Panics
/// (in every test that asks) when Flux was asked for and did not start.
fn shared() -> Option<&'static (Flux, GitServer)> {
    type Shared = Result<Option<(Flux, GitServer)>, String>;
    static SHARED: OnceLock<Shared> = OnceLock::new();
    let plane = plane::shared()?;
    let started = SHARED.get_or_init(|| {
        let Some(flux) = plane.start_flux()? else {
            return Ok(None);
        };
        let git = GitServer::start(&plane.scratch("git"))?;
        Ok(Some((flux, git)))
    });
    match started {
        Ok(shared) => shared.as_ref(),
        Err(e) => panic!("{e}"),
    }
}

/// An environment Flux reconciles.
pub struct Reconciled {
    pub cluster: Cluster,
    /// Flux's namespace for this environment's GitRepository and Kustomization.
    pub flux_ns: String,
    /// The repository's URL on the Git server.
    pub url: String,
}

impl Reconciled {
    /// The `production` environment in namespace `ns` (created, with the Secrets), rendered
    /// with `--set namespace=<ns>` (unless `ns` is production's own), committed, pushed, and
    /// reconciled by Flux until its Kustomization is Ready and the HPA's minimum of replicas is
    /// available. `None` when skipped.
    pub fn production(ns: Option<&str>) -> Option<Self> {
        let (_, git) = shared()?;
        let plane = plane::shared()?;
        let ns = match ns {
            Some(ns) => ns.to_owned(),
            None => plane.unique_name("gitops"),
        };
        plane.kubectl(["create", "namespace", &ns]);
        let cluster = Cluster {
            plane,
            ns: ns.clone(),
            sandbox: Sandbox::new(),
        };
        cluster.create_secrets();
        let flux_ns = format!("{ns}-flux");
        plane.kubectl(["create", "namespace", &flux_ns]);
        let repo = format!("infra-{ns}");
        let bare = git.repo(&repo);
        git_ok(
            Path::new("."),
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                &bare.to_string_lossy(),
            ],
        );
        let env = Self {
            url: git.url(&repo),
            cluster,
            flux_ns,
        };
        let root = env.cluster.sandbox.root();
        git_ok(root, &["init", "-q", "-b", "main"]);
        git_ok(root, &["remote", "add", "origin", &bare.to_string_lossy()]);
        let sha = match env.own_namespace() {
            // The repository's own out/, as committed.
            true => {
                copy_dir(
                    &Path::new(env!("CARGO_MANIFEST_DIR")).join("out"),
                    &root.join("out"),
                );
                env.push("out/ as committed")
            }
            false => env.commit("production rendered"),
        };
        env.apply_gitops();
        env.wait_ready(&sha);
        // The HPA has raised the new Deployment to its minimum (2): the tests start settled.
        env.cluster.wait_available(2);
        Some(env)
    }

    /// Whether this environment is production's own namespace (no `--set namespace`).
    fn own_namespace(&self) -> bool {
        self.cluster.ns == "ai-services"
    }

    /// `--set namespace=<ns>`, unless the namespace is production's own.
    pub fn sets(&self) -> Vec<String> {
        match self.own_namespace() {
            true => Vec::new(),
            false => vec!["--set".into(), format!("namespace={}", self.cluster.ns)],
        }
    }

    /// Renders `production` into the work tree's out/, commits everything and pushes; the
    /// commit's id.
    pub fn commit(&self, message: &str) -> String {
        let out = self
            .cluster
            .sandbox
            .infra()
            .args(["render", "--env", "production"])
            .args(self.sets())
            .output()
            .unwrap();
        assert!(out.status.success(), "render: {}", stderr(&out));
        self.push(message)
    }

    /// Commits everything in the work tree and pushes; the commit's id.
    fn push(&self, message: &str) -> String {
        let root = self.cluster.sandbox.root();
        git_ok(root, &["add", "-A"]);
        git_ok(root, &["commit", "-q", "-m", message]);
        git_ok(root, &["push", "-q", "origin", "main"]);
        git_ok(root, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `infra gitops --env production --flux` for this repository, applied with kubectl.
    fn apply_gitops(&self) {
        let out = self
            .cluster
            .sandbox
            .infra()
            .args([
                "gitops",
                "--env",
                "production",
                "--flux",
                "--git-url",
                &self.url,
            ])
            .args([
                "--namespace",
                &self.flux_ns,
                "--interval",
                "10s",
                "--timeout",
                "3m",
            ])
            .args(self.sets())
            .output()
            .unwrap();
        assert!(out.status.success(), "infra gitops: {}", stderr(&out));
        // As the README says: kubectl apply --server-side -f -
        let mut apply = self
            .cluster
            .plane
            .kubectl_command()
            .args(["apply", "--server-side", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        apply.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        let applied = apply.wait_with_output().unwrap();
        assert!(applied.status.success(), "{}", stderr(&applied));
    }

    /// Flux's Kustomization, as JSON.
    pub fn kustomization(&self) -> Value {
        let json = self.cluster.plane.kubectl([
            "-n",
            &self.flux_ns,
            "get",
            "kustomization",
            NAME,
            "-o",
            "json",
        ]);
        serde_json::from_str(&json).unwrap()
    }

    /// Waits until the Kustomization applied commit `sha` and is Ready (its health checks
    /// passed), at most 5 minutes; fails early when Flux reports the apply failed.
    pub fn wait_ready(&self, sha: &str) {
        let plane = self.cluster.plane;
        let result = plane.wait_for(
            &format!("Kustomization {}/{NAME} Ready at {sha}", self.flux_ns),
            Duration::from_secs(300),
            || {
                let k = self.kustomization();
                let applied = k["status"]["lastAppliedRevision"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(sha));
                let current = k["status"]["observedGeneration"] == k["metadata"]["generation"];
                (applied && current && condition(&k, "Ready") == Some("True")).then_some(())
            },
        );
        if let Err(e) = result {
            panic!("{e}\nKustomization: {:#}", self.kustomization()["status"]);
        }
    }

    /// Asks Flux to reconcile now, as `flux reconcile kustomization --with-source` does (the
    /// `reconcile.fluxcd.io/requestedAt` annotation on both objects), and waits until the
    /// Kustomization has handled the request and is Ready.
    pub fn reconcile_now(&self, token: &str) {
        let plane = self.cluster.plane;
        let annotation = format!("reconcile.fluxcd.io/requestedAt={token}");
        for kind in ["gitrepository", "kustomization"] {
            plane.kubectl([
                "-n",
                &self.flux_ns,
                "annotate",
                "--overwrite",
                kind,
                NAME,
                &annotation,
            ]);
        }
        plane
            .wait_for(
                &format!("Kustomization {}/{NAME} handling {token}", self.flux_ns),
                Duration::from_secs(120),
                || {
                    let k = self.kustomization();
                    (k["status"]["lastHandledReconcileAt"] == token
                        && condition(&k, "Ready") == Some("True"))
                    .then_some(())
                },
            )
            .unwrap();
    }

    /// `infra <args> --env production --kubeconfig <plane>` (plus `--set namespace`).
    pub fn infra(&self, args: &[&str]) -> Output {
        let out = self
            .cluster
            .sandbox
            .infra()
            .env_remove("KUBECONFIG")
            .args(args)
            .args(["--env", "production", "--kubeconfig"])
            .arg(self.cluster.plane.kubeconfig())
            .args(self.sets())
            .output()
            .unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(crate::cluster::SECRET_VALUE), "{all}");
        out
    }
}

/// The status of condition `kind` of an object, if it has one.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// Runs git in `dir` as a fixed author; panics with its stderr when it fails.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@127.0.0.1"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Copies the files of `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
