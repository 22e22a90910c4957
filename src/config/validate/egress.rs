//! Egress in a cluster: the egress proxy's password is a Secret, and the NetworkPolicy lets the
//! proxy reach the egress proxy (where it runs) whenever one is set.

use super::shared_limits::check_peers;
use super::{Report, rules::env_key_source};
use crate::config::Environment;

/// Every rule about `proxy.egress` and `network_policy.egress_proxy`.
pub(super) fn egress(r: &mut Report, env: &Environment) {
    let egress = env.proxy.egress.as_ref();
    if let Some(auth) = egress.and_then(|e| e.basic_auth.as_ref()) {
        env_key_source(r, "proxy.egress.basic_auth.password", &auth.password);
    }
    let peers = &env.network_policy.egress_proxy;
    let Some(_) = egress.and_then(|e| e.https_proxy.as_ref()) else {
        r.check(peers.is_none(), "network_policy.egress_proxy", || {
            "set, but `proxy.egress.https_proxy` is not: expected no egress proxy peers without \
             an egress proxy"
                .into()
        });
        return;
    };
    let Some(peers) = peers else {
        r.push(
            "network_policy.egress_proxy",
            "missing, but `proxy.egress.https_proxy` is set: the NetworkPolicy would block the \
             egress proxy; expected its `namespace` and `pod_labels`, or its `cidrs`",
        );
        return;
    };
    check_peers(
        r,
        "network_policy.egress_proxy",
        peers,
        "the egress proxy's",
    );
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{Egress, KeySource, ProxyBasicAuth};

    use super::super::check;
    use crate::config::StorePeers;
    use crate::objects::tests::load;

    fn problems(env: &crate::config::Environment) -> Vec<String> {
        check(env).iter().map(ToString::to_string).collect()
    }

    fn with_proxy() -> crate::config::Environment {
        let mut env = load("production");
        env.proxy.egress = Some(Egress {
            https_proxy: Some("http://egress.corp.internal:3128".into()),
            no_proxy: vec![],
            basic_auth: Some(ProxyBasicAuth {
                username: "ai-proxy".into(),
                password: KeySource::Env("EGRESS_PASSWORD".into()),
            }),
        });
        env
    }

    #[test]
    fn an_egress_proxy_needs_a_way_through_the_network_policy_and_a_secret() {
        let env = with_proxy();
        assert_eq!(
            problems(&env),
            [
                "proxy.egress.basic_auth.password.env: `EGRESS_PASSWORD` is a variable of the proxy process, which the cluster does not set: expected a Secret reference, `{ secret = { name = \"…\", key = \"…\" } }`",
                "network_policy.egress_proxy: missing, but `proxy.egress.https_proxy` is set: the NetworkPolicy would block the egress proxy; expected its `namespace` and `pod_labels`, or its `cidrs`",
            ]
        );
        let mut env = with_proxy();
        env.network_policy.egress_proxy = Some(StorePeers {
            cidrs: vec!["10.9.0.1/16".into()],
            ..StorePeers::default()
        });
        env.proxy.egress = env.proxy.egress.map(|e| Egress {
            basic_auth: None,
            ..e
        });
        assert_eq!(
            problems(&env),
            [
                "network_policy.egress_proxy.cidrs[0]: `10.9.0.1/16` has host bits set: expected the network address, `10.9.0.0/16`"
            ]
        );
    }

    #[test]
    fn egress_proxy_peers_without_a_proxy_are_refused() {
        let mut env = load("production");
        env.network_policy.egress_proxy = Some(StorePeers::default());
        assert_eq!(
            problems(&env),
            [
                "network_policy.egress_proxy: set, but `proxy.egress.https_proxy` is not: expected no egress proxy peers without an egress proxy"
            ]
        );
    }
}
