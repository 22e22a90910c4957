//! The proxy container: image, arguments, port, resources, probes, security context.

use std::collections::BTreeMap;

use ai_api_proxy_config::DEFAULT_CONFIG_PATH;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, HTTPGetAction, Probe, ResourceRequirements,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT_NAME, PORT_NAME};
use crate::config::{Environment, PullPolicy, ResourceList};

/// Name of the proxy container.
pub const CONTAINER_NAME: &str = "proxy";

/// `repository@digest` when a digest is given (it pins the bytes), else `repository:tag`.
pub fn image(env: &Environment) -> String {
    let image = &env.image;
    match (&image.digest, &image.tag) {
        (Some(digest), _) => format!("{}@{digest}", image.repository),
        (None, Some(tag)) => format!("{}:{tag}", image.repository),
        (None, None) => image.repository.clone(),
    }
}

/// The proxy container: `--config` pointing at the mounted ConfigMap, the `http` (API) and
/// `admin` ports, probes on the proxy's own endpoints on the admin port, and a restricted
/// security context. Mounts are the pod's business.
pub fn proxy_container(env: &Environment) -> Container {
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(number),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let pull_policy = match env.image.pull_policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    };
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(image(env)),
        image_pull_policy: Some(pull_policy.into()),
        args: Some(vec!["--config".into(), DEFAULT_CONFIG_PATH.into()]),
        ports: Some(vec![
            port(PORT_NAME, env.proxy.port),
            port(ADMIN_PORT_NAME, env.proxy.admin_port),
        ]),
        resources: Some(ResourceRequirements {
            requests: quantities(&env.resources.requests),
            limits: quantities(&env.resources.limits),
            ..Default::default()
        }),
        // Liveness: the process answers. Readiness: configured and not draining.
        liveness_probe: Some(probe(&env.proxy.endpoints.health, 10, 3)),
        readiness_probe: Some(probe(&env.proxy.endpoints.ready, 5, 2)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(ADMIN_PORT_NAME.into()),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

fn quantities(list: &ResourceList) -> Option<BTreeMap<String, Quantity>> {
    let map: BTreeMap<String, Quantity> = [("cpu", &list.cpu), ("memory", &list.memory)]
        .into_iter()
        .filter_map(|(name, q)| Some((name.to_owned(), Quantity(q.as_ref()?.as_str().into()))))
        .collect();
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn probes_use_the_proxy_endpoints_and_port() {
        let mut env = load("production");
        env.proxy.port = 9099;
        env.proxy.admin_port = 9199;
        env.proxy.endpoints.health = "/livez".into();
        env.proxy.endpoints.ready = "/readyz".into();
        let c = proxy_container(&env);
        let ports = c.ports.clone().unwrap_or_default();
        let named: Vec<_> = ports
            .iter()
            .map(|p| (p.name.as_deref(), p.container_port))
            .collect();
        assert_eq!(named, [(Some("http"), 9099), (Some("admin"), 9199)]);
        let get = |p: &Option<Probe>| p.as_ref().and_then(|p| p.http_get.clone());
        let live = get(&c.liveness_probe).unwrap_or_default();
        let ready = get(&c.readiness_probe).unwrap_or_default();
        assert_eq!(live.path.as_deref(), Some("/livez"));
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        for port in [live.port, ready.port] {
            assert_eq!(port, IntOrString::String("admin".into()));
        }
    }

    #[test]
    fn security_context_is_restricted() {
        let csc = proxy_container(&load("production"))
            .security_context
            .unwrap_or_default();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.run_as_non_root, Some(true));
        assert_eq!(csc.privileged, Some(false));
        assert_eq!(
            csc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".into()])
        );
    }

    #[test]
    fn runs_the_proxy_with_its_config() {
        let env = load("production");
        let c = proxy_container(&env);
        assert_eq!(
            c.args,
            Some(vec![
                "--config".into(),
                "/etc/ai-api-proxy/proxy.json".into()
            ])
        );
        assert_eq!(
            c.image.as_deref(),
            Some("ghcr.io/example/ai-api-proxy:0.1.0")
        );
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let resources = c.resources.clone().unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        assert_eq!(limits.get("memory"), Some(&Quantity("512Mi".into())));
        let requests = resources.requests.unwrap_or_default();
        assert_eq!(requests.get("cpu"), Some(&Quantity("250m".into())));
        assert!(
            c.env.is_none(),
            "secrets are files, never environment variables"
        );
    }

    #[test]
    fn digest_wins_over_the_tag() {
        let mut env = load("production");
        env.image.digest = Some(format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(
            image(&env),
            format!("ghcr.io/example/ai-api-proxy@sha256:{}", "ab".repeat(32))
        );
    }

    #[test]
    fn absent_resources_are_left_out() {
        assert_eq!(quantities(&ResourceList::default()), None);
    }
}
