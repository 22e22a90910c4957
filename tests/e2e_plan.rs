//! `infra plan --live` on the real control plane: the offline plan's format, computed as
//! `kubectl diff --server-side` does, plus what a prune would delete; `--check` exits 1 on any
//! drift. Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr, stdout};

/// `kubectl diff --server-side --field-manager=infra -k` of what `infra render` writes for
/// the test's namespace and `sets`: its exit status (0 no drift, 1 drift) and output.
fn kubectl_diff(c: &Cluster, sets: &[&str]) -> (Option<i32>, String) {
    let mut render = c.sandbox.infra();
    render
        .args(["render", "--env", "development", "--set"])
        .arg(format!("namespace={}", c.ns))
        .args(sets.iter().flat_map(|s| ["--set", s]));
    assert!(render.output().unwrap().status.success());
    let out = c
        .plane
        .kubectl_command()
        .args(["diff", "--server-side", "--field-manager=infra", "-k"])
        .arg(c.sandbox.out().join("development"))
        .output()
        .unwrap();
    (out.status.code(), stdout(&out))
}

#[test]
fn the_live_plan_shows_creates_updates_and_prunes_and_check_fails_on_drift() {
    let Some(c) = Cluster::new("live") else {
        return;
    };
    let ns = &c.ns;
    let out = c.infra("plan", "development", &["--live", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("+ create     deployment-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(
        text.contains("+ create     configmap-applyset-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("is stale: run `infra apply --env development`"),
        "{}",
        stderr(&out)
    );

    c.infra_ok("apply", "development", &["--no-wait"]);
    let text = c.infra_ok("plan", "development", &["--live", "--check"]);
    assert!(
        text.contains(&format!(
            "Plan for {}/, namespace {ns}: 0 to create, 0 to update, 0 to delete, 7 unchanged.",
            c.plane.server()
        )),
        "{text}"
    );
    assert_eq!(kubectl_diff(&c, &[]).0, Some(0));

    // A change to the environment: the ConfigMap and, through its hash, the pod template.
    let burst = "proxy.rate_limit.burst=77";
    let out = c.infra(
        "plan",
        "development",
        &["--live", "--check", "--set", burst],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("~ update     configmap-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(
        text.contains("~ update     deployment-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(text.contains("+") && text.contains("77"), "{text}");
    assert!(
        !text.contains("managedFields") && !text.contains("resourceVersion"),
        "{text}"
    );
    assert!(
        text.contains("0 to create, 2 to update, 0 to delete, 5 unchanged"),
        "{text}"
    );
    let (code, diff) = kubectl_diff(&c, &[burst]);
    assert_eq!(code, Some(1));
    assert!(diff.contains("77"), "{diff}");

    // Drift in the cluster: a deleted object, and a member that left the plan.
    c.plane.kubectl(["-n", ns, "delete", "networkpolicy", APP]);
    let id =
        c.get("configmap/applyset-ai-api-proxy")["metadata"]["labels"]["applyset.kubernetes.io/id"]
            .as_str()
            .unwrap()
            .to_owned();
    c.kubectl_apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {APP}\n    app.kubernetes.io/instance: {APP}-development\n    app.kubernetes.io/managed-by: infra\n    applyset.kubernetes.io/part-of: {id}\n"
    ));
    let out = c.infra("plan", "development", &["--live", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("+ create     networkpolicy-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(text.contains("- delete     configmap-stray.yaml"), "{text}");
    assert!(
        text.contains("1 to create, 0 to update, 1 to delete, 6 unchanged"),
        "{text}"
    );
    // The plan wrote nothing.
    assert!(!c.exists(&format!("networkpolicy/{APP}")));
    assert!(c.exists("configmap/stray"));
}

#[test]
fn the_live_plan_names_the_live_revision_and_the_drift_from_it() {
    let Some(c) = Cluster::new("drift") else {
        return;
    };
    let text = c.infra_ok("plan", "development", &["--live"]);
    assert!(text.contains("Live revision: none"), "{text}");
    c.infra_ok("apply", "development", &["--no-wait"]);
    let text = c.infra_ok("plan", "development", &["--live"]);
    assert!(text.contains("Live revision: 1 (deployed "), "{text}");
    assert!(text.contains("the cluster matches it."), "{text}");

    c.plane
        .kubectl(["-n", &c.ns, "delete", &format!("networkpolicy/{APP}")]);
    let drifted = "the cluster has drifted from it: NetworkPolicy ai-api-proxy missing.";
    let text = c.infra_ok("plan", "development", &["--live"]);
    assert!(text.contains(drifted), "{text}");
    // Other settings than the live revision's: the drift is still measured against it.
    let text = c.infra_ok(
        "plan",
        "development",
        &["--live", "--set", "proxy.rate_limit.burst=77"],
    );
    assert!(
        text.contains("~ update     configmap-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(text.contains(drifted), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&c.infra_ok("plan", "development", &["--live", "--output", "json"]))
            .unwrap();
    assert_eq!(json["live_revision"]["number"], 1, "{json}");
    assert_eq!(
        json["live_revision"]["drift"],
        serde_json::json!(["NetworkPolicy ai-api-proxy missing"])
    );
}
