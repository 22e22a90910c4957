//! `infra apply` end to end: the real binary against a stand-in Kubernetes API server on
//! 127.0.0.1 that speaks the REST wire protocol apply uses (GET, server-side apply PATCH,
//! LIST with labelSelector, DELETE), keeps objects in memory and records every request.
//! The last test runs against a real cluster and is ignored unless asked for.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a broken fixture stops the test loudly"
)]
mod fake_api;
mod sandbox;

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use axum::http::Method;
use fake_api::*;
use serde_json::{Value, json};

/// The REST path of a rendered object.
fn path_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap();
    let name = object["metadata"]["name"].as_str().unwrap();
    let plural = match kind {
        "Namespace" => return format!("/api/v1/namespaces/{name}"),
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers".to_owned(),
        "NetworkPolicy" => "networkpolicies".to_owned(),
        "Ingress" => "ingresses".to_owned(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let root = if api_version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{api_version}")
    };
    format!("{root}/namespaces/{NS}/{plural}/{name}")
}

fn assert_nothing_written(fake: &Fake, o: &Output) {
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(o), stderr(o));
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    assert!(!stderr(o).contains(SECRET_VALUE) && !stderr(o).contains(&base64(SECRET_VALUE)));
    assert!(!stdout(o).contains(SECRET_VALUE) && !stdout(o).contains(&base64(SECRET_VALUE)));
}

#[test]
fn a_missing_secret_fails_the_preflight_and_nothing_is_applied() {
    let fake = Fake::start(Rollout::Done);
    fake.put_namespace();
    fake.put_secret("ai-api-client-keys", "keys");
    let o = fake.infra(&["apply", "--env", "production"]);
    assert_nothing_written(&fake, &o);
    let err = stderr(&o);
    assert!(
        err.contains("preflight failed, nothing was applied"),
        "{err}"
    );
    assert!(
        err.contains(
            "Secret `holysheep-api-key` (key `api-key`) does not exist in namespace `ai-services`"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "kubectl -n ai-services create secret generic holysheep-api-key --from-literal=api-key="
        ),
        "{err}"
    );
    assert!(!err.contains("ai-api-client-keys"), "{err}");
    assert!(!err.contains("does not exist yet"), "{err}");
}

#[test]
fn a_missing_namespace_is_named_with_the_secrets() {
    let fake = Fake::start(Rollout::Done);
    let o = fake.infra(&["apply", "--env", "production", "--dry-run"]);
    assert_nothing_written(&fake, &o);
    let err = stderr(&o);
    assert!(
        err.contains("3 Secret keys the proxy reads are missing"),
        "{err}"
    );
    assert!(
        err.contains("namespace `ai-services` does not exist yet"),
        "{err}"
    );
    assert!(
        err.contains("kubectl create namespace ai-services"),
        "{err}"
    );
    assert!(
        err.contains("create secret generic ai-api-client-keys --from-literal=keys="),
        "{err}"
    );
}

#[test]
fn a_secret_without_the_key_fails_the_preflight_and_nothing_is_applied() {
    let fake = Fake::start(Rollout::Done);
    fake.put_namespace();
    fake.put_secret("holysheep-api-key", "apikey");
    fake.put_secret("ai-api-client-keys", "keys");
    let o = fake.infra(&["apply", "--env", "production"]);
    assert_nothing_written(&fake, &o);
    let err = stderr(&o);
    assert!(
        err.contains("Secret `holysheep-api-key` in namespace `ai-services` has no key `api-key` (it has keys apikey)"),
        "{err}"
    );
    assert!(
        err.contains("kubectl -n ai-services patch secret holysheep-api-key"),
        "{err}"
    );
}

#[test]
fn applies_every_object_in_render_order_with_one_forced_field_manager_then_waits() {
    let fake = Fake::start(Rollout::Done).with_secrets();
    let rendered = fake.rendered("production", &[]);
    fake.clear_requests();
    let o = fake.infra(&["apply", "--env", "production", "--timeout", "2s"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    let patches: Vec<Request> = fake.writes();
    assert!(
        patches.iter().all(|r| r.method == Method::PATCH),
        "{patches:?}"
    );
    let mut expected: Vec<String> = rendered.iter().map(path_of).collect();
    expected.insert(1, PARENT.into()); // the ApplySet parent, right after the Namespace
    assert_eq!(
        patches.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
        expected
    );
    for patch in &patches {
        assert_eq!(
            patch.query.get("fieldManager").map(String::as_str),
            Some("infra")
        );
        assert_eq!(patch.query.get("force").map(String::as_str), Some("true"));
        assert_eq!(patch.query.get("dryRun"), None);
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
    let members: Vec<&Request> = patches.iter().filter(|r| r.path != PARENT).collect();
    for (patch, object) in members.iter().zip(&rendered) {
        assert_eq!(patch.body.as_ref(), Some(object), "{}", patch.path);
        let part_of = &object["metadata"]["labels"]["applyset.kubernetes.io/part-of"];
        if object["kind"] == "Namespace" {
            assert!(part_of.is_null());
        } else {
            assert_eq!(part_of, APPLYSET_ID, "{}", patch.path);
        }
    }
    let parent = patches[1].body.clone().unwrap();
    assert_eq!(parent["kind"], "ConfigMap");
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        APPLYSET_ID
    );
    assert!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"]
            .as_str()
            .unwrap()
            .starts_with("infra/v")
    );
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Deployment.apps,HorizontalPodAutoscaler.autoscaling,Ingress.networking.k8s.io,\
         NetworkPolicy.networking.k8s.io,PodDisruptionBudget.policy,\
         PodMonitor.monitoring.coreos.com,PrometheusRule.monitoring.coreos.com,Service,\
         ServiceAccount"
    );
    // The Secrets were read before the first write.
    let requests = fake.requests();
    let first_write = requests
        .iter()
        .position(|r| r.method == Method::PATCH)
        .unwrap();
    assert!(
        requests[..first_write]
            .iter()
            .any(|r| r.path.ends_with("/secrets/holysheep-api-key"))
    );
    assert!(
        requests[first_write..]
            .iter()
            .all(|r| !r.path.contains("/secrets/"))
    );

    let out = stdout(&o);
    assert!(out.contains("applied Namespace ai-services\n"), "{out}");
    assert!(
        out.contains("created Deployment ai-services/ai-api-proxy\n"),
        "{out}"
    );
    assert!(
        out.contains("created HorizontalPodAutoscaler ai-services/ai-api-proxy\n"),
        "{out}"
    );
    assert!(
        out.contains(": 12 created, 1 applied, 0 unchanged, 0 pruned."),
        "{out}"
    );
    assert!(
        out.contains("Deployment ai-services/ai-api-proxy rolled out: 1 replica available."),
        "{out}"
    );

    // Again: the server changes nothing, and says so.
    let o = fake.infra(&["apply", "--env", "production", "--no-wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(": 0 created, 0 applied, 13 unchanged, 0 pruned."),
        "{}",
        stdout(&o)
    );
    // A change shows as applied.
    let o = fake.infra(&[
        "apply",
        "--env",
        "production",
        "--no-wait",
        "--set",
        "autoscaling.max_replicas=12",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("applied HorizontalPodAutoscaler ai-services/ai-api-proxy\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn dry_run_sends_dry_run_all_persists_nothing_and_does_not_wait() {
    let fake = Fake::start(Rollout::Never).with_secrets();
    let o = fake.infra(&["apply", "--env", "production", "--dry-run"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let writes = fake.writes();
    assert_eq!(writes.len(), 13);
    assert!(
        writes
            .iter()
            .all(|r| r.query.get("dryRun").map(String::as_str) == Some("All"))
    );
    assert!(!fake.has(DEPLOYMENT));
    let out = stdout(&o);
    assert!(
        out.contains("created Deployment ai-services/ai-api-proxy (dry run)"),
        "{out}"
    );
    assert!(
        out.contains("Dry run of `production` in ai-services"),
        "{out}"
    );
    assert!(!out.contains("Waiting"), "{out}");
}

#[test]
fn prune_deletes_what_left_the_plan_and_never_the_namespace_or_foreign_objects() {
    let fake = Fake::start(Rollout::Done).with_secrets();
    // Same name and instance, but not managed by infra: not ours.
    fake.put(
        &format!("/api/v1/namespaces/{NS}/configmaps/hand-made"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand-made", "namespace": NS,
               "labels": {"app.kubernetes.io/name": "ai-api-proxy",
                          "app.kubernetes.io/instance": "ai-api-proxy-production"}}}),
    );
    let o = fake.infra(&["apply", "--env", "production", "--no-wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fake.has(INGRESS));

    let off = [
        "apply",
        "--env",
        "production",
        "--no-wait",
        "--set",
        "ingress.enabled=false",
    ];
    fake.clear_requests();
    let o = fake.infra(&[&off[..], &["--no-prune"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fake.has(INGRESS), "--no-prune deleted the Ingress");
    assert!(fake.requests().iter().all(|r| r.method != Method::DELETE));

    let o = fake.infra(&[
        "apply",
        "--env",
        "production",
        "--no-wait",
        "--set",
        "ingress.enabled=false",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("pruned Ingress ai-services/ai-api-proxy (dry run)"),
        "{}",
        stdout(&o)
    );
    assert!(fake.has(INGRESS), "a dry run deleted the Ingress");

    fake.clear_requests();
    let o = fake.infra(&off);
    assert!(o.status.success(), "{}", stderr(&o));
    let deletes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].path, INGRESS);
    let options = deletes[0].body.clone().unwrap();
    assert_eq!(options["propagationPolicy"], "Background", "{options}");
    assert!(options.get("dryRun").is_none(), "{options}");
    assert!(!fake.has(INGRESS));
    assert!(fake.has(&format!("/api/v1/namespaces/{NS}")));
    assert!(fake.has(&format!("/api/v1/namespaces/{NS}/configmaps/hand-made")));
    assert!(fake.has(&format!(
        "/api/v1/namespaces/{NS}/secrets/holysheep-api-key"
    )));
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::GET && r.query.contains_key("labelSelector"))
        .collect();
    assert!(
        lists
            .iter()
            .all(|r| !r.path.ends_with("/namespaces") && !r.path.ends_with("/secrets"))
    );
    let selector = format!(
        "app.kubernetes.io/instance=ai-api-proxy-production,app.kubernetes.io/managed-by=infra,\
         app.kubernetes.io/name=ai-api-proxy,applyset.kubernetes.io/part-of={APPLYSET_ID}"
    );
    assert!(
        lists.iter().all(|r| r.query["labelSelector"] == selector),
        "{lists:?}"
    );
    // After the prune, the parent records only the kinds left.
    let kinds =
        fake.get(PARENT)["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
            .clone();
    assert_eq!(
        kinds,
        "ConfigMap,Deployment.apps,HorizontalPodAutoscaler.autoscaling,\
         NetworkPolicy.networking.k8s.io,PodDisruptionBudget.policy,\
         PodMonitor.monitoring.coreos.com,PrometheusRule.monitoring.coreos.com,Service,\
         ServiceAccount"
    );
    let out = stdout(&o);
    assert!(
        out.contains("pruned Ingress ai-services/ai-api-proxy\n"),
        "{out}"
    );
    assert!(
        out.contains(": 0 created, 0 applied, 12 unchanged, 1 pruned."),
        "{out}"
    );
}

#[test]
fn switching_autoscaling_on_hands_replicas_over_before_letting_go_of_them() {
    let fake = Fake::start(Rollout::Done).with_secrets();
    // As left by an apply with autoscaling off: infra owns spec.replicas.
    fake.put(
        DEPLOYMENT,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "ai-api-proxy", "namespace": NS, "generation": 4,
                            "managedFields": [{"manager": "infra", "operation": "Apply",
                                               "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                                               "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
               "spec": {"replicas": 3}}),
    );
    let o = fake.infra(&["apply", "--env", "production", "--no-wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let patches: Vec<Request> = fake
        .writes()
        .into_iter()
        .filter(|r| r.path == DEPLOYMENT)
        .collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert_eq!(
        patches[0].query.get("fieldManager").map(String::as_str),
        Some("infra-handover-to-hpa")
    );
    assert_eq!(
        patches[0].body.as_ref().unwrap()["spec"],
        json!({"replicas": 3})
    );
    assert_eq!(
        patches[1].query.get("fieldManager").map(String::as_str),
        Some("infra")
    );
    assert!(
        patches[1].body.as_ref().unwrap()["spec"]
            .get("replicas")
            .is_none()
    );

    // Once handed over (infra no longer owns it), nothing more to hand over.
    fake.clear_requests();
    assert!(
        fake.infra(&["apply", "--env", "production", "--no-wait"])
            .status
            .success()
    );
    assert!(
        fake.writes()
            .iter()
            .all(|r| r.query["fieldManager"] == "infra")
    );
}

#[test]
fn an_applyset_parent_of_another_tool_is_left_alone() {
    let fake = Fake::start(Rollout::Done).with_secrets();
    fake.put(
        PARENT,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "applyset-ai-api-proxy", "namespace": NS,
                            "labels": {"applyset.kubernetes.io/id": APPLYSET_ID},
                            "annotations": {"applyset.kubernetes.io/tooling": "kubectl/v1.35"}}}),
    );
    let o = fake.infra(&["apply", "--env", "production"]);
    assert_nothing_written(&fake, &o);
    assert!(
        stderr(&o).contains("ConfigMap ai-services/applyset-ai-api-proxy is the parent of an ApplySet owned by `kubectl/v1.35`, not by infra"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_rollout_that_never_becomes_available_times_out_with_the_deployments_conditions() {
    let fake = Fake::start(Rollout::Never).with_secrets();
    let started = Instant::now();
    let o = fake.infra(&["apply", "--env", "production", "--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        stdout(&o).contains("Waiting up to 2s for Deployment ai-services/ai-api-proxy"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("Deployment ai-services/ai-api-proxy did not finish rolling out within 2s: 0 of 1 updated replicas available"),
        "{err}"
    );
    assert!(
        err.contains("Available=False (MinimumReplicasUnavailable): Deployment does not have minimum availability."),
        "{err}"
    );
}

#[test]
fn a_passed_progress_deadline_fails_at_once_with_the_controllers_message() {
    let fake = Fake::start(Rollout::DeadlineExceeded).with_secrets();
    let started = Instant::now();
    let o = fake.infra(&["apply", "--env", "production", "--timeout", "1m"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the timeout"
    );
    let err = stderr(&o);
    assert!(
        err.contains("failed to roll out: progress deadline exceeded: ReplicaSet \"ai-api-proxy-5d4f\" has timed out progressing."),
        "{err}"
    );
}

#[test]
fn an_unreachable_api_server_is_an_error_naming_the_request() {
    let fake = Fake::start(Rollout::Done);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::write(
        fake.sandbox.root().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: x\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: x\n  context:\n    cluster: x\n    user: x\nusers:\n- name: x\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let o = fake.infra(&["apply", "--env", "production"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: cannot read Secret ai-services/"),
        "{}",
        stderr(&o)
    );
}

/// Against the cluster of `KUBECONFIG`: a server-side dry run of `development` (its Secrets
/// must exist in `ai-services-dev`). Run with `cargo test --test apply -- --ignored`.
#[test]
#[ignore = "needs a cluster (KUBECONFIG)"]
fn dry_run_against_a_real_cluster() {
    let o = Command::new(env!("CARGO_BIN_EXE_infra"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["apply", "--env", "development", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("Dry run of `development` in ai-services-dev"),
        "{}",
        stdout(&o)
    );
}
