//! GitOps with a real Flux (source-controller and kustomize-controller built from their Go
//! modules) reconciling `out/production` from a real Git server (`git http-backend`) on the
//! real control plane: the folder reconciles and reports healthy, `infra plan --live` agrees
//! with Flux, a commit rolls the Deployment, what leaves the folder is pruned and nothing else,
//! drift is reverted while the HPA's replica count is left alone, and `infra apply` refuses an
//! environment Flux manages. Skipped, saying why, when the plane or Flux is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod gitops;
mod plane;
mod sandbox;

use std::time::{Duration, Instant};

use cluster::{APP, stderr, stdout};
use gitops::{NAME, Reconciled, condition};
use serde_json::Value;

/// `Kind/name` → uid of every object of the environment in its namespace.
fn uids(env: &Reconciled) -> Vec<(String, String)> {
    let list = env.cluster.get(
        "serviceaccount,configmap,service,deployment,hpa,pdb,ingress,networkpolicy,podmonitor,prometheusrule",
    );
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
                o["metadata"]["uid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn deployment(env: &Reconciled) -> Value {
    env.cluster.get(&format!("deployment/{APP}"))
}

fn config_hash(d: &Value) -> String {
    d["spec"]["template"]["metadata"]["annotations"]["ai-api-proxy/config-sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("no config-sha256 annotation: {d:#}"))
        .to_owned()
}

#[test]
fn flux_reconciles_out_production_and_infra_agrees_and_refuses_to_race_it() {
    // 1. out/production as committed, into a cluster where only the namespace and the Secrets
    //    exist (created by hand, as the README says).
    let Some(env) = Reconciled::production(Some("ai-services")) else {
        return;
    };
    // Health checks on every applied object (kstatus: the Deployment rolled out, the HPA and
    // the PDB observed) passed.
    let k = env.kustomization();
    assert_eq!(k["spec"]["wait"], true, "{k:#}");
    assert_eq!(k["spec"]["prune"], true, "{k:#}");
    assert_eq!(condition(&k, "Healthy"), Some("True"), "{k:#}");
    let d = deployment(&env);
    assert_eq!(
        d["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
        NAME
    );
    env.cluster.wait_available(2);
    let inventory = k["status"]["inventory"]["entries"].as_array().unwrap();
    assert_eq!(inventory.len(), 12, "{inventory:#?}");

    // 2. infra and Flux agree on every field.
    let out = env.infra(&["plan", "--live"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("0 to create, 0 to update, 0 to delete, 12 unchanged"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "managed by Flux Kustomization {}/{NAME}",
            env.flux_ns
        )),
        "{text}"
    );
    let check = env.infra(&["plan", "--live", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));

    // 6. infra apply refuses the environment Flux manages, naming the Kustomization...
    let refused = env.infra(&["apply", "--timeout", "60s"]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("preflight failed, nothing was applied"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Flux Kustomization {}/{NAME} manages 12 of these objects",
            env.flux_ns
        )),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    // ... and goes on with --force-conflicts (a dry run here: Flux keeps the environment).
    let forced = env.infra(&["apply", "--force-conflicts", "--dry-run"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
}

#[test]
fn a_commit_that_changes_the_environment_rolls_the_deployment() {
    let Some(env) = Reconciled::production(None) else {
        return;
    };
    let before = deployment(&env);
    env.cluster
        .sandbox
        .edit("production.toml", "burst = 40", "burst = 50");
    let sha = env.commit("production: burst 50");
    env.wait_ready(&sha);
    let after = deployment(&env);
    assert_ne!(config_hash(&before), config_hash(&after));
    assert!(
        after["metadata"]["generation"].as_i64() > before["metadata"]["generation"].as_i64(),
        "{after:#}"
    );
    // Ready means rolled out: every replica updated and available, none old.
    assert_eq!(
        after["status"]["observedGeneration"],
        after["metadata"]["generation"]
    );
    assert_eq!(
        after["status"]["updatedReplicas"],
        after["spec"]["replicas"]
    );
    assert_eq!(
        after["status"]["availableReplicas"],
        after["spec"]["replicas"]
    );
    let config = env.cluster.get(&format!("configmap/{APP}"));
    assert!(
        config["data"]["proxy.json"]
            .as_str()
            .unwrap()
            .contains("\"burst\": 50"),
        "{config:#}"
    );
}

#[test]
fn a_commit_that_disables_the_pdb_and_the_ingress_prunes_them_and_nothing_else() {
    let Some(env) = Reconciled::production(None) else {
        return;
    };
    let before = uids(&env);
    assert!(
        before
            .iter()
            .any(|(k, _)| k.starts_with("PodDisruptionBudget/"))
    );
    assert!(before.iter().any(|(k, _)| k.starts_with("Ingress/")));
    env.cluster
        .sandbox
        .append("production.toml", "[disruption_budget]\nenabled = false");
    env.cluster.sandbox.edit(
        "production.toml",
        "[ingress]\nenabled = true",
        "[ingress]\nenabled = false",
    );
    let sha = env.commit("production: no PDB, no Ingress");
    env.wait_ready(&sha);
    let after = uids(&env);
    let expected: Vec<_> = before
        .iter()
        .filter(|(k, _)| !k.starts_with("PodDisruptionBudget/") && !k.starts_with("Ingress/"))
        .cloned()
        .collect();
    assert_eq!(
        after, expected,
        "pruned more or less than the PDB and the Ingress"
    );
    let k = env.kustomization();
    let inventory = k["status"]["inventory"]["entries"].as_array().unwrap();
    assert_eq!(inventory.len(), 10, "{inventory:#?}");
    // The ApplySet labels in out/ confuse neither tool: infra sees nothing to do.
    let plan = env.infra(&["plan", "--live", "--check"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );
    assert!(stdout(&plan).contains("0 to delete"), "{}", stdout(&plan));
}

#[test]
fn drift_is_reverted_and_the_hpa_replica_count_is_never_fought_over() {
    let Some(env) = Reconciled::production(None) else {
        return;
    };
    let plane = env.cluster.plane;
    let ns = env.cluster.ns.clone();
    // Drift in fields the folder sets: the HPA's ceiling and a label of the Deployment.
    plane.kubectl([
        "-n",
        &ns,
        "patch",
        "hpa",
        APP,
        "--type=merge",
        "-p",
        r#"{"spec":{"maxReplicas":99}}"#,
    ]);
    plane.kubectl([
        "-n",
        &ns,
        "label",
        "--overwrite",
        "deployment",
        APP,
        "app.kubernetes.io/version=drifted",
    ]);
    env.reconcile_now("drift-1");
    let hpa = env.cluster.get(&format!("hpa/{APP}"));
    assert_eq!(hpa["spec"]["maxReplicas"], 10, "{hpa:#}");
    let d = deployment(&env);
    assert_ne!(
        d["metadata"]["labels"]["app.kubernetes.io/version"],
        "drifted"
    );

    // The replica count is the HPA's: scaled by hand within its bounds, it stays through
    // reconciles, and Flux never owns it.
    plane.kubectl(["-n", &ns, "scale", "deployment", APP, "--replicas=3"]);
    let start = Instant::now();
    let mut reconciles = 0;
    while start.elapsed() < Duration::from_secs(60) {
        reconciles += 1;
        env.reconcile_now(&format!("watch-{reconciles}"));
        let d = deployment(&env);
        assert_eq!(
            d["spec"]["replicas"], 3,
            "after {reconciles} reconciles: {d:#}"
        );
        let owners = env.cluster.replicas_owners();
        assert!(
            !owners.iter().any(|m| m == "kustomize-controller"),
            "{owners:?}"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    assert!(reconciles >= 3, "only {reconciles} reconciles in a minute");
    let k = env.kustomization();
    assert_eq!(condition(&k, "Ready"), Some("True"), "{k:#}");
}

#[test]
fn the_argo_cd_application_passes_its_crds_validation() {
    let Some(plane) = plane::shared() else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/fetch-crds");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--gitops")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let crd = std::path::Path::new(stdout(&out).trim()).join("application-crd.yaml");
    plane.kubectl([
        std::ffi::OsStr::new("apply"),
        "--server-side".as_ref(),
        "-f".as_ref(),
        crd.as_os_str(),
    ]);
    let established = r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#;
    plane
        .wait_for(
            "the Application CRD Established",
            Duration::from_secs(60),
            || {
                let crd =
                    plane.try_kubectl(["get", "crd/applications.argoproj.io", "-o", established]);
                (stdout(&crd) == "True").then_some(())
            },
        )
        .unwrap();
    let ns = plane.namespace("argocd");
    let sandbox = sandbox::Sandbox::new();
    let printed = sandbox
        .infra()
        .args([
            "gitops",
            "--env",
            "production",
            "--argocd",
            "--namespace",
            &ns,
        ])
        .args([
            "--git-url",
            "https://git.example.com/acme/infra.git",
            "--depends-on",
            "secrets",
        ])
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", stderr(&printed));
    let mut apply = plane
        .kubectl_command()
        .args(["apply", "--server-side", "--dry-run=server", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut apply.stdin.take().unwrap(), &printed.stdout).unwrap();
    let applied = apply.wait_with_output().unwrap();
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert!(
        stdout(&applied).contains(
            "application.argoproj.io/ai-api-proxy-production serverside-applied (server dry run)"
        ),
        "{}",
        stdout(&applied)
    );
}
