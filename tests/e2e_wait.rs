//! `infra apply` waiting on the real control plane: kstatus readiness of every object, and on
//! failure or timeout the failing pods of the new ReplicaSet and why (kwok plays the kubelet:
//! image pull errors and OOMKilled crash loops by pod label, see e2e/failure-stages.yaml; the
//! scheduler's unschedulable message is real). Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr, stdout};

/// Applies development, then has another field manager add the failure label to the pod
/// template (a new ReplicaSet whose pods fail), and applies again with a short timeout.
fn fail_pods_with(c: &Cluster, failure: &str) -> (String, String) {
    c.infra_ok("apply", "development", &["--timeout", "60s"]);
    c.plane.kubectl([
        "-n",
        &c.ns,
        "patch",
        "deployment",
        APP,
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"template":{{"metadata":{{"labels":{{"e2e.infra/fail":"{failure}"}}}}}}}}}}"#),
    ]);
    let out = c.infra("apply", "development", &["--timeout", "8s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    (stdout(&out), stderr(&out))
}

#[test]
fn an_image_pull_error_is_named_with_the_pod_and_its_events() {
    let Some(c) = Cluster::new("pull") else {
        return;
    };
    let (out, err) = fail_pods_with(&c, "image-pull");
    assert!(err.contains("not ready within 8s:"), "{err}");
    assert!(err.contains(&format!("Deployment {}/{APP}", c.ns)), "{err}");
    assert!(err.contains(&format!("pod {}/{APP}-", c.ns)), "{err}");
    assert!(err.contains("(new ReplicaSet "), "{err}");
    assert!(
        err.contains("container proxy: ImagePullBackOff: Back-off pulling image"),
        "{err}"
    );
    assert!(
        err.contains("Warning Failed: Failed to pull image"),
        "{err}"
    );
    // Not a terminal: progress comes as plain lines.
    assert!(out.contains("waiting for Deployment"), "{out}");
    assert!(!out.contains('\r'), "{out}");
}

#[test]
fn a_crash_loop_is_named_with_the_last_exit_reason() {
    let Some(c) = Cluster::new("crash") else {
        return;
    };
    let (_, err) = fail_pods_with(&c, "crash-loop");
    assert!(
        err.contains("container proxy: CrashLoopBackOff")
            && err.contains("last exit: OOMKilled, exit code 137"),
        "{err}"
    );
    assert!(err.contains("Warning BackOff"), "{err}");
}

#[test]
fn an_unschedulable_pod_is_named_with_the_schedulers_message() {
    let Some(c) = Cluster::new("unsched") else {
        return;
    };
    let out = c.infra(
        "apply",
        "development",
        &[
            "--timeout",
            "8s",
            "--set",
            "resources.requests.cpu=6",
            "--set",
            "resources.limits.cpu=6",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("0 of 1 updated replicas available"), "{err}");
    assert!(
        err.contains("unschedulable: 0/2 nodes are available"),
        "{err}"
    );
    assert!(err.contains("Insufficient cpu"), "{err}");
}

#[test]
fn a_dry_run_persists_nothing_and_waits_for_nothing() {
    let Some(c) = Cluster::new("dry") else { return };
    let out = c.infra_ok("apply", "production", &["--dry-run"]);
    assert!(
        out.contains(&format!("created Deployment {}/{APP} (dry run)", c.ns)),
        "{out}"
    );
    assert!(out.contains("Dry run of `production`"), "{out}");
    assert!(!out.contains("Waiting"), "{out}");
    assert!(!c.exists(&format!("deployment/{APP}")));
    assert!(!c.exists("configmap/applyset-ai-api-proxy"));
}
