//! The ApplySet on the real control plane: prune over the kinds we build and the kinds the
//! parent records, never an object without every one of our labels; and kubectl with
//! `KUBECTL_APPLYSET=true` and `infra` each recognise the other's set and refuse to take it
//! over (KEP-3659). Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr, stdout};

const PARENT: &str = "configmap/applyset-ai-api-proxy";

/// `kubectl apply --prune --applyset=configmap/applyset-ai-api-proxy` of one ConfigMap, with
/// `KUBECTL_APPLYSET=true`.
fn kubectl_applyset(c: &Cluster) -> std::process::Output {
    let file = c.sandbox.root().join("kubectl-member.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubectl-member\ndata:\n  a: b\n",
    )
    .unwrap();
    c.plane
        .kubectl_command()
        .env("KUBECTL_APPLYSET", "true")
        .args(["-n", &c.ns, "apply", "--prune", "--applyset", PARENT, "-f"])
        .arg(&file)
        .output()
        .unwrap()
}

/// A ConfigMap carrying `labels` (`key: value` lines).
fn config_map(c: &Cluster, name: &str, labels: &[(&str, String)]) {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    c.kubectl_apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {}\n  labels:\n{labels}",
        c.ns
    ));
}

fn our_labels(c: &Cluster) -> Vec<(&'static str, String)> {
    let parent = c.get(PARENT);
    let id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
        .as_str()
        .unwrap()
        .to_owned();
    vec![
        ("app.kubernetes.io/name", APP.into()),
        ("app.kubernetes.io/instance", format!("{APP}-production")),
        ("app.kubernetes.io/managed-by", "infra".into()),
        ("applyset.kubernetes.io/part-of", id),
    ]
}

#[test]
fn prune_deletes_members_that_left_the_plan_and_nothing_without_our_labels() {
    let Some(c) = Cluster::new("prune") else {
        return;
    };
    c.infra_ok("apply", "production", &["--no-wait"]);
    let labels = our_labels(&c);
    config_map(&c, "stray", &labels);
    config_map(&c, "lookalike", &labels[..3]);
    // A kind infra does not build, recorded by the parent (as an older version would have).
    c.kubectl_apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: stray\n  namespace: {}\n  labels:\n{}rules: []\n",
        c.ns,
        labels.iter().map(|(k, v)| format!("    {k}: \"{v}\"\n")).collect::<String>()
    ));
    let kinds =
        c.get(PARENT)["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
            .as_str()
            .unwrap()
            .to_owned();
    c.plane.kubectl([
        "-n",
        &c.ns,
        "annotate",
        "--overwrite",
        PARENT,
        &format!(
            "applyset.kubernetes.io/contains-group-kinds={kinds},Role.rbac.authorization.k8s.io"
        ),
    ]);

    let out = c.infra_ok(
        "apply",
        "production",
        &[
            "--no-wait",
            "--force-conflicts",
            "--set",
            "ingress.enabled=false",
            "--set",
            "disruption_budget.enabled=false",
        ],
    );
    let ns = &c.ns;
    for pruned in [
        format!("pruned Role {ns}/stray"),
        format!("pruned ConfigMap {ns}/stray"),
        format!("pruned PodDisruptionBudget {ns}/{APP}"),
        format!("pruned Ingress {ns}/{APP}"),
    ] {
        assert!(out.contains(&pruned), "{pruned}\n{out}");
    }
    assert!(out.contains("4 pruned"), "{out}");
    assert!(!c.exists(&format!("ingress/{APP}")));
    assert!(!c.exists(&format!("pdb/{APP}")));
    assert!(!c.exists("role/stray"));
    assert!(c.exists("configmap/lookalike"));
    assert!(c.exists("secret/holysheep-api-key"));
    assert!(c.exists(&format!("deployment/{APP}")));
    let kinds =
        c.get(PARENT)["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
            .clone();
    assert_eq!(
        kinds,
        "ConfigMap,Deployment.apps,HorizontalPodAutoscaler.autoscaling,NetworkPolicy.networking.k8s.io,PodMonitor.monitoring.coreos.com,PrometheusRule.monitoring.coreos.com,Service,ServiceAccount"
    );
}

#[test]
fn infra_refuses_a_set_kubectl_manages() {
    let Some(c) = Cluster::new("kubectlset") else {
        return;
    };
    let out = kubectl_applyset(&c);
    assert!(out.status.success(), "{}", stderr(&out));
    let tooling = c.get(PARENT)["metadata"]["annotations"]["applyset.kubernetes.io/tooling"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(tooling.starts_with("kubectl/"), "{tooling}");

    let out = c.infra("apply", "production", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ConfigMap {}/applyset-ai-api-proxy is the parent of an ApplySet managed by `{tooling}`, not one infra manages: refusing to change it or its members",
            c.ns
        )),
        "{err}"
    );
    assert!(!c.exists(&format!("deployment/{APP}")));
    assert!(c.exists("configmap/kubectl-member"));
    let out = c.infra("plan", "production", &["--live"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));
}

#[test]
fn kubectl_refuses_the_set_infra_manages() {
    let Some(c) = Cluster::new("infraset") else {
        return;
    };
    c.infra_ok("apply", "development", &["--no-wait"]);
    let before = c.get(PARENT)["metadata"]["resourceVersion"].clone();
    let out = kubectl_applyset(&c);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("already exists and is managed by tooling \"infra\" instead of \"kubectl\""),
        "{err}"
    );
    assert!(c.exists(&format!("deployment/{APP}")));
    assert!(!c.exists("configmap/kubectl-member"));
    assert_eq!(c.get(PARENT)["metadata"]["resourceVersion"], before);
}

#[test]
fn a_parent_no_tool_manages_is_refused() {
    let Some(c) = Cluster::new("notool") else {
        return;
    };
    config_map(&c, "applyset-ai-api-proxy", &[("team", "a".into())]);
    let out = c.infra("apply", "development", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is not an ApplySet parent"), "{err}");
    assert!(!c.exists(&format!("deployment/{APP}")));
}
