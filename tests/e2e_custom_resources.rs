//! Custom resources on the real control plane, with the Gateway API and prometheus-operator
//! CRDs installed as a platform team's cluster has them: staging's HTTPRoute, PodMonitor and
//! PrometheusRule pass the API server's own validation (schemas and CEL rules), and a cluster
//! without a CRD fails apply's preflight, naming the setting that turns the object off.
//! Skipped, saying why, when the plane is not built. One test: it deletes a cluster-wide CRD.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr};

#[test]
fn custom_resources_are_validated_by_the_server_and_a_missing_crd_names_its_setting() {
    let Some(c) = Cluster::new("crs") else {
        return;
    };
    let out = c.infra_ok("apply", "staging", &["--no-wait"]);
    for kind in ["HTTPRoute", "PodMonitor", "PrometheusRule"] {
        assert!(
            out.contains(&format!("created {kind} {}/{APP}", c.ns)),
            "{out}"
        );
    }
    assert!(c.exists(&format!("httproutes.gateway.networking.k8s.io/{APP}")));
    assert!(c.exists(&format!("podmonitors.monitoring.coreos.com/{APP}")));
    assert!(c.exists(&format!("prometheusrules.monitoring.coreos.com/{APP}")));

    c.plane.kubectl([
        "delete",
        "crd",
        "podmonitors.monitoring.coreos.com",
        "--wait=true",
    ]);
    let out = c.infra("apply", "staging", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("preflight failed, nothing was applied"),
        "{err}"
    );
    assert!(err.contains("PodMonitor"), "{err}");
    assert!(err.contains("metrics.pod_monitor"), "{err}");

    // Turned off, staging applies without it.
    c.infra_ok(
        "apply",
        "staging",
        &["--set", "metrics.pod_monitor=false", "--no-wait"],
    );
}
