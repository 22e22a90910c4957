//! Why a Deployment does not roll out: the pods of its new ReplicaSet that are not ready, each
//! with its reason (image pull errors, crash loops with the last exit reason, unschedulable
//! messages, failing readiness) and its recent Warning events. Best effort: a read that fails
//! only leaves a detail out.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;

use super::prune::label_selector;

/// At most this many failing pods are described.
const MAX_PODS: usize = 5;
/// At most this many Warning events per pod.
const MAX_EVENTS: usize = 3;

/// The annotation holding a Deployment's (and its ReplicaSets') revision.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Lines (each starting with a newline) naming the failing pods of `deployment`'s new
/// ReplicaSet and why; empty when nothing could be found.
pub async fn explain(client: &kube::Client, deployment: &Deployment) -> String {
    let namespace = deployment.metadata.namespace.as_deref().unwrap_or_default();
    let Some(selector) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
    else {
        return String::new();
    };
    let revision = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION));
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let Ok(sets) = sets
        .list(&ListParams::default().labels(&label_selector(&selector)))
        .await
    else {
        return String::new();
    };
    let owned = |rs: &&ReplicaSet| {
        rs.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Deployment" && Some(&o.uid) == deployment.metadata.uid.as_ref())
    };
    let Some(new) = sets.items.iter().filter(owned).find(|rs| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            == revision
    }) else {
        return String::new();
    };
    let Some(hash) = new
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
    else {
        return String::new();
    };
    let mut pod_selector = selector.clone();
    pod_selector.insert("pod-template-hash".into(), hash.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let Ok(pods) = pods
        .list(&ListParams::default().labels(&label_selector(&pod_selector)))
        .await
    else {
        return String::new();
    };
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let rs_name = new.metadata.name.as_deref().unwrap_or_default();
    let mut out = String::new();
    let failing: Vec<(&Pod, Vec<String>)> = pods
        .items
        .iter()
        .map(|p| (p, problems(p)))
        .filter(|(_, problems)| !problems.is_empty())
        .collect();
    for (pod, problems) in failing.iter().take(MAX_PODS) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let _ = write!(
            out,
            "\n  pod {namespace}/{name} (new ReplicaSet {rs_name}): {}",
            problems.join("; ")
        );
        let warnings = events
            .list(&ListParams::default().fields(&format!(
                "involvedObject.kind=Pod,involvedObject.name={name},type=Warning"
            )))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        for line in recent_warnings(warnings) {
            let _ = write!(out, "\n    {line}");
        }
    }
    if failing.len() > MAX_PODS {
        let _ = write!(out, "\n  and {} more pods", failing.len() - MAX_PODS);
    }
    out
}

/// Why `pod` is not ready, one entry per reason; empty when it is ready.
pub fn problems(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return vec!["no status yet".into()];
    };
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
    };
    if condition("Ready").is_some_and(|c| c.status == "True") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(c) = condition("PodScheduled").filter(|c| c.status == "False") {
        out.push(format!(
            "unschedulable: {}",
            c.message.as_deref().unwrap_or("no message")
        ));
    }
    for cs in status.container_statuses.iter().flatten() {
        let state = cs.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("Waiting");
            let mut text = format!("container {}: {reason}", cs.name);
            if let Some(message) = &waiting.message {
                let _ = write!(text, ": {message}");
            }
            if let Some(last) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                let _ = write!(
                    text,
                    " (last exit: {}, exit code {}, {} restarts)",
                    last.reason.as_deref().unwrap_or("unknown"),
                    last.exit_code,
                    cs.restart_count
                );
            }
            out.push(text);
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            out.push(format!(
                "container {}: terminated: {} (exit code {})",
                cs.name,
                t.reason.as_deref().unwrap_or("unknown"),
                t.exit_code
            ));
        } else if !cs.ready {
            out.push(format!("container {}: running but not ready", cs.name));
        }
    }
    if out.is_empty() {
        let why = condition("Ready")
            .and_then(|c| c.message.clone().or(c.reason.clone()))
            .unwrap_or_else(|| "not ready".into());
        out.push(why);
    }
    out
}

/// The newest Warning events, newest first, as `Warning <reason>: <message> (×count)`.
fn recent_warnings(mut events: Vec<Event>) -> Vec<String> {
    let when = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
    };
    events.sort_by_key(|e| std::cmp::Reverse(when(e)));
    events
        .iter()
        .take(MAX_EVENTS)
        .map(|e| {
            let mut line = format!(
                "Warning {}: {}",
                e.reason.as_deref().unwrap_or("unknown"),
                e.message.as_deref().unwrap_or_default()
            );
            if let Some(n) = e.count.filter(|n| *n > 1) {
                let _ = write!(line, " (x{n})");
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
            .unwrap()
    }

    #[test]
    fn image_pulls_crash_loops_and_scheduling_are_named() {
        let pull = pod(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "proxy", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]
        }));
        assert_eq!(
            problems(&pull),
            ["container proxy: ImagePullBackOff: Back-off pulling image \"x\""]
        );
        let crash = pod(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "proxy", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]
        }));
        assert_eq!(
            problems(&crash),
            ["container proxy: CrashLoopBackOff (last exit: OOMKilled, exit code 137, 3 restarts)"]
        );
        let pending = pod(serde_json::json!({
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient cpu."}]
        }));
        assert_eq!(
            problems(&pending),
            ["unschedulable: 0/2 nodes are available: 2 Insufficient cpu."]
        );
        let ready = pod(serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert!(problems(&ready).is_empty());
    }
}
