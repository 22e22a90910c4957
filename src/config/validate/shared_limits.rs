//! Shared limits in a cluster: the store's password is a Secret, the NetworkPolicy lets the
//! proxy reach the store and nothing else on its port, and the fallback divisor matches the
//! replica counts the Deployment can have.

use super::traffic::{label_value_ok, parse_cidr, qualified_name_ok};
use super::{Report, key_path, rules::env_key_source};
use crate::config::{Environment, StorePeers};

/// Every rule about `proxy.shared_limits` and `network_policy.shared_limits`.
pub(super) fn shared_limits(r: &mut Report, env: &Environment) {
    let peers = &env.network_policy.shared_limits;
    let Some(shared) = &env.proxy.shared_limits else {
        r.check(peers.is_none(), "network_policy.shared_limits", || {
            "set, but `proxy.shared_limits` is not: expected no store peers without a store".into()
        });
        return;
    };
    if let Some(password) = &shared.password {
        env_key_source(r, "proxy.shared_limits.password", password);
    }
    let (low, high, what) = if env.autoscaling.enabled {
        (
            env.autoscaling.min_replicas,
            env.autoscaling.max_replicas,
            "autoscaling.min_replicas to autoscaling.max_replicas",
        )
    } else {
        (env.replicas, env.replicas, "`replicas`")
    };
    // With min above max the autoscaling rule already speaks; no range to hold this to.
    r.check(
        low > high || (low..=high).contains(&shared.replicas),
        "proxy.shared_limits.replicas",
        || {
            format!(
                "got {}: while the store is unreachable each replica enforces limit / this, so \
                 expected a replica count the Deployment can have: {what} ({low} to {high})",
                shared.replicas
            )
        },
    );
    let Some(peers) = peers else {
        r.push(
            "network_policy.shared_limits",
            "missing, but `proxy.shared_limits` is set: the NetworkPolicy would block the store; \
             expected its `namespace` and `pod_labels`, or its `cidrs`",
        );
        return;
    };
    check_peers(r, "network_policy.shared_limits", peers, "store");
}

/// The NetworkPolicy peers of a service at `at` (`what`: `store`, `collector`) name something,
/// and name it well: CIDRs, label keys and values.
pub(super) fn check_peers(r: &mut Report, at: &str, peers: &StorePeers, what: &str) {
    r.check(
        peers.namespace.is_some() || !peers.pod_labels.is_empty() || !peers.cidrs.is_empty(),
        at,
        || format!("empty: expected the {what}'s `namespace` and `pod_labels`, or its `cidrs`"),
    );
    for (i, cidr) in peers.cidrs.iter().enumerate() {
        if let Err(why) = parse_cidr(cidr) {
            r.push(format!("{at}.cidrs[{i}]"), why);
        }
    }
    for (key, value) in &peers.pod_labels {
        let path = key_path(&format!("{at}.pod_labels"), key);
        r.check(qualified_name_ok(key), &path, || {
            format!("invalid label key `{key}`: expected `name` or `prefix/name`, like `app.kubernetes.io/name`")
        });
        r.check(label_value_ok(value), &path, || {
            format!("invalid label value `{value}`: expected up to 63 letters, digits, `-`, `_` and `.`, starting and ending alphanumeric")
        });
    }
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::KeySource;

    use super::super::check;
    use crate::objects::tests::load;

    fn problems(env: &crate::config::Environment) -> Vec<String> {
        check(env).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn production_shares_its_limits_validly() {
        assert_eq!(problems(&load("production")), Vec::<String>::new());
    }

    #[test]
    fn a_store_needs_a_way_through_the_network_policy() {
        let mut env = load("production");
        env.network_policy.shared_limits = None;
        assert_eq!(
            problems(&env),
            [
                "network_policy.shared_limits: missing, but `proxy.shared_limits` is set: the \
              NetworkPolicy would block the store; expected its `namespace` and `pod_labels`, or its `cidrs`"
            ]
        );
        let mut env = load("development");
        env.network_policy.shared_limits = load("production").network_policy.shared_limits;
        assert_eq!(
            problems(&env),
            [
                "network_policy.shared_limits: set, but `proxy.shared_limits` is not: expected no store peers without a store"
            ]
        );
    }

    #[test]
    fn the_fallback_divisor_is_a_replica_count_the_deployment_can_have() {
        let mut env = load("production");
        let shared = env.proxy.shared_limits.as_mut().unwrap();
        shared.replicas = 12;
        shared.password = Some(KeySource::Env("REDIS_PASSWORD".into()));
        env.network_policy.shared_limits.as_mut().unwrap().cidrs = vec!["10.0.0.1/8".into()];
        assert_eq!(
            problems(&env),
            [
                "proxy.shared_limits.password.env: `REDIS_PASSWORD` is a variable of the proxy process, which the cluster does not set: expected a Secret reference, `{ secret = { name = \"…\", key = \"…\" } }`",
                "proxy.shared_limits.replicas: got 12: while the store is unreachable each replica enforces limit / this, so expected a replica count the Deployment can have: autoscaling.min_replicas to autoscaling.max_replicas (2 to 10)",
                "network_policy.shared_limits.cidrs[0]: `10.0.0.1/8` has host bits set: expected the network address, `10.0.0.0/8`",
            ]
        );
    }

    #[test]
    fn proxy_policy_problems_carry_the_environment_path() {
        let mut env = load("production");
        env.proxy.policies.default.models = Some(vec!["gpt-9".into()]);
        let p = problems(&env);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("proxy.policies.default.models[0]: no model named `gpt-9`"),
            "{p:?}"
        );
    }
}
