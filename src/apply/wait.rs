//! Wait until every applied object is ready, by kstatus rules, with one deadline.
//!
//! Per kind ([`Kind::readiness`]): a Deployment is rolled out as `kubectl rollout status`
//! means it (every desired replica updated and available, none old); kinds whose controller
//! reports an `observedGeneration` are ready once it caught up; a Namespace once `Active`;
//! the rest once they exist. A condition is read only once `observedGeneration` has caught
//! up with the generation we applied, so an old status never passes for the new one.

use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DynamicObject;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Error, Result, api_resource, describe_object, diagnose, dynamic_api};
use crate::objects::{Object, Readiness};

/// How often objects are read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Where an object stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Ready, with a short note (e.g. `2 replicas available`).
    Done(String),
    /// Still going, and why.
    Waiting(String),
    /// Failed for good (a Deployment's progress deadline passed), with the controller's message.
    Failed(String),
}

/// Where `deployment`'s rollout stands.
pub fn progress(deployment: &Deployment) -> Progress {
    let status = deployment.status.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Progress::Waiting(format!(
            "the Deployment controller has not yet seen generation {generation}"
        ));
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Progress::Failed(format!(
            "progress deadline exceeded: {}",
            c.message.as_deref().unwrap_or("no message")
        ));
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if updated < desired {
        Progress::Waiting(format!("{updated} of {desired} replicas updated"))
    } else if total > updated {
        Progress::Waiting(format!(
            "{} old replicas pending termination",
            total - updated
        ))
    } else if available < desired {
        Progress::Waiting(format!(
            "{available} of {desired} updated replicas available"
        ))
    } else {
        let noun = if available == 1 {
            "replica"
        } else {
            "replicas"
        };
        Progress::Done(format!("{available} {noun} available"))
    }
}

/// Where an object of a kind with `readiness` (other than a Deployment) stands: kstatus'
/// generic rule on `observedGeneration`, or the Namespace's phase.
pub fn generic_progress(readiness: Readiness, object: &DynamicObject) -> Progress {
    let status = &object.data["status"];
    match readiness {
        Readiness::ObservedGeneration => {
            let generation = object.metadata.generation.unwrap_or(0);
            match status["observedGeneration"].as_i64() {
                Some(seen) if seen < generation => Progress::Waiting(format!(
                    "its controller has not yet seen generation {generation}"
                )),
                _ => Progress::Done("current".into()),
            }
        }
        Readiness::NamespaceActive => match status["phase"].as_str() {
            Some("Active") | None => Progress::Done("active".into()),
            Some(phase) => Progress::Failed(format!("phase {phase}")),
        },
        Readiness::Exists | Readiness::Rollout => Progress::Done("exists".into()),
    }
}

/// The Deployment's conditions that are not `True`, readable: `Available=False
/// (MinimumReplicasUnavailable): Deployment does not have minimum availability.`
pub fn conditions(deployment: &Deployment) -> String {
    let conditions = deployment
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.status != "True")
        .map(|c| {
            let mut text = format!("{}={}", c.type_, c.status);
            if let Some(reason) = &c.reason {
                text.push_str(&format!(" ({reason})"));
            }
            if let Some(message) = &c.message {
                text.push_str(&format!(": {message}"));
            }
            text
        })
        .collect::<Vec<_>>();
    conditions.join("; ")
}

/// What one read of an object found.
enum Read {
    Deployment(Box<Deployment>, Progress),
    Other(Progress),
}

impl Read {
    fn progress(&self) -> &Progress {
        match self {
            Read::Deployment(_, p) | Read::Other(p) => p,
        }
    }
}

async fn read(client: &kube::Client, object: &Object) -> Result<Read> {
    let shown = describe_object(object);
    let namespace = object.namespace().unwrap_or_default();
    match object.kind_of().readiness() {
        Readiness::Exists => Ok(Read::Other(Progress::Done("exists".into()))),
        Readiness::Rollout => {
            let d = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get(object.name())
                .await
                .map_err(Error::kube(format!("read {shown}")))?;
            let p = progress(&d);
            Ok(Read::Deployment(Box::new(d), p))
        }
        readiness => {
            let api = dynamic_api(client, &api_resource(object.kind_of()), object.namespace());
            let o = api
                .get(object.name())
                .await
                .map_err(Error::kube(format!("read {shown}")))?;
            Ok(Read::Other(generic_progress(readiness, &o)))
        }
    }
}

/// Waits until every object is ready, one fails, or `timeout` passes; `status` gets one line
/// saying what is still awaited whenever it changes. On failure or timeout the error names
/// what is not ready and, for a Deployment, the failing pods of its new ReplicaSet and why.
pub async fn ready(
    client: &kube::Client,
    objects: &[&Object],
    timeout: Duration,
    status: &mut impl FnMut(&str),
) -> Result<Vec<(String, String)>> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&Object> = objects.to_vec();
    let mut done: Vec<(String, String)> = Vec::new();
    let mut last_line = String::new();
    let mut last_reads: Vec<(&Object, Read)> = Vec::new();
    loop {
        let Ok(reads) =
            timeout_at(deadline, join_all(pending.iter().map(|o| read(client, o)))).await
        else {
            break;
        };
        let mut still = Vec::new();
        last_reads.clear();
        for (object, r) in pending.iter().zip(reads) {
            let r = r?;
            match r.progress().clone() {
                Progress::Done(note) => done.push((describe_object(object), note)),
                Progress::Failed(why) => {
                    let mut text = format!("{} failed: {why}", describe_object(object));
                    if let Read::Deployment(d, _) = &r {
                        text.push_str(&diagnose::explain(client, d).await);
                    }
                    return Err(Error::NotReady(text));
                }
                Progress::Waiting(_) => {
                    still.push(*object);
                    last_reads.push((object, r));
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(done);
        }
        let line = last_reads
            .iter()
            .map(|(o, r)| match r.progress() {
                Progress::Waiting(why) => format!("{}: {why}", describe_object(o)),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        if line != last_line {
            status(&format!("waiting for {line}"));
            last_line = line;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        sleep_until((now + POLL).min(deadline)).await;
    }
    let mut text = format!("not ready within {}:", humantime::format_duration(timeout));
    for object in &pending {
        text.push_str(&format!("\n  {}", describe_object(object)));
        let found = last_reads.iter().find(|(o, _)| o == object);
        if let Some((_, r)) = found {
            if let Progress::Waiting(why) = r.progress() {
                text.push_str(&format!(": {why}"));
            }
            if let Read::Deployment(d, _) = r {
                let conditions = conditions(d);
                if !conditions.is_empty() {
                    text.push_str(&format!("; {conditions}"));
                }
                text.push_str(&diagnose::explain(client, d).await);
            }
        }
    }
    Err(Error::NotReady(text))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    use super::*;

    fn deployment(replicas: Option<i32>, status: DeploymentStatus) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas,
                ..Default::default()
            }),
            status: Some(status),
            ..Default::default()
        };
        d.metadata.generation = Some(2);
        d
    }

    fn status(observed: i64, total: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(total),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..Default::default()
        }
    }

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> DeploymentCondition {
        DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Default::default()
        }
    }

    #[test]
    fn done_when_every_desired_replica_is_updated_and_available() {
        assert_eq!(
            progress(&deployment(Some(3), status(2, 3, 3, 3))),
            Progress::Done("3 replicas available".into())
        );
    }

    #[test]
    fn waits_for_generation_updates_old_replicas_and_availability() {
        let waiting = |d: Deployment| match progress(&d) {
            Progress::Waiting(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(waiting(deployment(Some(3), status(1, 3, 3, 3))).contains("generation 2"));
        assert_eq!(
            waiting(deployment(Some(3), status(2, 3, 1, 3))),
            "1 of 3 replicas updated"
        );
        assert_eq!(
            waiting(deployment(Some(3), status(2, 4, 3, 3))),
            "1 old replicas pending termination"
        );
        assert_eq!(
            waiting(deployment(Some(3), status(2, 3, 3, 2))),
            "2 of 3 updated replicas available"
        );
    }

    #[test]
    fn an_old_status_is_never_read_for_a_new_generation() {
        let mut s = status(1, 3, 1, 0);
        s.conditions = Some(vec![condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            "old",
        )]);
        assert!(matches!(
            progress(&deployment(Some(3), s)),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn other_kinds_follow_observed_generation_or_phase() {
        let object = |status: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "a", "generation": 2}, "status": status
            }))
            .unwrap()
        };
        let og = Readiness::ObservedGeneration;
        assert!(matches!(
            generic_progress(og, &object(serde_json::json!({"observedGeneration": 1}))),
            Progress::Waiting(_)
        ));
        assert!(matches!(
            generic_progress(og, &object(serde_json::json!({"observedGeneration": 2}))),
            Progress::Done(_)
        ));
        assert!(matches!(
            generic_progress(og, &object(serde_json::json!({}))),
            Progress::Done(_)
        ));
        assert!(matches!(
            generic_progress(
                Readiness::NamespaceActive,
                &object(serde_json::json!({"phase": "Terminating"}))
            ),
            Progress::Failed(_)
        ));
    }

    #[test]
    fn a_passed_progress_deadline_fails_with_the_controllers_message() {
        let mut s = status(2, 3, 1, 0);
        s.conditions = Some(vec![condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            "ReplicaSet \"ai-api-proxy-abc\" has timed out progressing.",
        )]);
        assert_eq!(
            progress(&deployment(Some(3), s)),
            Progress::Failed(
                "progress deadline exceeded: ReplicaSet \"ai-api-proxy-abc\" has timed out progressing."
                    .into()
            )
        );
    }

    #[test]
    fn conditions_read_as_type_status_reason_message() {
        let mut s = status(2, 3, 3, 0);
        s.conditions = Some(vec![
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
            condition("Progressing", "True", "ReplicaSetUpdated", "progressing"),
        ]);
        assert_eq!(
            conditions(&deployment(Some(3), s)),
            "Available=False (MinimumReplicasUnavailable): Deployment does not have minimum availability."
        );
    }
}
