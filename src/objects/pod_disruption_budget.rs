//! The PodDisruptionBudget: how many proxy pods a voluntary disruption (a drain) may take at once.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use crate::config::Environment;

/// The PDB, or `None` when disabled.
///
/// `unhealthyPodEvictionPolicy: AlwaysAllow`: a pod that is not ready serves nothing, so
/// evicting it costs nothing, and a crash-looping pod must not block node drains.
pub fn pod_disruption_budget(env: &Environment, env_name: &str) -> Option<PodDisruptionBudget> {
    let budget = &env.disruption_budget;
    budget.enabled.then(|| PodDisruptionBudget {
        metadata: labels::metadata(env, env_name),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(
                i32::try_from(budget.max_unavailable).unwrap_or(i32::MAX),
            )),
            selector: Some(labels::label_selector(env, env_name)),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn only_when_enabled() {
        assert!(pod_disruption_budget(&load("development"), "development").is_none());
        let env = load("production");
        let spec = pod_disruption_budget(&env, "production")
            .and_then(|p| p.spec)
            .unwrap_or_default();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.selector.and_then(|s| s.match_labels),
            Some(labels::selector(&env, "production"))
        );
    }
}
