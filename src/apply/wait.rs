//! Wait for the Deployment's rollout, with a timeout and a readable reason when it fails.
//!
//! Done means what `kubectl rollout status` means: the controller has seen the latest
//! generation, every desired replica is updated and available, and no old replica is left.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Error, Result};

/// How often the Deployment is read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Finished: this many replicas are updated and available.
    Done(i32),
    /// Still going, and why.
    Waiting(String),
    /// Failed for good (the progress deadline passed), with the controller's message.
    Failed(String),
}

/// Where `deployment`'s rollout stands. `desired` is `spec.replicas`, or, when the spec has
/// none (an HPA owns it), `hpa_desired` (the HPA's count), else Kubernetes' default of 1.
pub fn progress(deployment: &Deployment, hpa_desired: Option<i32>) -> Progress {
    let status = deployment.status.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
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
    if status.observed_generation.unwrap_or(0) < generation {
        return Progress::Waiting(format!(
            "the Deployment controller has not yet seen generation {generation}"
        ));
    }
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .or(hpa_desired)
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
        Progress::Done(available)
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

/// Waits until the rollout of Deployment `namespace/name` is done, it fails, or `timeout`
/// passes. `hpa` names the HorizontalPodAutoscaler that owns its replica count, if any.
/// Returns the number of available replicas.
pub async fn rollout(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    hpa: Option<&str>,
    timeout: Duration,
) -> Result<i32> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let shown = format!("Deployment {namespace}/{name}");
    let deadline = Instant::now() + timeout;
    let mut last: Option<(String, Deployment)> = None;
    loop {
        let Ok(read) = timeout_at(deadline, deployments.get(name)).await else {
            break;
        };
        let deployment = read.map_err(Error::kube(format!("read {shown}")))?;
        let hpa_desired = match hpa {
            Some(hpa) if deployment.spec.as_ref().and_then(|s| s.replicas).is_none() => {
                let Ok(read) = timeout_at(deadline, hpas.get_opt(hpa)).await else {
                    break;
                };
                read.map_err(Error::kube(format!(
                    "read HorizontalPodAutoscaler {namespace}/{hpa}"
                )))?
                .and_then(|h| h.status)
                .map(|s| s.desired_replicas)
            }
            _ => None,
        };
        match progress(&deployment, hpa_desired) {
            Progress::Done(available) => return Ok(available),
            Progress::Failed(reason) => {
                return Err(Error::Rollout(format!(
                    "{shown} failed to roll out: {reason}"
                )));
            }
            Progress::Waiting(why) => last = Some((why, deployment)),
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        sleep_until((now + POLL).min(deadline)).await;
    }
    let mut reason = format!(
        "{shown} did not finish rolling out within {}",
        humantime::format_duration(timeout)
    );
    if let Some((why, deployment)) = last {
        reason.push_str(&format!(": {why}"));
        let conditions = conditions(&deployment);
        if !conditions.is_empty() {
            reason.push_str(&format!("; {conditions}"));
        }
    }
    Err(Error::Rollout(reason))
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
            progress(&deployment(Some(3), status(2, 3, 3, 3)), None),
            Progress::Done(3)
        );
    }

    #[test]
    fn waits_for_generation_updates_old_replicas_and_availability() {
        let waiting = |d: Deployment| match progress(&d, None) {
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
    fn desired_comes_from_the_hpa_when_the_spec_has_none() {
        let d = deployment(None, status(2, 2, 2, 2));
        assert_eq!(progress(&d, Some(2)), Progress::Done(2));
        assert!(matches!(progress(&d, Some(4)), Progress::Waiting(_)));
        assert_eq!(
            progress(&deployment(None, status(2, 1, 1, 1)), None),
            Progress::Done(1)
        );
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
            progress(&deployment(Some(3), s), None),
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
