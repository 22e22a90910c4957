//! `infra apply` against the real control plane (`tests/plane`): idempotence, conflicts with
//! other field managers, the replicas handover to the HPA, preflight, a failure midway, and
//! `--kubeconfig`/`--context`. Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr, stdout};

/// `(generation, resourceVersion)` of every object infra applies in `ns`.
fn versions(c: &Cluster) -> Vec<(String, Option<i64>, String)> {
    let list = c.get("serviceaccount,configmap,service,deployment,hpa,pdb,ingress,networkpolicy");
    let mut found: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["metadata"]["name"] != "default"
                && o["metadata"]["name"] != "kube-root-ca.crt"
                // Every apply records a revision: not an object of the environment.
                && o["metadata"]["labels"]["infra.revision/of"].is_null()
        })
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o["metadata"]["generation"].as_i64(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn applying_an_unchanged_environment_again_changes_nothing() {
    let Some(c) = Cluster::new("idem") else {
        return;
    };
    let first = c.infra_ok("apply", "production", &["--timeout", "60s"]);
    assert!(
        first.contains(&format!("created Deployment {}/{APP}", c.ns)),
        "{first}"
    );
    assert!(first.contains("ready Deployment"), "{first}");
    eprintln!("{first}");
    let before = versions(&c);
    assert!(before.len() >= 8, "{before:?}");
    let second = c.infra_ok("apply", "production", &["--timeout", "60s"]);
    assert!(
        second.contains("0 created, 0 applied, 13 unchanged, 0 pruned"),
        "{second}"
    );
    assert_eq!(versions(&c), before, "{second}");
}

#[test]
fn a_field_another_manager_owns_fails_the_apply_before_anything_is_written() {
    let Some(c) = Cluster::new("conflict") else {
        return;
    };
    c.infra_ok("apply", "development", &["--no-wait"]);
    c.plane.kubectl([
        "-n",
        &c.ns,
        "scale",
        &format!("deployment/{APP}"),
        "--replicas=3",
    ]);
    let config_before = c.get(&format!("configmap/{APP}"))["metadata"]["resourceVersion"].clone();

    // A change to the ConfigMap rides along: it must not be written either.
    let change = ["--no-wait", "--set", "proxy.rate_limit.burst=77"];
    let out = c.infra("apply", "development", &change);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "fields that other field managers own would change, nothing was applied (1 conflict):"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Deployment {}/{APP}: .spec.replicas is owned by field manager `kubectl`",
            c.ns
        )),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    assert_eq!(
        c.get(&format!("configmap/{APP}"))["metadata"]["resourceVersion"],
        config_before
    );
    assert_eq!(c.replicas(), 3);

    let mut forced = change.to_vec();
    forced.push("--force-conflicts");
    let out = c.infra_ok("apply", "development", &forced);
    assert!(
        out.contains(&format!("applied Deployment {}/{APP}", c.ns)),
        "{out}"
    );
    assert!(
        out.contains(&format!("applied ConfigMap {}/{APP}", c.ns)),
        "{out}"
    );
    assert_eq!(c.replicas(), 1);
    let owners = c.replicas_owners();
    assert_eq!(owners, ["infra"]);
}

/// Keeps the proxy config (and so the pod template) the same on both sides of a switch of
/// autoscaling: the shared limits' fallback divisor must stay within the replica bounds.
const SAME_DIVISOR: [&str; 2] = ["--set", "proxy.shared_limits.replicas=3"];

/// Autoscaling off, three replicas set by `infra`.
const MANUAL: [&str; 6] = [
    "--set",
    "autoscaling.enabled=false",
    "--set",
    "replicas=3",
    SAME_DIVISOR[0],
    SAME_DIVISOR[1],
];

/// Applies production with [`MANUAL`] and waits for its three replicas.
fn running_three_replicas_by_hand(c: &Cluster) {
    c.infra_ok(
        "apply",
        "production",
        &[&MANUAL[..], &["--timeout", "90s"]].concat(),
    );
    c.wait_available(3);
}

#[test]
fn switching_autoscaling_on_never_drops_the_running_replicas() {
    let Some(c) = Cluster::new("handover") else {
        return;
    };
    running_three_replicas_by_hand(&c);

    // Same proxy config on both sides (the fallback divisor stays 3): only the handover changes.
    let out = c.infra_ok(
        "apply",
        "production",
        &[&SAME_DIVISOR[..], &["--timeout", "90s"]].concat(),
    );
    assert!(
        out.contains(&format!("created HorizontalPodAutoscaler {}/{APP}", c.ns)),
        "{out}"
    );
    assert_eq!(c.replicas(), 3);
    c.wait_available(3);
    let events = c.scaling_events();
    assert!(
        events.iter().all(|e| !e.contains("Scaled down")),
        "{events:?}"
    );
    let owners = c.replicas_owners();
    assert!(
        owners.contains(&"infra-handover-to-hpa".to_owned()),
        "{owners:?}"
    );
    assert!(!owners.contains(&"infra".to_owned()), "{owners:?}");
}

#[test]
fn a_failure_midway_reports_what_was_applied_and_keeps_the_replicas() {
    let Some(c) = Cluster::new("midway") else {
        return;
    };
    running_three_replicas_by_hand(&c);
    // Admission refuses the real (not the dry-run) creation of the HPA in this namespace: the
    // failure comes after the Deployment let go of spec.replicas.
    c.kubectl_apply(&format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: deny-hpa-{ns}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [autoscaling]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [horizontalpodautoscalers]
  validations:
  - expression: request.dryRun == true
    message: HPAs are frozen in this namespace
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: deny-hpa-{ns}}}
spec:
  policyName: deny-hpa-{ns}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {ns}}}
"#,
        ns = c.ns
    ));
    // The policy takes effect once the API server has loaded it; an apply that went through
    // before is undone (autoscaling off again) and tried again.
    let out = c
        .plane
        .wait_for(
            "the admission policy",
            std::time::Duration::from_secs(90),
            || {
                let out = c.infra(
                    "apply",
                    "production",
                    &[&SAME_DIVISOR[..], &["--no-wait"]].concat(),
                );
                if out.status.success() {
                    c.infra_ok(
                        "apply",
                        "production",
                        &[&MANUAL[..], &["--no-wait"]].concat(),
                    );
                    return None;
                }
                Some(out)
            },
        )
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    let ns = &c.ns;
    assert!(err.contains("HPAs are frozen in this namespace"), "{err}");
    assert!(err.contains("applying stopped partway:"), "{err}");
    assert!(
        err.contains(&format!("  applied: applied Deployment {ns}/{APP}")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  not applied: HorizontalPodAutoscaler {ns}/{APP}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("  not applied: NetworkPolicy {ns}/{APP}")),
        "{err}"
    );
    assert!(!c.exists(&format!("hpa/{APP}")));
    assert_eq!(c.replicas(), 3);
    c.wait_available(3);
    let events = c.scaling_events();
    assert!(
        events.iter().all(|e| !e.contains("Scaled down")),
        "{events:?}"
    );
    c.plane.kubectl([
        "delete",
        "validatingadmissionpolicybinding",
        &format!("deny-hpa-{ns}"),
    ]);
    c.plane.kubectl([
        "delete",
        "validatingadmissionpolicy",
        &format!("deny-hpa-{ns}"),
    ]);
}

#[test]
fn preflight_names_missing_secrets_keys_and_namespace_and_writes_nothing() {
    let Some(c) = Cluster::without_namespace("nons") else {
        return;
    };
    let out = c.infra("apply", "development", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("preflight failed, nothing was applied (3 problems):"),
        "{err}"
    );
    assert!(
        err.contains(&format!("namespace `{}` does not exist yet", c.ns)),
        "{err}"
    );
    assert!(
        err.contains("Secret `holysheep-api-key` (key `api-key`) does not exist"),
        "{err}"
    );
    assert!(
        !c.plane
            .try_kubectl(["get", "namespace", &c.ns])
            .status
            .success()
    );

    c.plane.kubectl(["create", "namespace", &c.ns]);
    c.plane.kubectl([
        "-n",
        &c.ns,
        "create",
        "secret",
        "generic",
        "holysheep-api-key",
        "--from-literal=apikey=x",
    ]);
    let out = c.infra("apply", "development", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("(2 problems)"), "{err}");
    assert!(
        err.contains("has no key `api-key` (it has keys apikey)"),
        "{err}"
    );
    assert!(
        err.contains("Secret `ai-api-client-keys` (key `keys`) does not exist"),
        "{err}"
    );
    assert!(!c.exists("configmap/applyset-ai-api-proxy"));
    assert!(!c.exists(&format!("deployment/{APP}")));
}

#[test]
fn preflight_names_every_verb_rbac_denies_and_writes_nothing() {
    let Some(c) = Cluster::new("rbac") else {
        return;
    };
    let user = c.ns.replace('-', "");
    let kubeconfig = c.plane.user_kubeconfig(&user, &[]);
    // Everything apply needs, but delete of PodDisruptionBudgets and patch of NetworkPolicies.
    c.kubectl_apply(&format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: deployer, namespace: {ns}}}
rules:
- apiGroups: ["", apps, autoscaling]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, create, delete]
- apiGroups: [networking.k8s.io, gateway.networking.k8s.io, monitoring.coreos.com]
  resources: [ingresses, httproutes, podmonitors, prometheusrules]
  verbs: ["*"]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: deployer, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}}
subjects: [{{kind: User, name: {user}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: namespaces-{ns}}}
rules: [{{apiGroups: [""], resources: [namespaces], verbs: [get, create, patch]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: namespaces-{ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: namespaces-{ns}}}
subjects: [{{kind: User, name: {user}}}]
"#,
        ns = c.ns
    ));
    let mut cmd = c.infra_command("apply", "production", &["--no-wait"]);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let kubeconfig_at = args.iter().position(|a| a == "--kubeconfig").unwrap() + 1;
    let mut cmd2 = c.sandbox.infra();
    cmd2.args(&args[..kubeconfig_at])
        .arg(&kubeconfig)
        .args(&args[kubeconfig_at + 1..]);
    let _ = &mut cmd;
    let out = cmd2.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("preflight failed, nothing was applied (2 problems):"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "not allowed to delete poddisruptionbudgets.policy in namespace `{}`",
            c.ns
        )),
        "{err}"
    );
    assert!(
        err.contains("not allowed to patch networkpolicies.networking.k8s.io"),
        "{err}"
    );
    assert!(!c.exists("configmap/applyset-ai-api-proxy"));
    assert!(!c.exists(&format!("deployment/{APP}")));
}

#[test]
fn kubeconfig_and_context_choose_the_cluster_and_the_environment_the_namespace() {
    let Some(c) = Cluster::new("context") else {
        return;
    };
    let view: serde_json::Value =
        serde_json::from_str(&c.plane.kubectl(["config", "view", "--raw", "-o", "json"])).unwrap();
    let admin = view["contexts"][0]["name"].as_str().unwrap().to_owned();
    let cluster = view["contexts"][0]["context"]["cluster"].as_str().unwrap();
    let user = view["contexts"][0]["context"]["user"].as_str().unwrap();
    // A copy whose current context points at a closed port and whose contexts name another
    // namespace: --context picks the cluster, the environment the namespace.
    let copy = c.sandbox.root().join("two-contexts.kubeconfig");
    std::fs::copy(c.plane.kubeconfig(), &copy).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = |args: &[&str]| {
        let mut all = vec!["config", "--kubeconfig", copy.to_str().unwrap()];
        all.extend_from_slice(args);
        c.plane.kubectl(all);
    };
    config(&[
        "set-cluster",
        "closed",
        &format!("--server=https://127.0.0.1:{closed}"),
    ]);
    config(&[
        "set-context",
        "closed",
        "--cluster=closed",
        &format!("--user={user}"),
    ]);
    config(&[
        "set-context",
        &admin,
        &format!("--cluster={cluster}"),
        "--namespace=default",
    ]);
    config(&["use-context", "closed"]);

    let run = |extra: &[&str]| {
        let mut cmd = c.sandbox.infra();
        cmd.args(["apply", "--env", "development", "--no-wait", "--set"])
            .arg(format!("namespace={}", c.ns))
            .arg("--kubeconfig")
            .arg(&copy)
            .args(extra);
        cmd.output().unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--context", &admin]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(c.exists(&format!("deployment/{APP}")));
    assert!(
        !c.plane
            .try_kubectl(["-n", "default", "get", "deployment", APP])
            .status
            .success()
    );
}
