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
            o["metadata"]["name"] != "default" && o["metadata"]["name"] != "kube-root-ca.crt"
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
        second.contains("0 created, 0 applied, 10 unchanged, 0 pruned"),
        "{second}"
    );
    assert_eq!(versions(&c), before, "{second}");
}
