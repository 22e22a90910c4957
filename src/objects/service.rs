//! The Service in front of the proxy pods: `env.service.port` → the container's `http` port.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{PORT_NAME, labels};
use crate::config::{Environment, ServiceType};

/// The Service, selecting the pods by their stable labels only.
pub fn service(env: &Environment, env_name: &str) -> Service {
    let kind = match env.service.kind {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata: labels::metadata(env, env_name),
        spec: Some(ServiceSpec {
            type_: Some(kind.into()),
            selector: Some(labels::selector(env, env_name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: i32::from(env.service.port.get()),
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn forwards_the_service_port_to_the_named_container_port() {
        let env = load("production");
        let spec = service(&env, "production").spec.unwrap_or_default();
        let ports = spec.ports.unwrap_or_default();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, i32::from(env.service.port.get()));
        assert_eq!(
            ports[0].target_port,
            Some(IntOrString::String("http".into()))
        );
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector, Some(labels::selector(&env, "production")));
    }
}
