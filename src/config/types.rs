//! The environment file format: what `environments/*.toml` may say, with its defaults.

use std::collections::BTreeMap;

use ai_api_proxy_config::{Duration, ProxyConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::monitoring::Metrics;
use super::names::{DnsLabel, DnsSubdomain, Hostname, Port};
use super::quantity::Quantity;
use super::route::HttpRoute;

/// One deployment environment of the proxy, after all layers are merged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Name of the application; every object is named after it.
    #[schemars(example = &"ai-api-proxy")]
    pub name: DnsLabel,
    /// Namespace everything is deployed into (created by infra).
    #[schemars(example = &"ai-services")]
    pub namespace: DnsLabel,
    /// Container image of the proxy.
    pub image: Image,
    /// Replicas when autoscaling is off (with autoscaling on, the HPA owns the count).
    #[schemars(example = 2)]
    #[serde(default = "defaults::replicas")]
    pub replicas: u32,
    /// The Service in front of the pods.
    #[serde(default)]
    pub service: Service,
    /// CPU and memory requests and limits of the proxy container.
    pub resources: Resources,
    /// HorizontalPodAutoscaler (autoscaling/v2).
    pub autoscaling: Autoscaling,
    /// PodDisruptionBudget.
    #[serde(default)]
    pub disruption_budget: DisruptionBudget,
    /// Ingress (external HTTP(S) access through an ingress controller).
    pub ingress: Ingress,
    /// HTTPRoute (external access through a Gateway API Gateway).
    #[serde(default)]
    pub http_route: HttpRoute,
    /// Who may talk to the pods, and whom they may talk to.
    pub network_policy: NetworkPolicy,
    /// Pod security context.
    #[serde(default)]
    pub security: Security,
    /// How replicas spread over nodes and zones.
    #[serde(default)]
    pub topology_spread: TopologySpread,
    /// Prometheus scraping, alerts and the Grafana dashboard.
    #[serde(default)]
    pub metrics: Metrics,
    /// The proxy's own configuration, rendered into its ConfigMap as it is.
    pub proxy: ProxyConfig,
}

/// Container image: a tag or a digest (a digest pins the exact bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Registry and repository, e.g. `ghcr.io/example/ai-api-proxy`.
    #[schemars(example = &"ghcr.io/example/ai-api-proxy")]
    pub repository: String,
    /// Tag, e.g. `0.1.0` (one of `tag` and `digest` is required).
    #[schemars(example = &"0.1.0")]
    #[serde(default)]
    pub tag: Option<String>,
    /// Digest, e.g. `sha256:…`; wins over the tag when both are given.
    #[serde(default)]
    pub digest: Option<String>,
    /// When the kubelet pulls the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
}

/// Kubernetes `imagePullPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when not on the node.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

/// The Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Service {
    /// Kubernetes Service type.
    #[serde(rename = "type")]
    pub kind: ServiceType,
    /// Port the Service exposes (it forwards to the proxy's `proxy.port`).
    pub port: Port,
}

/// Kubernetes Service type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Cluster-internal virtual IP.
    #[default]
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

/// Requests and limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves.
    pub requests: ResourceList,
    /// The most the container may use.
    pub limits: ResourceList,
}

/// CPU and memory amounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// CPU, e.g. `250m` or `1`.
    #[serde(default)]
    pub cpu: Option<Quantity>,
    /// Memory, e.g. `128Mi`.
    #[serde(default)]
    pub memory: Option<Quantity>,
}

/// HorizontalPodAutoscaler settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// With autoscaling on, the Deployment carries no replica count.
    pub enabled: bool,
    /// Fewest replicas.
    #[schemars(example = 2)]
    pub min_replicas: u32,
    /// Most replicas.
    #[schemars(example = 10)]
    pub max_replicas: u32,
    /// Target average CPU use, in percent of the CPU request.
    #[schemars(example = 70)]
    #[serde(default)]
    pub target_cpu_utilization: Option<u32>,
    /// Target average memory use, in percent of the memory request.
    #[schemars(example = 80)]
    #[serde(default)]
    pub target_memory_utilization: Option<u32>,
    /// How fast to scale up and down.
    #[serde(default)]
    pub behavior: ScalingBehavior,
}

/// Scale-up and scale-down rules (the HPA always carries them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingBehavior {
    /// Rules for adding pods.
    pub scale_up: ScalingRules,
    /// Rules for removing pods.
    pub scale_down: ScalingRules,
}

/// One direction of scaling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// How long past recommendations are considered, to avoid flapping.
    pub stabilization_window: Duration,
    /// Add or remove at most this percentage of current pods per period.
    pub max_percent: u32,
    /// Add or remove at most this many pods per period.
    pub max_pods: u32,
    /// The period the limits apply to.
    pub period: Duration,
}

/// PodDisruptionBudget: how many pods a voluntary disruption (drain) may take at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DisruptionBudget {
    /// Render a PodDisruptionBudget.
    pub enabled: bool,
    /// Pods that may be unavailable at once during a drain (at least 1, or drains block).
    pub max_unavailable: u32,
}

/// The Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// Render an Ingress.
    pub enabled: bool,
    /// IngressClass name; for `nginx`, streaming-safe timeout and buffering annotations are added.
    #[schemars(example = &"nginx")]
    #[serde(default)]
    pub class_name: Option<DnsLabel>,
    /// Extra annotations (e.g. cert-manager's cluster issuer).
    #[schemars(example = serde_json::json!({"cert-manager.io/cluster-issuer": "letsencrypt-prod"}))]
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Hosts and paths routed to the Service.
    #[serde(default)]
    pub hosts: Vec<IngressHost>,
    /// TLS certificates and the hosts they cover.
    #[serde(default)]
    pub tls: Vec<IngressTls>,
}

/// One host of the Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngressHost {
    /// Host name.
    #[schemars(example = &"api.example.com")]
    pub host: Hostname,
    /// Paths on that host.
    pub paths: Vec<IngressPath>,
}

/// One path rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngressPath {
    /// Absolute path, e.g. `/`.
    #[schemars(example = &"/")]
    pub path: String,
    /// How the path matches.
    #[serde(default)]
    pub path_type: PathType,
}

/// Ingress path matching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathType {
    /// Element-wise prefix match.
    #[default]
    Prefix,
    /// Exact match.
    Exact,
    /// Up to the IngressClass.
    ImplementationSpecific,
}

/// A TLS certificate of the Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngressTls {
    /// Secret holding the certificate (e.g. issued by cert-manager).
    #[schemars(example = &"ai-api-tls")]
    pub secret_name: DnsSubdomain,
    /// Hosts it covers; each must be served by a rule above.
    pub hosts: Vec<Hostname>,
}

/// NetworkPolicy peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    /// Namespace of the ingress controller, admitted while the Ingress is enabled.
    #[schemars(example = &"ingress-nginx")]
    pub ingress_controller_namespace: DnsLabel,
    /// Namespace of the Prometheus scraper, admitted to the metrics port.
    #[schemars(example = &"monitoring")]
    #[serde(default)]
    pub metrics_namespace: Option<DnsLabel>,
    /// Cluster DNS: DNS egress to it is always allowed.
    #[serde(default)]
    pub dns: ClusterDns,
    /// Address ranges the upstreams live in (egress to their ports is allowed there only).
    #[schemars(example = ["0.0.0.0/0"])]
    #[serde(default = "defaults::upstream_cidrs")]
    pub upstream_cidrs: Vec<String>,
    /// Where the shared limits store (`proxy.shared_limits`) runs: egress to its port is
    /// allowed there only. Required exactly when `proxy.shared_limits` is set.
    #[serde(default)]
    pub shared_limits: Option<StorePeers>,
    /// Where the OpenTelemetry collector of `proxy.telemetry.otlp` runs: egress to its port
    /// is allowed there only. Required exactly when `proxy.telemetry.otlp` is set.
    #[serde(default)]
    pub otlp_collector: Option<StorePeers>,
    /// Where the egress proxy (`proxy.egress.https_proxy`) runs: egress to its port is allowed
    /// there, and the upstreams it reaches need no `upstream_cidrs`. Required exactly when
    /// `proxy.egress.https_proxy` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<StorePeers>,
}

/// Where a service the proxy calls runs (the Redis or Valkey of `proxy.shared_limits`, the
/// OpenTelemetry collector, the egress proxy): pods in the cluster, address ranges outside it
/// (a managed service), or both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorePeers {
    /// Namespace of the store's pods (absent: the proxy's own namespace).
    pub namespace: Option<DnsLabel>,
    /// Labels of the store's pods.
    pub pod_labels: BTreeMap<String, String>,
    /// Address ranges of a store outside the cluster.
    pub cidrs: Vec<String>,
}

/// Where the cluster DNS runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterDns {
    /// Its namespace.
    pub namespace: DnsLabel,
    /// Labels of its pods.
    pub pod_labels: BTreeMap<String, String>,
}

/// Pod security context (restricted profile: these are the knobs left).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Non-root user id the proxy runs as (matches the image's USER).
    pub run_as_user: i64,
    /// Group id.
    pub run_as_group: i64,
}

/// Topology spread constraints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TopologySpread {
    /// Largest allowed difference in replica count between two domains.
    pub max_skew: u32,
    /// Spread over nodes (`kubernetes.io/hostname`): hard or soft.
    pub across_nodes: Spread,
    /// Spread over zones (`topology.kubernetes.io/zone`): hard or soft.
    pub across_zones: Spread,
}

/// How strictly to spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// No constraint.
    Off,
    /// Prefer spreading (`ScheduleAnyway`).
    Preferred,
    /// Refuse to schedule unevenly (`DoNotSchedule`).
    Required,
}

mod defaults {
    pub fn replicas() -> u32 {
        1
    }

    pub fn upstream_cidrs() -> Vec<String> {
        vec!["0.0.0.0/0".into()]
    }
}

impl Default for Service {
    fn default() -> Self {
        Self {
            kind: ServiceType::ClusterIP,
            port: Port::HTTP_ALT,
        }
    }
}

impl Default for ScalingBehavior {
    fn default() -> Self {
        Self {
            scale_up: ScalingRules {
                stabilization_window: Duration::from_secs(0),
                max_percent: 100,
                max_pods: 4,
                period: Duration::from_secs(15),
            },
            scale_down: ScalingRules {
                stabilization_window: Duration::from_secs(300),
                max_percent: 50,
                max_pods: 2,
                period: Duration::from_secs(60),
            },
        }
    }
}

impl Default for DisruptionBudget {
    fn default() -> Self {
        Self {
            enabled: true,
            max_unavailable: 1,
        }
    }
}

impl Default for ClusterDns {
    fn default() -> Self {
        Self {
            namespace: DnsLabel::known("kube-system"),
            pod_labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Self {
            run_as_user: 10001,
            run_as_group: 10001,
        }
    }
}

impl Default for TopologySpread {
    fn default() -> Self {
        Self {
            max_skew: 1,
            across_nodes: Spread::Preferred,
            across_zones: Spread::Preferred,
        }
    }
}
