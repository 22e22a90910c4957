//! The e2e control plane itself (`tests/plane`): it starts, kubectl and kube-rs both talk to
//! it, a Deployment rolls out through the real controllers, scheduler and kwok, the failure
//! stages fail pods as a kubelet would report it, and a dropped plane leaves no process behind.
//! Skipped, saying why, when the plane is not built (`bash e2e/build-plane.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a broken fixture stops the test loudly"
)]
mod plane;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde_json::Value;

/// A Deployment of `replicas` pods, labelled `e2e.infra/fail: <fail>` when given.
fn deployment(name: &str, replicas: u32, fail: Option<&str>) -> String {
    let fail = fail.map_or(String::new(), |f| format!(", e2e.infra/fail: {f}"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n\
         \x20 template:\n    metadata: {{labels: {{app: {name}{fail}}}}}\n\
         \x20   spec: {{containers: [{{name: main, image: 'registry.example/{name}:1.0'}}]}}\n"
    )
}

fn apply(plane: &plane::Plane, ns: &str, yaml: &str) {
    let file = std::env::temp_dir().join(format!("{}-{ns}.yaml", env!("CARGO_CRATE_NAME")));
    std::fs::write(&file, yaml).unwrap();
    let args = ["-n", ns, "apply", "--server-side", "-f"];
    plane.kubectl(args.iter().map(Path::new).chain([file.as_path()]));
    std::fs::remove_file(&file).unwrap();
}

fn pods(plane: &plane::Plane, ns: &str, app: &str) -> Vec<Value> {
    let out = plane.kubectl([
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().unwrap().clone()
}

#[test]
fn a_deployment_rolls_out_on_the_kwok_nodes() {
    let Some(plane) = plane::shared() else { return };
    let ns = plane.namespace("rollout");
    apply(plane, &ns, &deployment("web", 3, None));
    plane.kubectl([
        "-n",
        &ns,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=60s",
    ]);

    let pods = pods(plane, &ns, "web");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
        let node = pod["spec"]["nodeName"].as_str().unwrap();
        assert!(node.starts_with("kwok-node-"), "scheduled on {node}");
        assert!(
            pod["status"]["podIP"]
                .as_str()
                .unwrap()
                .starts_with("10.244.")
        );
    }
    let ready = plane.kubectl(["-n", &ns, "get", "deployment", "web", "-o", "json"]);
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["status"]["availableReplicas"], 3);

    // Scaling down deletes pods for real: kwok's pod-delete stage stands in for the kubelet.
    plane.kubectl(["-n", &ns, "scale", "deployment/web", "--replicas=1"]);
    plane
        .wait_for("scale down to 1 pod", Duration::from_secs(30), || {
            (self::pods(plane, &ns, "web").len() == 1).then_some(())
        })
        .unwrap();
}

#[test]
fn kube_rs_reads_the_kubeconfig() {
    let Some(plane) = plane::shared() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(plane.kubeconfig()).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let nodes = Api::<Node>::all(client).list(&ListParams::default()).await;
        let nodes = nodes.unwrap();
        nodes
            .items
            .into_iter()
            .map(|n| n.metadata.name.unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(names, ["kwok-node-a", "kwok-node-b"]);
}

#[test]
fn failure_stages_fail_pods_as_a_kubelet_reports_it() {
    let Some(plane) = plane::shared() else { return };
    let ns = plane.namespace("failing");
    for fail in ["image-pull", "crash-loop", "unready"] {
        apply(plane, &ns, &deployment(fail, 1, Some(fail)));
    }
    let status = |app: &str| {
        plane
            .wait_for(
                &format!("{app} pod status"),
                Duration::from_secs(30),
                || {
                    let pods = pods(plane, &ns, app);
                    let status = pods.first()?["status"]["containerStatuses"][0].clone();
                    (!status.is_null()).then_some(status)
                },
            )
            .unwrap()
    };
    assert_eq!(
        status("image-pull")["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    let crash = status("crash-loop");
    assert_eq!(crash["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(crash["lastState"]["terminated"]["reason"], "OOMKilled");
    let unready = status("unready");
    assert_eq!(unready["ready"], false);
    assert!(unready["state"]["running"].is_object(), "{unready:#}");

    let events = plane.kubectl(["-n", &ns, "get", "events", "--field-selector=type=Warning"]);
    for reason in ["Failed", "BackOff", "Unhealthy"] {
        assert!(events.contains(reason), "no {reason} event in:\n{events}");
    }
    let out = plane.try_kubectl([
        "-n",
        &ns,
        "rollout",
        "status",
        "deployment/crash-loop",
        "--timeout=2s",
    ]);
    assert!(
        !out.status.success(),
        "a crash-looping rollout must not finish"
    );
}

#[test]
fn a_dropped_plane_leaves_no_process_and_no_folder() {
    let Some(plane) = plane::Plane::start() else {
        return;
    };
    let dir = plane.kubeconfig().parent().unwrap().to_owned();
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap();
    let pids: Vec<String> = pids.lines().map(str::to_owned).collect();
    assert_eq!(
        pids.len(),
        5,
        "etcd, apiserver, controller manager, scheduler, kwok"
    );
    drop(plane);
    for pid in &pids {
        assert!(
            !Path::new("/proc").join(pid).exists(),
            "process {pid} still runs"
        );
    }
    assert!(!dir.exists() || std::env::var_os("E2E_PLANE_KEEP").is_some());
}
