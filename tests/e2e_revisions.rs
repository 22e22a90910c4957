//! Revisions on the real control plane (`tests/plane`): `apply --atomic` undoing a bad image
//! (kwok fails the pull of `0.0.0-does-not-exist`, e2e/failure-stages.yaml), `rollback`
//! repairing what a plain apply left broken, `--to N` bringing back a pruned object from
//! files that no longer build, `--history-max`, the v1 fixture, and the first apply of an
//! autoscaled Deployment. Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use serde_json::Value;

use cluster::{APP, Cluster, stderr, stdout};

/// The tag whose pull kwok fails.
const BAD_IMAGE: [&str; 2] = ["--set", "image.tag=0.0.0-does-not-exist"];

/// `infra history --output json`: `(number, status, summary)`, newest first.
fn history(c: &Cluster, env: &str) -> Vec<(u64, String, String)> {
    let json: Value =
        serde_json::from_str(&c.infra_ok("history", env, &["--output", "json"])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
                r["summary"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn statuses(c: &Cluster, env: &str) -> Vec<(u64, String)> {
    history(c, env)
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect()
}

fn image(c: &Cluster) -> String {
    c.get(&format!("deployment/{APP}"))["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn owned(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(n, s)| (*n, (*s).to_owned())).collect()
}

#[test]
fn atomic_puts_image_config_map_and_hpa_back_when_a_bad_image_fails() {
    let Some(c) = Cluster::new("atomic") else {
        return;
    };
    // Revision 1 has no PodDisruptionBudget; the failed revision creates one and prunes the
    // Ingress: the rollback must prune the one and bring the other back.
    c.infra_ok(
        "apply",
        "production",
        &[
            "--timeout",
            "90s",
            "--set",
            "disruption_budget.enabled=false",
        ],
    );
    assert!(!c.exists(&format!("pdb/{APP}")));
    let config = c.get(&format!("configmap/{APP}"))["data"].clone();
    let hpa = c.get(&format!("hpa/{APP}"))["spec"].clone();
    let good = image(&c);

    let out = c.infra(
        "apply",
        "production",
        &[
            &BAD_IMAGE[..],
            &[
                "--set",
                "autoscaling.max_replicas=7",
                "--set",
                "proxy.rate_limit.burst=77",
                "--set",
                "ingress.enabled=false",
                "--atomic",
                "--timeout",
                "10s",
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    // The diagnosis of what failed, then the rollback.
    assert!(err.contains("ImagePullBackOff"), "{err}");
    assert!(
        err.contains("revision 2 failed: rolled back to revision 1 (recorded as revision 3)"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("--atomic: rolling back to revision 1"),
        "{}",
        stdout(&out)
    );
    let rolled = stdout(&out);
    assert!(
        rolled.contains(&format!("created PodDisruptionBudget {}/{APP}", c.ns)),
        "{rolled}"
    );
    assert!(
        rolled.contains(&format!("pruned Ingress {}/{APP}", c.ns)),
        "{rolled}"
    );
    assert_eq!(image(&c), good);
    assert_eq!(c.get(&format!("configmap/{APP}"))["data"], config);
    assert_eq!(c.get(&format!("hpa/{APP}"))["spec"], hpa);
    assert!(!c.exists(&format!("pdb/{APP}")), "{rolled}");
    assert!(c.exists(&format!("ingress/{APP}")), "{rolled}");
    c.wait_available(2);
    assert_eq!(
        statuses(&c, "production"),
        owned(&[(3, "deployed"), (2, "rolled-back"), (1, "superseded")])
    );
    let newest = &history(&c, "production")[0].2;
    assert!(newest.starts_with("rollback to 1: "), "{newest}");
}

#[test]
fn history_after_install_upgrade_failed_upgrade_and_rollback() {
    let Some(c) = Cluster::new("history") else {
        return;
    };
    c.infra_ok("apply", "development", &["--timeout", "60s"]);
    let upgrade = ["--set", "proxy.rate_limit.burst=77", "--timeout", "60s"];
    let out = c.infra_ok("apply", "development", &upgrade);
    assert!(out.contains("Recorded revision 2 (deployed)."), "{out}");
    let good = image(&c);

    // Without --atomic the failed revision stays.
    let out = c.infra(
        "apply",
        "development",
        &[&upgrade[..2], &BAD_IMAGE[..], &["--timeout", "8s"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ImagePullBackOff"),
        "{}",
        stderr(&out)
    );
    assert!(image(&c).ends_with(":0.0.0-does-not-exist"));
    let listed = history(&c, "development");
    assert_eq!(
        listed
            .iter()
            .map(|(n, s, _)| (*n, s.clone()))
            .collect::<Vec<_>>(),
        owned(&[(3, "failed"), (2, "deployed"), (1, "superseded")])
    );
    assert!(listed[0].2.starts_with("failed: "), "{listed:?}");
    assert!(
        listed[1]
            .2
            .contains("applied (ConfigMap ai-api-proxy, Deployment ai-api-proxy"),
        "{listed:?}"
    );

    // rollback returns to the last deployed revision, whatever the files say now.
    let out = c.infra_ok("rollback", "development", &["--timeout", "60s"]);
    assert!(out.contains("Rolling back to revision 2"), "{out}");
    assert!(out.contains("Recorded revision 4 (deployed)."), "{out}");
    assert_eq!(image(&c), good);
    // Revision 2's ConfigMap, not the files' (which no --set makes 77).
    assert!(
        c.get(&format!("configmap/{APP}"))["data"]["proxy.json"]
            .as_str()
            .unwrap()
            .contains("\"burst\": 77")
    );
    assert_eq!(
        statuses(&c, "development"),
        owned(&[
            (4, "deployed"),
            (3, "rolled-back"),
            (2, "superseded"),
            (1, "superseded")
        ])
    );
    let table = c.infra_ok("history", "development", &[]);
    let head = table.lines().next().unwrap();
    assert!(
        head.starts_with("REVISION  UPDATED") && head.ends_with("SUMMARY"),
        "{table}"
    );
    assert!(table.contains("rollback to 2: "), "{table}");
    // Who applied it: the plane's admin, as the API server authenticated it.
    let json: Value =
        serde_json::from_str(&c.infra_ok("history", "development", &["--output", "json"])).unwrap();
    assert_ne!(json[0]["who"], "unknown", "{json}");
    assert!(
        json[0]["provenance"]["files"][0]["sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );
    // Names of --set keys, never their values; a rollback keeps its revision's provenance.
    assert_eq!(
        json[3]["provenance"]["sets"],
        serde_json::json!(["namespace"])
    );
    assert_eq!(
        json[1]["provenance"]["sets"],
        serde_json::json!(["namespace", "proxy.rate_limit.burst", "image.tag"])
    );
    assert_eq!(json[0]["provenance"], json[2]["provenance"]);
    assert_eq!(json[0]["rollback_to"], 2);
}

#[test]
fn rollback_to_n_restores_a_pruned_object_from_files_that_no_longer_build() {
    let Some(c) = Cluster::new("rollto") else {
        return;
    };
    c.infra_ok("apply", "production", &["--no-wait"]);
    assert!(c.exists(&format!("ingress/{APP}")));
    let out = c.infra_ok(
        "apply",
        "production",
        &["--no-wait", "--set", "ingress.enabled=false"],
    );
    assert!(
        out.contains(&format!("pruned Ingress {}/{APP}", c.ns)),
        "{out}"
    );
    assert!(!c.exists(&format!("ingress/{APP}")));

    // The files no longer build: rollback reads the revision, not them.
    c.sandbox.append("production.toml", "no_such_setting = 1");
    assert_eq!(c.infra("apply", "production", &[]).status.code(), Some(1));
    let out = c.infra_ok("rollback", "production", &["--to", "1", "--no-wait"]);
    assert!(
        out.contains(&format!("created Ingress {}/{APP}", c.ns)),
        "{out}"
    );
    assert!(c.exists(&format!("ingress/{APP}")));
    assert_eq!(
        statuses(&c, "production"),
        owned(&[(3, "deployed"), (2, "rolled-back"), (1, "superseded")])
    );
    let out = c.infra("rollback", "production", &["--to", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("there is no revision 9 of applyset-ai-api-proxy; revisions: 1 (superseded), 2 (rolled-back), 3 (deployed)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_is_trimmed_to_history_max() {
    let Some(c) = Cluster::new("trim") else {
        return;
    };
    for burst in 1..=4 {
        c.infra_ok(
            "apply",
            "development",
            &[
                "--no-wait",
                "--history-max",
                "2",
                "--set",
                &format!("proxy.rate_limit.burst={burst}"),
            ],
        );
    }
    assert_eq!(
        statuses(&c, "development"),
        owned(&[(4, "deployed"), (3, "superseded")])
    );
    let stored = c.plane.kubectl([
        "-n",
        &c.ns,
        "get",
        "configmap",
        "-l",
        "infra.revision/of=applyset-ai-api-proxy",
        "-o",
        "name",
    ]);
    assert_eq!(
        stored.lines().collect::<Vec<_>>(),
        [
            "configmap/applyset-ai-api-proxy-rev-3",
            "configmap/applyset-ai-api-proxy-rev-4"
        ]
    );
}

#[test]
fn a_revision_of_the_v1_format_stays_readable_and_can_be_rolled_back_to() {
    let Some(plane) = plane::shared() else {
        return;
    };
    // The fixture was written for this namespace (its objects name it).
    let c = Cluster {
        plane,
        ns: "revision-fixture".into(),
        sandbox: sandbox::Sandbox::new(),
    };
    plane.kubectl(["create", "namespace", &c.ns]);
    c.create_secrets();
    c.plane.kubectl([
        "apply",
        "-f",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/revision-v1.yaml"
        ),
    ]);
    let listed = history(&c, "development");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, 2);
    assert_eq!(listed[0].1, "superseded");
    let out = c.infra_ok(
        "rollback",
        "development",
        &["--to", "2", "--timeout", "60s"],
    );
    assert!(
        out.contains(&format!("created Deployment {}/{APP}", c.ns)),
        "{out}"
    );
    assert_eq!(
        statuses(&c, "development"),
        owned(&[(3, "deployed"), (2, "superseded")])
    );
}

#[test]
fn the_first_apply_of_an_autoscaled_deployment_waits_for_min_replicas() {
    let Some(c) = Cluster::new("floor") else {
        return;
    };
    // production: autoscaling from min_replicas = 2.
    let out = c.infra_ok("apply", "production", &["--timeout", "90s"]);
    assert!(out.contains("ready Deployment"), "{out}");
    let d = c.get(&format!("deployment/{APP}"));
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    // Ready means the floor is: no polling, the wait has returned.
    assert_eq!(d["status"]["availableReplicas"], 2, "{d}");
    // infra let go of the count at once: the HPA owns it from here.
    assert!(!c.replicas_owners().contains(&"infra".to_owned()));
    let again = c.infra_ok("apply", "production", &["--no-wait"]);
    assert!(again.contains("0 created, 0 applied"), "{again}");
}
