//! Traces in a cluster: the NetworkPolicy lets the proxy reach the OpenTelemetry collector of
//! `proxy.telemetry.otlp`, and nothing else on its port.

use super::Report;
use super::shared_limits::check_peers;
use crate::config::Environment;

/// Every rule about `proxy.telemetry.otlp` and `network_policy.otlp_collector`.
pub(super) fn telemetry(r: &mut Report, env: &Environment) {
    let peers = &env.network_policy.otlp_collector;
    if env.proxy.telemetry.otlp.is_none() {
        r.check(peers.is_none(), "network_policy.otlp_collector", || {
            "set, but `proxy.telemetry.otlp` is not: expected no collector peers without a collector"
                .into()
        });
        return;
    }
    let Some(peers) = peers else {
        r.push(
            "network_policy.otlp_collector",
            "missing, but `proxy.telemetry.otlp` is set: the NetworkPolicy would block the \
             collector; expected its `namespace` and `pod_labels`, or its `cidrs`",
        );
        return;
    };
    check_peers(r, "network_policy.otlp_collector", peers, "collector");
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{Duration, Otlp};

    use super::super::check;
    use crate::config::StorePeers;
    use crate::objects::tests::load;

    fn problems(env: &crate::config::Environment) -> Vec<String> {
        check(env)
            .iter()
            .map(ToString::to_string)
            .filter(|p| p.contains("otlp"))
            .collect()
    }

    #[test]
    fn a_collector_needs_its_peers_and_peers_need_a_collector() {
        let mut env = load("production");
        env.network_policy.otlp_collector = None;
        env.proxy.telemetry.otlp = Some(Otlp {
            endpoint: "http://otel-collector.observability.svc:4318".into(),
            timeout: Duration::from_secs(10),
        });
        let p = problems(&env);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("network_policy.otlp_collector: missing"),
            "{p:?}"
        );

        env.network_policy.otlp_collector = Some(StorePeers {
            cidrs: vec!["10.0.0.0/33".into()],
            ..StorePeers::default()
        });
        let p = problems(&env);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("network_policy.otlp_collector.cidrs[0]"),
            "{p:?}"
        );

        env.proxy.telemetry.otlp = None;
        let p = problems(&env);
        assert!(
            p[0].starts_with("network_policy.otlp_collector: set, but"),
            "{p:?}"
        );
    }
}
