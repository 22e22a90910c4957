//! The Deployment running the proxy: restricted security, real probes, config-hash rollouts.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{config_map, container, labels, topology, volumes};
use crate::config::{Environment, PullPolicy};

/// Pod template annotation holding the SHA-256 of the rendered proxy config: a config change
/// changes the template, and so rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "ai-api-proxy/config-sha256";
/// Added to the proxy's own drain time before the kubelet sends SIGKILL.
pub const GRACE_MARGIN_SECS: u64 = 5;

/// The Deployment. With autoscaling on it carries no `replicas`: the HPA owns the count, and
/// every apply would otherwise reset it.
pub fn deployment(env: &Environment, env_name: &str) -> Deployment {
    let mut metadata = labels::metadata(env, env_name);
    let skips = checkov_skips(env);
    if !skips.is_empty() {
        metadata.annotations = Some(skips);
    }
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: (!env.autoscaling.enabled)
                .then(|| i32::try_from(env.replicas).unwrap_or(i32::MAX)),
            selector: labels::label_selector(env, env_name),
            // Start a new pod before an old one goes: a rollout never lowers capacity.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: pod_template(env, env_name),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `terminationGracePeriodSeconds`: the proxy's drain time, rounded up, plus a margin.
pub fn grace_period_secs(env: &Environment) -> i64 {
    let secs = env.proxy.shutdown.total().as_secs_ceil() + GRACE_MARGIN_SECS;
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn pod_template(env: &Environment, env_name: &str) -> PodTemplateSpec {
    let mut annotations = BTreeMap::from([(
        CONFIG_HASH_ANNOTATION.to_owned(),
        config_map::config_hash(env),
    )]);
    if env.metrics.scrape_annotations {
        annotations.extend([
            ("prometheus.io/scrape".to_owned(), "true".to_owned()),
            // The admin port: metrics are never served on the API port.
            (
                "prometheus.io/port".to_owned(),
                env.proxy.admin_port.to_string(),
            ),
            (
                "prometheus.io/path".to_owned(),
                env.proxy.endpoints.metrics.clone(),
            ),
        ]);
    }
    let (volumes, mounts) = volumes::volumes_and_mounts(env);
    let spread = topology::spread_constraints(env, env_name);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::recommended(env, env_name)),
            annotations: Some(annotations),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(env.name.as_str().into()),
            automount_service_account_token: Some(false),
            // The proxy finds nothing through service environment variables.
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(grace_period_secs(env)),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(env.security.run_as_user),
                run_as_group: Some(env.security.run_as_group),
                // Group owner of the mounted Secret files (mode 0440).
                fs_group: Some(env.security.run_as_group),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            topology_spread_constraints: (!spread.is_empty()).then_some(spread),
            containers: vec![Container {
                volume_mounts: Some(mounts),
                ..container::proxy_container(env)
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}

/// checkov skips (`checkov.io/skipN: ID=reason`, on this object's metadata) for the two image
/// checks a tag cannot meet. With a digest both pass and nothing is skipped. Reasons contain
/// no `=`: checkov splits the value on it.
fn checkov_skips(env: &Environment) -> BTreeMap<String, String> {
    let Some(tag) = env
        .image
        .tag
        .as_deref()
        .filter(|_| env.image.digest.is_none())
    else {
        return BTreeMap::new();
    };
    let mut reasons = Vec::new();
    if env.image.pull_policy == PullPolicy::Always {
        reasons.push(format!(
            "CKV_K8S_43=tag {tag} follows a branch build on purpose and is re-pulled at every start (imagePullPolicy Always)"
        ));
    } else {
        reasons.push(format!(
            "CKV_K8S_43=deployed by the release tag {tag}; set image.digest to pin the exact bytes"
        ));
        reasons.push(format!(
            "CKV_K8S_15=release tag {tag} is immutable (never re-pushed) so a cached image is the released one; image.digest would pass this check"
        ));
    }
    reasons
        .into_iter()
        .enumerate()
        .map(|(i, reason)| (format!("checkov.io/skip{}", i + 1), reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::Duration;

    use super::*;
    use crate::objects::tests::load;

    fn pod(env: &Environment) -> PodSpec {
        deployment(env, "production")
            .spec
            .and_then(|s| s.template.spec)
            .unwrap_or_default()
    }

    fn template_hash(env: &Environment) -> Option<String> {
        deployment(env, "production")
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned())
    }

    #[test]
    fn autoscaling_on_means_no_replicas() {
        let mut env = load("production");
        assert!(env.autoscaling.enabled);
        assert_eq!(
            deployment(&env, "production").spec.and_then(|s| s.replicas),
            None
        );
        env.autoscaling.enabled = false;
        env.replicas = 3;
        assert_eq!(
            deployment(&env, "production").spec.and_then(|s| s.replicas),
            Some(3)
        );
    }

    #[test]
    fn any_proxy_change_changes_the_template_hash() {
        let env = load("production");
        let hash = template_hash(&env);
        assert_eq!(hash, Some(config_map::config_hash(&env)));
        let changes: [fn(&mut Environment); 4] = [
            |e| e.proxy.rate_limit.requests_per_second += 1,
            |e| {
                e.proxy
                    .cors
                    .allowed_origins
                    .push("https://x.example.com".into())
            },
            |e| e.proxy.timeouts.idle = Duration::from_secs(61),
            |e| e.proxy.models.truncate(1),
        ];
        for change in changes {
            let mut other = env.clone();
            change(&mut other);
            assert_ne!(template_hash(&other), hash);
        }
        let mut unrelated = env.clone();
        unrelated.replicas += 1;
        assert_eq!(template_hash(&unrelated), hash);
    }

    #[test]
    fn security_context_is_restricted() {
        let mut env = load("production");
        env.security.run_as_user = 12345;
        env.security.run_as_group = 23456;
        let pod = pod(&env);
        let psc = pod.security_context.clone().unwrap_or_default();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(12345));
        assert_eq!(psc.run_as_group, Some(23456));
        assert_eq!(
            psc.seccomp_profile.map(|p| p.type_),
            Some("RuntimeDefault".into())
        );
        let csc = pod.containers[0]
            .security_context
            .clone()
            .unwrap_or_default();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.privileged, Some(false));
        assert_eq!(
            csc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".into()])
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name.as_deref(), Some("ai-api-proxy"));
        let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
        let volumes = pod.volumes.unwrap_or_default();
        assert_eq!(mounts.len(), volumes.len());
        assert!(
            mounts
                .iter()
                .all(|m| volumes.iter().any(|v| v.name == m.name))
        );
        assert!(
            volumes
                .iter()
                .all(|v| v.empty_dir.is_none() && v.host_path.is_none())
        );
    }

    #[test]
    fn grace_period_covers_the_drain() {
        let mut env = load("production");
        env.proxy.shutdown.grace_delay = Duration::from_millis(2500);
        env.proxy.shutdown.drain_timeout = Duration::from_secs(90);
        let grace = pod(&env)
            .termination_grace_period_seconds
            .unwrap_or_default();
        assert!(grace as f64 >= env.proxy.shutdown.total().get().as_secs_f64());
        assert_eq!(grace, 93 + 5);
    }

    #[test]
    fn digest_wins_and_needs_no_checkov_skip() {
        let mut env = load("production");
        assert!(
            deployment(&env, "production")
                .metadata
                .annotations
                .is_some()
        );
        env.image.digest = Some(format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(
            container::image(&env),
            format!("ghcr.io/example/ai-api-proxy@sha256:{}", "ab".repeat(32))
        );
        assert_eq!(deployment(&env, "production").metadata.annotations, None);
    }

    #[test]
    fn checkov_skips_name_one_check_each_with_a_reason() {
        for name in ["development", "staging", "production"] {
            let env = load(name);
            let skips = deployment(&env, name)
                .metadata
                .annotations
                .unwrap_or_default();
            let ids: Vec<_> = skips
                .iter()
                .map(|(key, value)| {
                    assert!(key.starts_with("checkov.io/skip"), "{key}");
                    let parts: Vec<_> = value.split('=').collect();
                    assert_eq!(parts.len(), 2, "{value}");
                    assert!(parts[1].len() > 20, "{value}");
                    parts[0]
                })
                .collect();
            let expected: &[&str] = match env.image.pull_policy {
                PullPolicy::Always => &["CKV_K8S_43"],
                _ => &["CKV_K8S_43", "CKV_K8S_15"],
            };
            assert_eq!(ids, expected, "{name}");
        }
    }

    #[test]
    fn scrape_annotations_follow_the_metrics_setting() {
        let mut env = load("production");
        let annotations = |env: &Environment| {
            deployment(env, "production")
                .spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.annotations)
                .unwrap_or_default()
        };
        env.metrics.scrape_annotations = true;
        let on = annotations(&env);
        assert_eq!(
            on.get("prometheus.io/path").map(String::as_str),
            Some("/metrics")
        );
        assert_eq!(
            on.get("prometheus.io/port").map(String::as_str),
            Some("9090")
        );
        env.metrics.scrape_annotations = false;
        assert!(!annotations(&env).contains_key("prometheus.io/scrape"));
    }
}
