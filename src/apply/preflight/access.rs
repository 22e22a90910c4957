//! May we? One SelfSubjectAccessReview per verb and resource we will use, all at once.

use futures_util::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::Problem;
use crate::apply::{Error, Result};

/// One permission we need: a verb on a resource, in a namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    /// The verb, e.g. `patch`.
    pub verb: &'static str,
    /// API group (`""` for core).
    pub group: String,
    /// The resource's plural, e.g. `deployments`.
    pub resource: String,
    /// The namespace (`None`: cluster-wide).
    pub namespace: Option<String>,
}

impl Need {
    /// `plural` or `plural.group`, as `kubectl auth can-i` takes it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Asks the API server about every need (concurrently); the denied ones are problems.
pub async fn review(client: &kube::Client, needs: &[Need]) -> Result<Vec<Problem>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answers = join_all(needs.iter().map(|need| {
        let api = &api;
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(need.verb.into()),
                        group: Some(need.group.clone()),
                        resource: Some(need.resource.clone()),
                        namespace: need.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create(&PostParams::default(), &review).await
        }
    }))
    .await;
    let mut problems = Vec::new();
    for (need, answer) in needs.iter().zip(answers) {
        let status = answer
            .map_err(Error::kube(format!(
                "ask the API server whether we may {} {}",
                need.verb,
                need.resource_name()
            )))?
            .status
            .unwrap_or_default();
        if !status.allowed {
            problems.push(Problem::Forbidden {
                verb: need.verb,
                resource: need.resource_name(),
                namespace: need.namespace.clone(),
                reason: status.reason.or(status.evaluation_error),
            });
        }
    }
    Ok(problems)
}
