//! One pure builder per Kubernetes object: `&Environment` in, a k8s-openapi value out.
//!
//! Every builder sets only the fields it means (the rest stay `None` and are not serialized),
//! so the rendered YAML is exactly what server-side apply will own. No Secret is ever built:
//! the Deployment only references Secrets by name and key.

pub mod applyset;
pub mod config_map;
pub mod container;
pub mod deployment;
pub mod horizontal_pod_autoscaler;
pub mod http_route;
pub mod ingress;
pub mod labels;
pub mod monitoring;
pub mod namespace;
pub mod network_policy;
pub mod pod_disruption_budget;
pub mod service;
pub mod service_account;
pub mod topology;
pub mod volumes;

mod kind;

use infra_crds::{HttpRoute, PodMonitor, PrometheusRule};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::config::Environment;

pub use kind::{KindMeta, Readiness};

/// Name of the proxy's container port, which the Service, probes and Ingress refer to.
pub const PORT_NAME: &str = "http";
/// The name of the proxy's admin port (health, readiness, metrics): probes and the scraper
/// only, never the Service or the Ingress.
pub const ADMIN_PORT_NAME: &str = "admin";

kind::kinds! {
    /// The namespace everything lives in.
    Namespace(Namespace),
    /// The pods' identity (no API token).
    ServiceAccount(ServiceAccount),
    /// The proxy configuration.
    ConfigMap(ConfigMap),
    /// The Service in front of the pods.
    Service(Service),
    /// The proxy pods.
    Deployment(Deployment),
    /// Autoscaling of the Deployment.
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
    /// Limits voluntary disruptions.
    PodDisruptionBudget(PodDisruptionBudget),
    /// External HTTP(S) access through an ingress controller.
    Ingress(Ingress),
    /// External HTTP(S) access through a Gateway API Gateway.
    HTTPRoute(HttpRoute),
    /// Who may talk to the pods, and whom they may talk to.
    NetworkPolicy(NetworkPolicy),
    /// Prometheus scraping of the pods (prometheus-operator).
    PodMonitor(PodMonitor),
    /// The alerts (prometheus-operator).
    PrometheusRule(PrometheusRule),
}

impl Kind {
    /// When an applied object of this kind is ready (kstatus rules).
    pub fn readiness(self) -> Readiness {
        match self {
            Kind::Deployment => Readiness::Rollout,
            Kind::PodDisruptionBudget | Kind::HorizontalPodAutoscaler => {
                Readiness::ObservedGeneration
            }
            Kind::Namespace => Readiness::NamespaceActive,
            Kind::ServiceAccount
            | Kind::ConfigMap
            | Kind::Service
            | Kind::Ingress
            | Kind::HTTPRoute
            | Kind::NetworkPolicy
            | Kind::PodMonitor
            | Kind::PrometheusRule => Readiness::Exists,
        }
    }

    /// Whether `apply` may delete an object of this kind that left the plan. Never the
    /// Namespace: deleting it would delete the Secrets and everything else in it.
    pub fn prunable(self) -> bool {
        !matches!(self, Kind::Namespace)
    }

    /// The environment setting that asks for objects of this kind, when one does (named in
    /// preflight errors, e.g. when the server does not serve the kind's API).
    pub fn setting(self) -> Option<&'static str> {
        match self {
            Kind::HorizontalPodAutoscaler => Some("autoscaling.enabled"),
            Kind::PodDisruptionBudget => Some("disruption_budget.enabled"),
            Kind::Ingress => Some("ingress.enabled"),
            Kind::HTTPRoute => Some("http_route.enabled"),
            Kind::PodMonitor => Some("metrics.pod_monitor"),
            Kind::PrometheusRule => Some("metrics.alerts"),
            Kind::Namespace
            | Kind::ServiceAccount
            | Kind::ConfigMap
            | Kind::Service
            | Kind::Deployment
            | Kind::NetworkPolicy => None,
        }
    }
}

impl Object {
    /// The object's `kind`, e.g. `Deployment`.
    pub fn kind(&self) -> &'static str {
        self.kind_of().meta().kind
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace` (`None` for the Namespace itself).
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// The object's `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(&self) -> &'static str {
        self.kind_of().meta().api_version
    }
}

/// Every object of the environment, in a fixed order: Namespace, ServiceAccount, ConfigMap
/// (and the dashboard's), Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget,
/// Ingress, HTTPRoute, NetworkPolicy, PodMonitor, PrometheusRule. Disabled objects are left out.
pub fn objects(env: &Environment, env_name: &str) -> Vec<Object> {
    let mut objects = vec![
        Object::Namespace(namespace::namespace(env, env_name)),
        Object::ServiceAccount(service_account::service_account(env, env_name)),
        Object::ConfigMap(config_map::config_map(env, env_name)),
    ];
    objects
        .extend(monitoring::dashboard::dashboard_config_map(env, env_name).map(Object::ConfigMap));
    objects.push(Object::Service(service::service(env, env_name)));
    objects.push(Object::Deployment(deployment::deployment(env, env_name)));
    objects.extend(
        horizontal_pod_autoscaler::horizontal_pod_autoscaler(env, env_name)
            .map(Object::HorizontalPodAutoscaler),
    );
    objects.extend(
        pod_disruption_budget::pod_disruption_budget(env, env_name)
            .map(Object::PodDisruptionBudget),
    );
    objects.extend(ingress::ingress(env, env_name).map(Object::Ingress));
    objects.extend(http_route::http_route(env, env_name).map(Object::HTTPRoute));
    objects.push(Object::NetworkPolicy(network_policy::network_policy(
        env, env_name,
    )));
    objects.extend(monitoring::pod_monitor::pod_monitor(env, env_name).map(Object::PodMonitor));
    objects.extend(
        monitoring::prometheus_rule::prometheus_rule(env, env_name).map(Object::PrometheusRule),
    );
    objects
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Layers, load as load_layers};

    /// The committed environment `name`, loaded and validated as the CLI does.
    pub(crate) fn load(name: &str) -> Environment {
        load_layers(&Layers {
            dir: concat!(env!("CARGO_MANIFEST_DIR"), "/environments").into(),
            env: name.into(),
            sets: vec![],
        })
        .unwrap_or_else(|e| panic!("environment {name}: {e}"))
    }

    const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

    #[test]
    fn kinds_come_in_the_fixed_order() {
        let kinds: Vec<_> = objects(&load("production"), "production")
            .iter()
            .map(Object::kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "ConfigMap",
                "Service",
                "Deployment",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "Ingress",
                "NetworkPolicy",
                "PodMonitor",
                "PrometheusRule"
            ]
        );
        let dev: Vec<_> = objects(&load("development"), "development")
            .iter()
            .map(Object::kind)
            .collect();
        assert_eq!(
            dev,
            [
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "Service",
                "Deployment",
                "NetworkPolicy"
            ]
        );
    }

    #[test]
    fn the_kind_table_is_in_render_order_and_matches_the_types() {
        for kind in Kind::ALL {
            assert_eq!(kind.meta().kind, format!("{kind:?}"));
        }
        for object in objects(&load("production"), "production") {
            assert_eq!(object.kind(), format!("{:?}", object.kind_of()));
        }
        let deployment = Kind::Deployment.meta();
        assert_eq!(
            (deployment.group, deployment.version, deployment.plural),
            ("apps", "v1", "deployments")
        );
        assert!(deployment.namespaced);
        assert!(!Kind::Namespace.meta().namespaced);
        assert_eq!(
            Kind::HorizontalPodAutoscaler.meta().api_version,
            "autoscaling/v2"
        );
        assert_eq!(Kind::from_name("Secret"), None);
        assert_eq!(Kind::from_name("Ingress"), Some(Kind::Ingress));
        assert!(!Kind::Namespace.prunable());
    }

    #[test]
    fn staging_arrives_through_gateway_api() {
        let kinds: Vec<_> = objects(&load("staging"), "staging")
            .iter()
            .map(Object::kind_of)
            .collect();
        assert!(kinds.contains(&Kind::HTTPRoute), "{kinds:?}");
        assert!(!kinds.contains(&Kind::Ingress), "{kinds:?}");
        assert_eq!(
            Kind::HTTPRoute.meta().api_version,
            "gateway.networking.k8s.io/v1"
        );
        assert_eq!(Kind::PodMonitor.setting(), Some("metrics.pod_monitor"));
    }

    #[test]
    fn no_secret_is_ever_produced() {
        for name in ENVIRONMENTS {
            for object in objects(&load(name), name) {
                assert_ne!(object.kind(), "Secret");
                let yaml = serde_yaml::to_string(&object).unwrap();
                assert!(!yaml.contains("kind: Secret"), "{yaml}");
                assert!(!yaml.contains("stringData"), "{yaml}");
            }
        }
    }

    #[test]
    fn every_namespaced_object_is_in_the_environment_namespace() {
        for name in ENVIRONMENTS {
            let env = load(name);
            for object in objects(&env, name) {
                match object {
                    Object::Namespace(ref ns) => {
                        assert_eq!(ns.metadata.name.as_deref(), Some(env.namespace.as_str()));
                        assert_eq!(object.namespace(), None);
                    }
                    _ => assert_eq!(
                        object.namespace(),
                        Some(env.namespace.as_str()),
                        "{}",
                        object.kind()
                    ),
                }
            }
        }
    }

    #[test]
    fn every_object_has_the_recommended_labels() {
        for name in ENVIRONMENTS {
            let env = load(name);
            let expected = labels::recommended(&env, name);
            for object in objects(&env, name) {
                let labels = object.metadata().labels.clone().unwrap_or_default();
                for (k, v) in &expected {
                    assert_eq!(labels.get(k), Some(v), "{} {k}", object.kind());
                }
                assert_eq!(labels[labels::MANAGED_BY], "infra");
            }
        }
    }

    #[test]
    fn serializes_with_api_version_and_kind_and_without_defaults() {
        for object in objects(&load("production"), "production") {
            let value = serde_json::to_value(&object).unwrap();
            assert_eq!(value["apiVersion"], object.api_version());
            assert_eq!(value["kind"], object.kind());
            assert!(value.get("status").is_none(), "{}", object.kind());
            assert!(!has_null(&value), "{value}");
        }
    }

    #[test]
    fn selectors_never_carry_the_version() {
        let env = load("production");
        for object in objects(&env, "production") {
            let value = serde_json::to_value(&object).unwrap();
            let mut selectors = Vec::new();
            collect_selectors(&value, &mut selectors);
            for selector in selectors {
                assert!(
                    selector.get(labels::VERSION).is_none(),
                    "{}: {selector}",
                    object.kind()
                );
            }
        }
    }

    /// Whether a `null` appears anywhere: an unset field that would be serialized anyway.
    fn has_null(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Null => true,
            serde_json::Value::Object(map) => map.values().any(has_null),
            serde_json::Value::Array(items) => items.iter().any(has_null),
            _ => false,
        }
    }

    /// Every `selector`, `matchLabels` or `podSelector` map under `value`.
    fn collect_selectors<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if matches!(k.as_str(), "selector" | "matchLabels") {
                        out.push(v);
                    }
                    collect_selectors(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_selectors(v, out)),
            _ => {}
        }
    }
}
