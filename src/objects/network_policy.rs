//! The NetworkPolicy: API traffic only from the ingress controller or the Gateway, metrics
//! scraping only from the scraper's namespace to the admin port; egress only to the cluster
//! DNS, to the upstreams' ports (or the egress proxy's, for the upstreams it reaches), to the
//! shared limits store and to the OpenTelemetry collector.

use std::collections::{BTreeMap, BTreeSet};

use ai_api_proxy_config::upstream_endpoint;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use crate::config::{Environment, StorePeers};

/// The label the API server puts on every namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The DNS port.
pub const DNS_PORT: i32 = 53;

/// One policy for the proxy pods, both directions.
pub fn network_policy(env: &Environment, env_name: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: labels::metadata(env, env_name),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(labels::label_selector(env, env_name)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress(env)),
            egress: Some(egress(env)),
        }),
    }
}

/// The namespaces that send API traffic to the API port: the ingress controller's while the
/// Ingress is enabled, the Gateway's data plane while the HTTPRoute is (both during a
/// migration); the metrics scraper's namespace to the admin port only (it has no business with
/// the API, nor the controller with the metrics).
fn ingress(env: &Environment) -> Vec<NetworkPolicyIngressRule> {
    let policy = &env.network_policy;
    let route = &env.http_route;
    let rule = |ns: &str, port_number: u16| NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(namespace(ns)),
            ..Default::default()
        }]),
        ports: Some(vec![port("TCP", i32::from(port_number))]),
    };
    let traffic: BTreeSet<&str> = [
        Some(&policy.ingress_controller_namespace).filter(|_| env.ingress.enabled),
        route.traffic_namespace().filter(|_| route.enabled),
    ]
    .into_iter()
    .flatten()
    .map(|ns| ns.as_str())
    .collect();
    let mut rules: Vec<_> = traffic
        .into_iter()
        .map(|ns| rule(ns, env.proxy.port))
        .collect();
    if let Some(ns) = &policy.metrics_namespace {
        rules.push(rule(ns.as_str(), env.proxy.admin_port));
    }
    rules
}

/// DNS first, always: without it no upstream name resolves (the seed's "connection refused").
/// Then the ports of the upstreams reached directly towards `upstream_cidrs`, only when both
/// are non-empty: an egress rule with no peers or no ports would admit everything. Upstreams
/// the egress proxy reaches need only the proxy's port, where it runs.
fn egress(env: &Environment) -> Vec<NetworkPolicyEgressRule> {
    let dns = &env.network_policy.dns;
    let mut rules = vec![NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(namespace(dns.namespace.as_str())),
            pod_selector: (!dns.pod_labels.is_empty()).then(|| LabelSelector {
                match_labels: Some(dns.pod_labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(vec![port("UDP", DNS_PORT), port("TCP", DNS_PORT)]),
    }];

    let proxied = |base_url: &str| {
        env.proxy
            .egress
            .as_ref()
            .is_some_and(|e| e.proxies(base_url))
    };
    let ports: BTreeSet<u16> = env
        .proxy
        .upstreams
        .iter()
        .filter(|u| !proxied(&u.base_url))
        .filter_map(|u| upstream_endpoint(&u.base_url))
        .map(|(_, _, port)| port)
        .collect();
    let cidrs = &env.network_policy.upstream_cidrs;
    if !ports.is_empty() && !cidrs.is_empty() {
        rules.push(NetworkPolicyEgressRule {
            to: Some(
                cidrs
                    .iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: cidr.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: Some(
                ports
                    .into_iter()
                    .map(|p| port("TCP", i32::from(p)))
                    .collect(),
            ),
        });
    }
    rules.extend(egress_proxy(env));
    rules.extend(store(env));
    rules.extend(collector(env));
    rules
}

/// The egress proxy's port, towards its pods or address ranges only.
fn egress_proxy(env: &Environment) -> Option<NetworkPolicyEgressRule> {
    let url = env.proxy.egress.as_ref()?.https_proxy.as_deref()?;
    let (_, _, proxy_port) = upstream_endpoint(url)?;
    to_peers(env.network_policy.egress_proxy.as_ref()?, proxy_port)
}

/// The shared limits store's port, towards its pods or address ranges only.
fn store(env: &Environment) -> Option<NetworkPolicyEgressRule> {
    let (_, store_port) = env.proxy.shared_limits.as_ref()?.host_port()?;
    to_peers(env.network_policy.shared_limits.as_ref()?, store_port)
}

/// The OTLP collector's port (`proxy.telemetry.otlp.endpoint`), towards its pods or address
/// ranges only.
fn collector(env: &Environment) -> Option<NetworkPolicyEgressRule> {
    let (_, port) = env.proxy.telemetry.otlp.as_ref()?.host_port()?;
    to_peers(env.network_policy.otlp_collector.as_ref()?, port)
}

/// Egress to `port` of the pods and address ranges of `peers`; `None` when they name none.
fn to_peers(peers: &StorePeers, port_number: u16) -> Option<NetworkPolicyEgressRule> {
    let in_cluster = peers.namespace.is_some() || !peers.pod_labels.is_empty();
    let pods = in_cluster.then(|| NetworkPolicyPeer {
        namespace_selector: peers.namespace.as_ref().map(|ns| namespace(ns.as_str())),
        // Without a namespace, a pod selector (even an empty one) means the policy's own.
        pod_selector: (!peers.pod_labels.is_empty() || peers.namespace.is_none()).then(|| {
            LabelSelector {
                match_labels: Some(peers.pod_labels.clone()),
                ..Default::default()
            }
        }),
        ..Default::default()
    });
    let to: Vec<_> = pods
        .into_iter()
        .chain(peers.cidrs.iter().map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .collect();
    (!to.is_empty()).then(|| NetworkPolicyEgressRule {
        to: Some(to),
        ports: Some(vec![port("TCP", i32::from(port_number))]),
    })
}

fn namespace(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.into(), name.into())])),
        ..Default::default()
    }
}

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(number)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DnsLabel;
    use crate::objects::tests::load;

    fn spec(env: &Environment) -> NetworkPolicySpec {
        network_policy(env, "production").spec.unwrap_or_default()
    }

    fn ports(rule: &NetworkPolicyEgressRule) -> Vec<(String, i32)> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| {
                let n = match p.port {
                    Some(IntOrString::Int(n)) => n,
                    _ => -1,
                };
                (p.protocol.clone().unwrap_or_default(), n)
            })
            .collect()
    }

    fn has_dns_rule(spec: &NetworkPolicySpec, dns_namespace: &str) -> bool {
        spec.egress.iter().flatten().any(|rule| {
            let p = ports(rule);
            let to_dns = rule.to.iter().flatten().any(|peer| {
                peer.namespace_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    == Some(&BTreeMap::from([(
                        NAMESPACE_NAME_LABEL.into(),
                        dns_namespace.into(),
                    )]))
                    && peer
                        .pod_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        == Some(&BTreeMap::from([("k8s-app".into(), "kube-dns".into())]))
            });
            to_dns && p.contains(&("UDP".into(), 53)) && p.contains(&("TCP".into(), 53))
        })
    }

    #[test]
    fn egress_always_admits_dns_and_the_upstream_https_port() {
        let env = load("production");
        let spec = spec(&env);
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".into(), "Egress".into()])
        );
        assert!(has_dns_rule(&spec, "kube-system"));
        let egress = spec.egress.unwrap_or_default();
        assert_eq!(egress.len(), 3);
        assert_eq!(ports(&egress[1]), [("TCP".into(), 443)]);
        let cidrs: Vec<_> = egress[1]
            .to
            .iter()
            .flatten()
            .filter_map(|p| p.ip_block.as_ref())
            .map(|b| b.cidr.as_str())
            .collect();
        assert_eq!(cidrs, ["0.0.0.0/0"]);
    }

    #[test]
    fn dns_stays_when_upstreams_are_http_on_a_custom_port() {
        let mut env = load("production");
        env.proxy.upstreams[0].base_url = "http://llm.internal:9000/v1".into();
        env.network_policy.upstream_cidrs = vec!["10.20.0.0/16".into()];
        let spec = spec(&env);
        assert!(has_dns_rule(&spec, "kube-system"));
        let egress = spec.egress.unwrap_or_default();
        assert_eq!(ports(&egress[1]), [("TCP".into(), 9000)]);

        env.proxy.upstreams.clear();
        env.proxy.shared_limits = None;
        let spec = self::spec(&env);
        assert!(has_dns_rule(&spec, "kube-system"));
        assert_eq!(
            spec.egress.map(|e| e.len()),
            Some(1),
            "no upstream rule without ports"
        );
    }

    #[test]
    fn no_egress_rule_is_open_ended() {
        let mut env = load("production");
        env.network_policy.upstream_cidrs.clear();
        for rule in spec(&env).egress.unwrap_or_default() {
            assert!(!rule.to.unwrap_or_default().is_empty());
            assert!(!rule.ports.unwrap_or_default().is_empty());
        }
    }

    fn sources(env: &Environment) -> Vec<(String, i32)> {
        spec(env)
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| {
                let port = match r.ports.as_ref().and_then(|p| p[0].port.clone()) {
                    Some(IntOrString::Int(n)) => n,
                    _ => -1,
                };
                r.from.iter().flatten().map(move |peer| (peer, port))
            })
            .filter_map(|(peer, port)| {
                let labels = peer.namespace_selector.as_ref()?.match_labels.clone()?;
                Some((labels[NAMESPACE_NAME_LABEL].clone(), port))
            })
            .collect()
    }

    #[test]
    fn the_gateway_namespace_replaces_the_ingress_controllers() {
        let mut env = load("staging");
        let (api, admin) = (i32::from(env.proxy.port), i32::from(env.proxy.admin_port));
        let got = |env: &Environment| sources(env);
        assert_eq!(
            got(&env),
            [("gateway-system".into(), api), ("monitoring".into(), admin)]
        );
        env.http_route.dataplane_namespace = Some(DnsLabel::known("envoy-gateway-system"));
        env.ingress.enabled = true;
        assert_eq!(
            got(&env),
            [
                ("envoy-gateway-system".into(), api),
                ("ingress-nginx".into(), api),
                ("monitoring".into(), admin)
            ],
            "both while migrating"
        );
        env.ingress.enabled = false;
        env.http_route.enabled = false;
        assert_eq!(got(&env), [("monitoring".into(), admin)]);
    }

    #[test]
    fn the_store_is_reached_on_its_port_only_where_it_runs() {
        let mut env = load("production");
        let shared = env.proxy.shared_limits.clone();
        assert!(shared.is_some(), "production shares its limits");
        let egress = spec(&env).egress.unwrap_or_default();
        assert_eq!(egress.len(), 3);
        assert_eq!(ports(&egress[2]), [("TCP".into(), 6379)]);
        let peer = &egress[2].to.as_ref().unwrap()[0];
        assert_eq!(
            peer.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                "redis".into()
            )]))
        );
        env.proxy.shared_limits = None;
        assert_eq!(spec(&env).egress.map(|e| e.len()), Some(2));
    }

    #[test]
    fn upstreams_behind_the_egress_proxy_are_reached_through_its_port_only() {
        use ai_api_proxy_config::Egress;
        let mut env = load("production");
        let mut internal = env.proxy.upstreams[0].clone();
        internal.name = "internal".into();
        internal.base_url = "https://llm.internal:8443/v1".into();
        env.proxy.upstreams.push(internal);
        env.proxy.egress = Some(Egress {
            https_proxy: Some("http://egress.corp.internal:3128".into()),
            no_proxy: vec!["llm.internal".into()],
            basic_auth: None,
        });
        env.network_policy.egress_proxy = Some(StorePeers {
            cidrs: vec!["10.9.0.0/16".into()],
            ..StorePeers::default()
        });
        let egress = spec(&env).egress.unwrap_or_default();
        assert_eq!(
            egress.len(),
            4,
            "DNS, the direct upstream, the proxy, the store"
        );
        assert_eq!(
            ports(&egress[1]),
            [("TCP".into(), 8443)],
            "only the upstream no_proxy lists, not 443"
        );
        assert_eq!(ports(&egress[2]), [("TCP".into(), 3128)]);
        let cidrs = |rule: &NetworkPolicyEgressRule| -> Vec<String> {
            rule.to
                .iter()
                .flatten()
                .filter_map(|p| p.ip_block.as_ref().map(|b| b.cidr.clone()))
                .collect()
        };
        assert_eq!(cidrs(&egress[2]), ["10.9.0.0/16"]);

        env.proxy.upstreams.pop();
        let egress = spec(&env).egress.unwrap_or_default();
        assert_eq!(
            egress.len(),
            3,
            "no upstream CIDR rule: all go through the proxy"
        );
        assert_eq!(ports(&egress[1]), [("TCP".into(), 3128)]);
        assert!(
            egress
                .iter()
                .all(|r| !cidrs(r).contains(&"0.0.0.0/0".to_owned())),
            "the upstreams' CIDRs are not admitted"
        );
    }

    #[test]
    fn the_collector_is_reached_on_its_port_only_where_it_runs() {
        let mut env = load("staging");
        let egress = spec(&env).egress.unwrap_or_default();
        let last = egress.last().unwrap();
        assert_eq!(ports(last), [("TCP".into(), 4318)]);
        let peer = &last.to.as_ref().unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.into(),
                "observability".into()
            )]))
        );
        assert!(peer.pod_selector.is_some());
        let before = egress.len();
        env.proxy.telemetry.otlp = None;
        assert_eq!(spec(&env).egress.map(|e| e.len()), Some(before - 1));
    }

    #[test]
    fn ingress_only_from_the_controller_and_scraper_namespaces() {
        let env = load("production");
        let spec = spec(&env);
        let sources: Vec<_> = spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.iter().flatten())
            .map(|peer| {
                assert!(peer.ip_block.is_none() && peer.pod_selector.is_none());
                peer.namespace_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.clone())
                    .unwrap_or_default()[NAMESPACE_NAME_LABEL]
                    .clone()
            })
            .collect();
        assert_eq!(sources, ["ingress-nginx", "monitoring"]);
        let ports: Vec<_> = spec
            .ingress
            .iter()
            .flatten()
            .map(|r| r.ports.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            ports,
            [
                vec![port("TCP", i32::from(env.proxy.port))],
                vec![port("TCP", i32::from(env.proxy.admin_port))]
            ]
        );
        assert_eq!(
            spec.pod_selector.and_then(|s| s.match_labels),
            Some(labels::selector(&env, "production"))
        );
    }
}
