//! One environment of the e2e tests on the real control plane (`tests/plane`): a fresh
//! namespace with the Secrets the proxy reads, a copy of environments/, and `infra` pointed at
//! the plane with `--kubeconfig` and `--set namespace=<ns>`.

#![allow(
    dead_code,
    reason = "each test crate that includes this module uses a part of it"
)]

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::plane::{self, Plane};
use crate::sandbox::Sandbox;

/// A value that must never be printed.
pub const SECRET_VALUE: &str = "sk-e2e-do-not-print-me";

/// The application's name in every environment (objects are named after it).
pub const APP: &str = "ai-api-proxy";

/// A namespace of its own on the shared plane, and a sandbox to run `infra` in.
pub struct Cluster {
    pub plane: &'static Plane,
    pub ns: String,
    pub sandbox: Sandbox,
}

impl Cluster {
    /// A fresh namespace holding the proxy's Secrets; `None` (skipped) without a plane.
    pub fn new(prefix: &str) -> Option<Self> {
        let plane = plane::shared()?;
        let ns = plane.namespace(prefix);
        let cluster = Self {
            plane,
            ns,
            sandbox: Sandbox::new(),
        };
        cluster.create_secrets();
        Some(cluster)
    }

    /// A fresh namespace name that does not exist yet (nothing created).
    pub fn without_namespace(prefix: &str) -> Option<Self> {
        let plane = plane::shared()?;
        Some(Self {
            ns: plane.unique_name(prefix),
            plane,
            sandbox: Sandbox::new(),
        })
    }

    /// Creates the Secrets every environment references.
    pub fn create_secrets(&self) {
        let ns = self.ns.as_str();
        self.plane.kubectl([
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "holysheep-api-key",
            &format!("--from-literal=api-key={SECRET_VALUE}"),
        ]);
        self.plane.kubectl([
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "ai-api-client-keys",
            &format!("--from-literal=keys=team-a:{SECRET_VALUE}"),
        ]);
        self.plane.kubectl([
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "ai-api-redis",
            &format!("--from-literal=password={SECRET_VALUE}"),
        ]);
    }

    /// `infra <command> --env <env> --kubeconfig <plane> --set namespace=<ns> <args>`.
    pub fn infra_command(&self, command: &str, env: &str, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.infra();
        cmd.env_remove("KUBECONFIG")
            .arg(command)
            .args(["--env", env, "--kubeconfig"])
            .arg(self.plane.kubeconfig())
            .args(["--set", &format!("namespace={}", self.ns)])
            .args(args);
        cmd
    }

    /// Runs `infra`, whatever its exit status; never prints a Secret's value.
    pub fn infra(&self, command: &str, env: &str, args: &[&str]) -> Output {
        let out = self.infra_command(command, env, args).output().unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(SECRET_VALUE), "{all}");
        out
    }

    /// Runs `infra` and asserts it succeeded; returns its stdout.
    pub fn infra_ok(&self, command: &str, env: &str, args: &[&str]) -> String {
        let out = self.infra(command, env, args);
        assert!(
            out.status.success(),
            "infra {command} {env} {args:?} failed ({}):\n{}\n{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `kubectl -n <ns> get <what> -o json`, parsed.
    pub fn get(&self, what: &str) -> Value {
        let json = self
            .plane
            .kubectl(["-n", &self.ns, "get", what, "-o", "json"]);
        serde_json::from_str(&json).unwrap()
    }

    /// The managers owning the Deployment's `spec.replicas`.
    pub fn replicas_owners(&self) -> Vec<String> {
        let json = self.plane.kubectl([
            "-n",
            &self.ns,
            "get",
            &format!("deployment/{APP}"),
            "-o",
            "json",
            "--show-managed-fields",
        ]);
        let d: Value = serde_json::from_str(&json).unwrap();
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["fieldsV1"]["f:spec"].get("f:replicas").is_some())
            .map(|m| m["manager"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Whether `kubectl -n <ns> get <what>` finds it.
    pub fn exists(&self, what: &str) -> bool {
        self.plane
            .try_kubectl(["-n", &self.ns, "get", what])
            .status
            .success()
    }

    /// Polls until the Deployment has `n` available replicas (at most a minute).
    pub fn wait_available(&self, n: i64) {
        self.plane
            .wait_for(
                &format!("{n} available replicas in {}", self.ns),
                Duration::from_secs(60),
                || {
                    let d = self.get(&format!("deployment/{APP}"));
                    (d["status"]["availableReplicas"].as_i64() == Some(n)
                        && d["status"]["updatedReplicas"].as_i64() == Some(n))
                    .then_some(())
                },
            )
            .unwrap();
    }
}

impl Cluster {
    /// `kubectl apply -f -` of `yaml` (cluster-wide objects, or with their own namespace).
    pub fn kubectl_apply(&self, yaml: &str) {
        let mut child = self
            .plane
            .kubectl_command()
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// The Deployment's `spec.replicas`.
    pub fn replicas(&self) -> i64 {
        self.get(&format!("deployment/{APP}"))["spec"]["replicas"]
            .as_i64()
            .unwrap()
    }

    /// The messages of the ScalingReplicaSet events of the namespace (what the Deployment
    /// controller did to its ReplicaSets).
    pub fn scaling_events(&self) -> Vec<String> {
        let events = self.get("events");
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == "ScalingReplicaSet")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
