//! The HorizontalPodAutoscaler (autoscaling/v2): resource targets, and always an explicit behavior.

use ai_api_proxy_config::Duration;
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};

use super::labels;
use crate::config::{Environment, ScalingRules};

/// The HPA scaling the Deployment, or `None` when autoscaling is off.
pub fn horizontal_pod_autoscaler(
    env: &Environment,
    env_name: &str,
) -> Option<HorizontalPodAutoscaler> {
    let scaling = &env.autoscaling;
    if !scaling.enabled {
        return None;
    }
    let metrics: Vec<MetricSpec> = [
        ("cpu", scaling.target_cpu_utilization),
        ("memory", scaling.target_memory_utilization),
    ]
    .into_iter()
    .filter_map(|(resource, target)| Some(utilization(resource, target?)))
    .collect();
    Some(HorizontalPodAutoscaler {
        metadata: labels::metadata(env, env_name),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(Deployment::API_VERSION.into()),
                kind: Deployment::KIND.into(),
                name: env.name.as_str().into(),
            },
            min_replicas: Some(int(scaling.min_replicas)),
            max_replicas: int(scaling.max_replicas),
            metrics: (!metrics.is_empty()).then_some(metrics),
            behavior: Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(rules(&scaling.behavior.scale_up)),
                scale_down: Some(rules(&scaling.behavior.scale_down)),
            }),
        }),
        ..Default::default()
    })
}

fn utilization(resource: &str, percent: u32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(int(percent)),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// Both limits apply per period; `Max` lets the larger of the two win, so small deployments
/// still move by whole pods and large ones by percent.
fn rules(rules: &ScalingRules) -> HPAScalingRules {
    let period = secs(rules.period);
    HPAScalingRules {
        stabilization_window_seconds: Some(secs(rules.stabilization_window)),
        select_policy: Some("Max".into()),
        policies: Some(vec![
            HPAScalingPolicy {
                type_: "Percent".into(),
                value: int(rules.max_percent),
                period_seconds: period,
            },
            HPAScalingPolicy {
                type_: "Pods".into(),
                value: int(rules.max_pods),
                period_seconds: period,
            },
        ]),
        ..Default::default()
    }
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs_ceil()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn off_means_no_hpa() {
        assert!(horizontal_pod_autoscaler(&load("development"), "development").is_none());
    }

    #[test]
    fn targets_the_deployment_and_always_has_behavior() {
        let env = load("production");
        let spec = horizontal_pod_autoscaler(&env, "production")
            .and_then(|h| h.spec)
            .unwrap_or_default();
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!(
            spec.scale_target_ref.api_version.as_deref(),
            Some("apps/v1")
        );
        assert_eq!(spec.scale_target_ref.name, "ai-api-proxy");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 10));
        let metrics = spec.metrics.unwrap_or_default();
        let targets: Vec<_> = metrics
            .iter()
            .filter_map(|m| m.resource.as_ref())
            .map(|r| (r.name.as_str(), r.target.average_utilization))
            .collect();
        assert_eq!(targets, [("cpu", Some(70)), ("memory", Some(80))]);
        let behavior = spec.behavior.unwrap_or_default();
        let down = behavior.scale_down.unwrap_or_default();
        assert_eq!(down.stabilization_window_seconds, Some(300));
        assert_eq!(down.select_policy.as_deref(), Some("Max"));
        let policies: Vec<_> = down
            .policies
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.type_, p.value, p.period_seconds))
            .collect();
        assert_eq!(
            policies,
            [("Percent".into(), 50, 60), ("Pods".into(), 2, 60)]
        );
        let up = behavior.scale_up.unwrap_or_default();
        assert_eq!(up.stabilization_window_seconds, Some(0));
    }

    #[test]
    fn behavior_is_present_with_default_rules() {
        let mut env = load("staging");
        env.autoscaling.behavior = Default::default();
        env.autoscaling.target_memory_utilization = None;
        let spec = horizontal_pod_autoscaler(&env, "staging")
            .and_then(|h| h.spec)
            .unwrap_or_default();
        assert!(spec.behavior.and_then(|b| b.scale_up).is_some());
        assert_eq!(spec.metrics.map(|m| m.len()), Some(1));
    }
}
