//! Per-key policies (models, request and token rates, token budgets, requests in flight) and
//! the shared store (Redis or Valkey) that holds their counters across replicas.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::rules::{check_key_source, is_dns_subdomain};
use crate::{ClientAuth, Duration, KeySource, ProxyConfig};

/// What each client may do. A key with an entry in `keys` gets that policy, whole; every
/// other client (every client IP when anonymous) gets `default`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Policies {
    /// The policy of clients without their own.
    pub default: KeyPolicy,
    /// Policies by client key id (the ids of the client key file).
    pub keys: BTreeMap<String, KeyPolicy>,
}

impl Policies {
    /// No limit and no model list anywhere: nothing to enforce.
    pub fn is_empty(&self) -> bool {
        self.default == KeyPolicy::default() && self.keys.is_empty()
    }

    /// The policy in force for the client key id `id`.
    pub fn for_key(&self, id: &str) -> &KeyPolicy {
        self.keys.get(id).unwrap_or(&self.default)
    }
}

/// One client's policy. Every field is optional; an absent one means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPolicy {
    /// Models the client may use (others are answered 403); absent: every configured model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Requests per minute (a bucket that refills continuously, OpenAI's `RPM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Prompt plus completion tokens per minute (refills continuously, OpenAI's `TPM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Tokens per calendar day (UTC); then 429 `insufficient_quota` until midnight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Tokens per calendar month (UTC); then 429 `insufficient_quota` until the 1st.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
    /// Requests of this client being served at once, per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

/// Where the counters of [`Policies`] live, so every replica enforces the same limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedLimits {
    /// `host:port` of the Redis (or Valkey) server, e.g. `redis.ai-services.svc:6379`.
    pub address: String,
    /// ACL user name (Redis 6+); absent: the default user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The server's password, as a Secret reference (`{ secret = { name, key } }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<KeySource>,
    /// Prefix of every key the proxy writes, so environments can share one server.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// When the store is unreachable, each replica enforces every limit divided by this.
    pub replicas: u32,
    /// What to do while the store is unreachable.
    #[serde(default)]
    pub when_unreachable: WhenUnreachable,
    /// How much each replica takes from the store at once, and how often it settles.
    #[serde(default)]
    pub lease: Lease,
}

fn default_prefix() -> String {
    "ai-api-proxy".into()
}

/// Behaviour while the shared store cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenUnreachable {
    /// Keep serving, each replica holding its clients to limit / `replicas` (fail open).
    #[default]
    PerReplica,
    /// Refuse limited requests with 503 until the store is back (fail closed).
    Refuse,
}

/// Allowances a replica takes from the store in advance, so requests do not wait on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Lease {
    /// Share of a limit taken at once, in percent (1 to 50): the fleet can be ahead of a
    /// limit by at most this share per replica that holds an unused allowance.
    pub percent: u32,
    /// How often unused allowances are given back and token usage is settled.
    pub settle_every: Duration,
    /// Longest wait for the store before a replica switches to per-replica limits.
    pub timeout: Duration,
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            percent: 5,
            settle_every: Duration::from_millis(200),
            timeout: Duration::from_millis(250),
        }
    }
}

/// Checks `policies` and `shared_limits` against the rest of the configuration.
pub(crate) fn check(r: &mut Report, config: &ProxyConfig) {
    let models: BTreeSet<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    let policies = &config.policies;
    check_policy(r, "policies.default", &policies.default, &models);
    for (id, policy) in &policies.keys {
        let at = format!("policies.keys.{id}");
        r.check(
            is_key_id(id),
            &at,
            || format!("expected a client key id of letters, digits, `-`, `_` and `.` (at most 64), got `{id}`"),
        );
        check_policy(r, &at, policy, &models);
    }
    r.check(
        policies.keys.is_empty() || matches!(config.auth, Some(ClientAuth::ApiKeys { .. })),
        "policies.keys",
        || {
            "per-key policies need `auth.api_keys` (anonymous clients only get `policies.default`)"
                .into()
        },
    );
    if let Some(shared) = &config.shared_limits {
        check_shared(r, shared);
    }
}

fn check_policy(r: &mut Report, at: &str, p: &KeyPolicy, models: &BTreeSet<&str>) {
    if let Some(list) = &p.models {
        let known = models.iter().copied().collect::<Vec<_>>().join(", ");
        for (i, m) in list.iter().enumerate() {
            r.check(
                models.contains(m.as_str()),
                format!("{at}.models[{i}]"),
                || format!("no model named `{m}` (defined: {known})"),
            );
        }
    }
    for (key, value) in [
        ("requests_per_minute", p.requests_per_minute),
        ("tokens_per_minute", p.tokens_per_minute),
        ("tokens_per_day", p.tokens_per_day),
        ("tokens_per_month", p.tokens_per_month),
        ("max_in_flight", p.max_in_flight.map(u64::from)),
    ] {
        r.check(
            value.is_none_or(|v| (1..=MAX_LIMIT).contains(&v)),
            format!("{at}.{key}"),
            || {
                format!(
                    "must be between 1 and {MAX_LIMIT} (leave it out for no limit), got {}",
                    value.unwrap_or_default()
                )
            },
        );
    }
    if let (Some(day), Some(month)) = (p.tokens_per_day, p.tokens_per_month) {
        r.check(day <= month, format!("{at}.tokens_per_day"), || {
            format!("must not exceed {at}.tokens_per_month ({month}), got {day}")
        });
    }
}

/// Limits above this are typos (and stay far from overflowing the store's 64-bit counters).
const MAX_LIMIT: u64 = 1 << 50;

fn check_shared(r: &mut Report, s: &SharedLimits) {
    r.check(
        host_port_ok(&s.address),
        "shared_limits.address",
        || format!("expected `host:port` of a Redis or Valkey server, like `redis.ai-services.svc:6379`, got `{}`", s.address),
    );
    if let Some(user) = &s.username {
        r.check(
            !user.is_empty() && !user.contains(|c: char| c.is_whitespace() || c.is_control()),
            "shared_limits.username",
            || "expected a user name without spaces".into(),
        );
    }
    if let Some(password) = &s.password {
        check_key_source(r, "shared_limits.password", password);
    }
    r.check(is_key_id(&s.key_prefix), "shared_limits.key_prefix", || {
        format!(
            "expected letters, digits, `-`, `_` and `.` (at most 64), got `{}`",
            s.key_prefix
        )
    });
    r.check(
        (1..=1000).contains(&s.replicas),
        "shared_limits.replicas",
        || format!("must be between 1 and 1000, got {}", s.replicas),
    );
    let l = &s.lease;
    r.check(
        (1..=50).contains(&l.percent),
        "shared_limits.lease.percent",
        || format!("must be between 1 and 50, got {}", l.percent),
    );
    let ms = |d: Duration| d.get().as_millis();
    r.check(
        (10..=10_000).contains(&ms(l.settle_every)),
        "shared_limits.lease.settle_every",
        || format!("must be between 10ms and 10s, got {}", l.settle_every),
    );
    r.check(
        (1..=5_000).contains(&ms(l.timeout)),
        "shared_limits.lease.timeout",
        || format!("must be between 1ms and 5s, got {}", l.timeout),
    );
}

/// Client key ids that policies may name: they become metric labels and store keys.
fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `host:port` with a DNS name or IPv4 address and a port.
fn host_port_ok(address: &str) -> bool {
    address.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok_and(|p| p > 0)
            && (is_dns_subdomain(host)
                || host.parse::<std::net::Ipv4Addr>().is_ok()
                || host == "localhost")
    })
}

impl SharedLimits {
    /// The host and port of [`SharedLimits::address`], for NetworkPolicy egress and clients.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        Some((host, port.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelRoute, SecretRef, Upstream, UpstreamKind};

    fn config() -> ProxyConfig {
        ProxyConfig {
            auth: Some(ClientAuth::ApiKeys {
                keys: KeySource::Env("KEYS".into()),
            }),
            upstreams: vec![Upstream {
                name: "main".into(),
                base_url: "https://api.example.com/v1".into(),
                api_key: KeySource::Env("KEY".into()),
                headers: BTreeMap::new(),
                timeouts: None,
                organization: None,
                project: None,
                tls: None,
                kind: UpstreamKind::Openai,
            }],
            models: vec![ModelRoute {
                name: "gpt-4.1".into(),
                upstreams: vec!["main".into()],
                on_stream_failure: Default::default(),
            }],
            ..ProxyConfig::default()
        }
    }

    fn problems(c: &ProxyConfig) -> Vec<String> {
        c.validate()
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn policies_name_the_key_path_of_each_problem() {
        let mut c = config();
        c.policies.default.requests_per_minute = Some(0);
        c.policies.keys.insert(
            "team-a".into(),
            KeyPolicy {
                models: Some(vec!["gpt-4.1".into(), "gpt-5".into()]),
                tokens_per_day: Some(2_000),
                tokens_per_month: Some(1_000),
                ..KeyPolicy::default()
            },
        );
        c.policies
            .keys
            .insert("bad id".into(), KeyPolicy::default());
        assert_eq!(
            problems(&c),
            [
                "policies.default.requests_per_minute: must be between 1 and 1125899906842624 (leave it out for no limit), got 0",
                "policies.keys.bad id: expected a client key id of letters, digits, `-`, `_` and `.` (at most 64), got `bad id`",
                "policies.keys.team-a.models[1]: no model named `gpt-5` (defined: gpt-4.1)",
                "policies.keys.team-a.tokens_per_day: must not exceed policies.keys.team-a.tokens_per_month (1000), got 2000",
            ]
        );
    }

    #[test]
    fn per_key_policies_need_keys() {
        let mut c = config();
        c.auth = Some(ClientAuth::Anonymous);
        c.policies
            .keys
            .insert("team-a".into(), KeyPolicy::default());
        assert_eq!(
            problems(&c),
            [
                "policies.keys: per-key policies need `auth.api_keys` (anonymous clients only get `policies.default`)"
            ]
        );
    }

    #[test]
    fn shared_limits_are_checked_and_their_secret_mounted() {
        let mut c = config();
        let password = SecretRef {
            name: "redis".into(),
            key: "password".into(),
        };
        c.shared_limits = Some(SharedLimits {
            address: "redis.ai-services.svc".into(),
            username: None,
            password: Some(KeySource::Secret(password.clone())),
            key_prefix: "ai-api-proxy".into(),
            replicas: 0,
            when_unreachable: WhenUnreachable::Refuse,
            lease: Lease {
                percent: 80,
                ..Lease::default()
            },
        });
        assert_eq!(
            problems(&c),
            [
                "shared_limits.address: expected `host:port` of a Redis or Valkey server, like `redis.ai-services.svc:6379`, got `redis.ai-services.svc`",
                "shared_limits.replicas: must be between 1 and 1000, got 0",
                "shared_limits.lease.percent: must be between 1 and 50, got 80",
            ]
        );
        assert_eq!(c.secret_refs(), [&password]);
    }

    #[test]
    fn unused_sections_stay_out_of_the_rendered_file() {
        let c = config();
        assert!(!c.to_json().contains("policies"));
        assert!(!c.to_json().contains("shared_limits"));
        let mut c = config();
        c.policies.default.tokens_per_day = Some(5);
        let back = ProxyConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }
}
