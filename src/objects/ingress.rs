//! The Ingress: hosts and paths to the Service, TLS, and streaming-safe ingress-nginx settings.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::{PORT_NAME, labels};
use crate::config::{Environment, PathType};

/// Prefix of ingress-nginx's annotations.
const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// The Ingress, or `None` when disabled. Paths go to the Service's `http` port by name, so a
/// change of `service.port` needs no change here.
pub fn ingress(env: &Environment, env_name: &str) -> Option<Ingress> {
    let ingress = &env.ingress;
    if !ingress.enabled {
        return None;
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: env.name.as_str().into(),
            port: Some(ServiceBackendPort {
                name: Some(PORT_NAME.into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let rules: Vec<IngressRule> = ingress
        .hosts
        .iter()
        .map(|host| IngressRule {
            host: Some(host.host.as_str().into()),
            http: Some(HTTPIngressRuleValue {
                paths: host
                    .paths
                    .iter()
                    .map(|p| HTTPIngressPath {
                        path: Some(p.path.clone()),
                        path_type: path_type(p.path_type).into(),
                        backend: backend.clone(),
                    })
                    .collect(),
            }),
        })
        .collect();
    let tls: Vec<IngressTLS> = ingress
        .tls
        .iter()
        .map(|t| IngressTLS {
            secret_name: Some(t.secret_name.as_str().into()),
            hosts: Some(t.hosts.iter().map(|h| h.as_str().into()).collect()),
        })
        .collect();

    let mut metadata = labels::metadata(env, env_name);
    let annotations = annotations(env);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: ingress.class_name.as_ref().map(|c| c.as_str().into()),
            rules: (!rules.is_empty()).then_some(rules),
            tls: (!tls.is_empty()).then_some(tls),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Whether the class is served by ingress-nginx (`nginx`, `nginx-internal`, `public-nginx`…).
pub fn is_nginx(env: &Environment) -> bool {
    env.ingress
        .class_name
        .as_ref()
        .is_some_and(|c| c.as_str().contains("nginx"))
}

/// The user's annotations, then ours on top: for the keys we compute, ours win, because the
/// proxy's timeouts and body limit are the single source of truth (a smaller user value would
/// cut streams at the controller). Validation may reject such conflicts earlier; here they
/// are simply overridden.
fn annotations(env: &Environment) -> BTreeMap<String, String> {
    let mut annotations = env.ingress.annotations.clone();
    if is_nginx(env) {
        annotations.extend(
            nginx_annotations(env)
                .into_iter()
                .map(|(k, v)| (format!("{NGINX}{k}"), v)),
        );
    }
    annotations
}

/// ingress-nginx defaults cut a response after 60 s of silence and buffer it whole: wrong for
/// streamed completions. The controller waits as long as the proxy's longest total timeout
/// (whole seconds, rounded up), buffers neither way, and accepts bodies up to the proxy's limit
/// (the proxy answers 413 beyond it).
fn nginx_annotations(env: &Environment) -> [(&'static str, String); 5] {
    let proxy = &env.proxy;
    let longest = proxy.longest(|t| t.total).as_secs_ceil().to_string();
    [
        ("proxy-read-timeout", longest.clone()),
        ("proxy-send-timeout", longest),
        ("proxy-buffering", "off".into()),
        ("proxy-request-buffering", "off".into()),
        ("proxy-body-size", proxy.max_body_bytes.to_string()),
    ]
}

fn path_type(t: PathType) -> &'static str {
    match t {
        PathType::Prefix => "Prefix",
        PathType::Exact => "Exact",
        PathType::ImplementationSpecific => "ImplementationSpecific",
    }
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{Duration, Timeouts};

    use super::*;
    use crate::config::DnsLabel;
    use crate::objects::tests::load;

    fn annotations_of(env: &Environment) -> BTreeMap<String, String> {
        ingress(env, "production")
            .and_then(|i| i.metadata.annotations)
            .unwrap_or_default()
    }

    fn secs(a: &BTreeMap<String, String>, key: &str) -> u64 {
        a.get(&format!("{NGINX}{key}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn nginx_waits_as_long_as_the_proxy_and_never_buffers() {
        let mut env = load("production");
        env.proxy.timeouts.total = Duration::from_millis(900_500);
        let mut slow = env.proxy.upstreams[0].clone();
        slow.name = "slow".into();
        slow.timeouts = Some(Timeouts {
            total: Duration::from_secs(1800),
            ..Timeouts::default()
        });
        env.proxy.upstreams.push(slow);
        let a = annotations_of(&env);
        assert!(secs(&a, "proxy-read-timeout") >= 1800);
        assert!(secs(&a, "proxy-send-timeout") >= 1800);
        env.proxy.upstreams.pop();
        let a = annotations_of(&env);
        assert_eq!(secs(&a, "proxy-read-timeout"), 901);
        assert_eq!(a[&format!("{NGINX}proxy-buffering")], "off");
        assert_eq!(a[&format!("{NGINX}proxy-request-buffering")], "off");
        assert!(secs(&a, "proxy-body-size") >= env.proxy.max_body_bytes);
    }

    #[test]
    fn ours_win_and_user_annotations_are_kept() {
        let mut env = load("production");
        env.ingress
            .annotations
            .insert(format!("{NGINX}proxy-read-timeout"), "60".into());
        let a = annotations_of(&env);
        assert_eq!(secs(&a, "proxy-read-timeout"), 600);
        assert_eq!(
            a.get("cert-manager.io/cluster-issuer").map(String::as_str),
            Some("letsencrypt-prod")
        );
    }

    #[test]
    fn no_nginx_annotations_for_another_class() {
        let mut env = load("production");
        env.ingress.class_name = Some(DnsLabel::try_from("traefik".to_owned()).unwrap());
        env.ingress.annotations.clear();
        assert!(annotations_of(&env).is_empty());
        env.ingress.class_name = None;
        assert!(annotations_of(&env).is_empty());
    }

    #[test]
    fn rules_and_tls_follow_the_environment() {
        let env = load("production");
        let spec = ingress(&env, "production")
            .and_then(|i| i.spec)
            .unwrap_or_default();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rules = spec.rules.unwrap_or_default();
        assert_eq!(rules[0].host.as_deref(), Some("api.ai.example.com"));
        let path = &rules[0].http.as_ref().unwrap().paths[0];
        assert_eq!(
            (path.path.as_deref(), path.path_type.as_str()),
            (Some("/"), "Prefix")
        );
        let service = path.backend.service.as_ref().unwrap();
        assert_eq!(service.name, "ai-api-proxy");
        assert_eq!(
            service.port.as_ref().and_then(|p| p.name.as_deref()),
            Some("http")
        );
        let tls = spec.tls.unwrap_or_default();
        assert_eq!(tls[0].secret_name.as_deref(), Some("ai-api-tls"));
        assert_eq!(tls[0].hosts, Some(vec!["api.ai.example.com".into()]));
    }

    #[test]
    fn off_means_no_ingress() {
        assert!(ingress(&load("development"), "development").is_none());
    }
}
