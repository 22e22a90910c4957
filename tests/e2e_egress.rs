//! Egress settings against the real control plane (`tests/plane`): preflight refuses a CA
//! bundle ConfigMap that does not exist or lacks its key, and the applied Deployment mounts it
//! while the NetworkPolicy admits only the egress proxy for the upstreams behind it. Skipped,
//! saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use cluster::{APP, Cluster, stderr};

const API_KEY_LINE: &str =
    "api_key = { secret = { name = \"holysheep-api-key\", key = \"api-key\" } }\n";

#[test]
fn preflight_refuses_a_missing_ca_bundle_and_apply_mounts_it_behind_the_egress_proxy() {
    let Some(c) = Cluster::new("egress") else {
        return;
    };
    c.sandbox.edit(
        "base.toml",
        API_KEY_LINE,
        &format!(
            "{API_KEY_LINE}tls.ca = {{ config_map = {{ name = \"internal-ca\", key = \"ca.crt\" }} }}\n"
        ),
    );
    c.sandbox.append(
        "development.toml",
        "[proxy.egress]\nhttps_proxy = \"http://egress-proxy.corp.internal:3128\"\n\n\
         [network_policy.egress_proxy]\ncidrs = [\"10.40.0.10/32\"]",
    );

    let out = c.infra("apply", "development", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ConfigMap `internal-ca` (key `ca.crt`) does not exist in namespace `{}`",
            c.ns
        )),
        "{err}"
    );
    assert!(!c.exists(&format!("deployment/{APP}")), "nothing applied");

    c.plane.kubectl([
        "-n",
        &c.ns,
        "create",
        "configmap",
        "internal-ca",
        "--from-literal=bundle.pem=x",
    ]);
    let err = stderr(&c.infra("apply", "development", &["--no-wait"]));
    assert!(
        err.contains("has no key `ca.crt` (it has keys bundle.pem)"),
        "{err}"
    );

    c.plane
        .kubectl(["-n", &c.ns, "delete", "configmap", "internal-ca"]);
    c.plane.kubectl([
        "-n",
        &c.ns,
        "create",
        "configmap",
        "internal-ca",
        "--from-literal=ca.crt=x",
    ]);
    c.infra_ok("apply", "development", &["--no-wait"]);
    let deployment = c.get(&format!("deployment/{APP}"));
    let pod = &deployment["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "configmap-internal-ca")
        .unwrap_or_else(|| panic!("no CA volume: {pod}"));
    assert_eq!(volume["configMap"]["name"], "internal-ca");
    assert_eq!(volume["configMap"]["items"][0]["key"], "ca.crt");
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.iter().any(|m| m["name"] == "configmap-internal-ca"
            && m["mountPath"] == "/var/run/configmaps/ai-api-proxy/internal-ca"
            && m["readOnly"] == true),
        "{mounts:?}"
    );

    let policy = c.get(&format!("networkpolicy/{APP}"));
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let text = serde_json::to_string(egress).unwrap();
    assert!(text.contains("10.40.0.10/32"), "{text}");
    assert!(text.contains("3128"), "{text}");
    assert!(
        !text.contains("0.0.0.0/0"),
        "the upstream is behind the egress proxy: {text}"
    );
}
