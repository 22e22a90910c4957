//! One test per rule: a committed environment, one field broken, the exact path and the facts.

use std::path::PathBuf;

use ai_api_proxy_config::{Duration, KeySource, Problem};

use super::{check, looks_like_secret, redact_text};
use crate::config::{Environment, Hostname, IngressHost, IngressPath, Layers, PathType, load};

fn env(name: &str) -> Environment {
    let layers = Layers {
        dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/environments")),
        env: name.into(),
        sets: Vec::new(),
    };
    match load(&layers) {
        Ok(env) => env,
        Err(e) => panic!("{name} does not load: {e}"),
    }
}

fn production() -> Environment {
    env("production")
}

fn host(s: &str) -> Hostname {
    Hostname::try_from(s.to_owned()).unwrap()
}

/// The only problem of `env`; fails listing them all otherwise.
fn only(env: &Environment) -> Problem {
    let mut problems = check(env);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.remove(0)
}

/// Asserts the single problem is at `path` and its message holds every fact.
fn assert_problem(env: &Environment, path: &str, facts: &[&str]) {
    let p = only(env);
    assert_eq!(p.path, path, "{p:?}");
    for fact in facts {
        assert!(p.message.contains(fact), "{:?} lacks {fact:?}", p.message);
    }
}

#[test]
fn committed_environments_have_no_problems() {
    for name in ["development", "staging", "production"] {
        assert_eq!(check(&env(name)), Vec::new(), "{name}");
    }
}

#[test]
fn cpu_request_above_limit() {
    let mut e = production();
    e.resources.requests.cpu = Some("2".parse().unwrap());
    assert_problem(
        &e,
        "resources.requests.cpu",
        &["`2`", "`1`", "resources.limits.cpu"],
    );
}

#[test]
fn memory_request_above_limit_across_units() {
    let mut e = production();
    e.resources.requests.memory = Some("1Gi".parse().unwrap());
    assert_problem(&e, "resources.requests.memory", &["`1Gi`", "`512Mi`"]);
}

#[test]
fn request_or_limit_alone_is_fine() {
    let mut e = production();
    e.resources.limits.cpu = None;
    e.resources.limits.memory = None;
    assert_eq!(check(&e), Vec::new());
}

#[test]
fn memory_in_millibytes_suggests_mebibytes() {
    let mut e = production();
    e.resources.limits.memory = Some("512m".parse().unwrap());
    let p = check(&e);
    assert_eq!(p[0].path, "resources.limits.memory");
    assert!(p[0].message.contains("`512Mi`"), "{p:?}");
}

#[test]
fn cpu_in_mebibytes_is_refused() {
    let mut e = production();
    e.resources.limits.cpu = Some("1Gi".parse().unwrap());
    assert_problem(&e, "resources.limits.cpu", &["`1Gi`", "`250m`"]);
}

#[test]
fn min_replicas_above_max() {
    let mut e = production();
    e.autoscaling.min_replicas = 12;
    assert_problem(
        &e,
        "autoscaling.max_replicas",
        &["got 10", "min_replicas (12)"],
    );
}

#[test]
fn min_replicas_zero() {
    let mut e = production();
    e.autoscaling.min_replicas = 0;
    assert_problem(&e, "autoscaling.min_replicas", &["got 0", "at least 1"]);
}

#[test]
fn utilization_target_out_of_range() {
    let mut e = production();
    e.autoscaling.target_cpu_utilization = Some(150);
    assert_problem(
        &e,
        "autoscaling.target_cpu_utilization",
        &["150", "1 to 100"],
    );
}

#[test]
fn utilization_target_needs_its_request() {
    let mut e = production();
    e.resources.requests.memory = None;
    assert_problem(
        &e,
        "resources.requests.memory",
        &["target_memory_utilization (80%)", "`128Mi`"],
    );
}

#[test]
fn utilization_without_request_is_fine_while_autoscaling_is_off() {
    let mut e = env("development");
    e.resources.requests.cpu = None;
    assert_eq!(check(&e), Vec::new());
}

#[test]
fn autoscaling_without_any_target() {
    let mut e = production();
    e.autoscaling.target_cpu_utilization = None;
    e.autoscaling.target_memory_utilization = None;
    assert_problem(&e, "autoscaling", &["target_cpu_utilization"]);
}

#[test]
fn scaling_behavior_bounds() {
    let mut e = production();
    e.autoscaling.behavior.scale_up.period = Duration::from_secs(0);
    e.autoscaling.behavior.scale_down.period = Duration::from_secs(3600);
    e.autoscaling.behavior.scale_down.stabilization_window = Duration::from_secs(7200);
    e.autoscaling.behavior.scale_up.max_pods = 0;
    e.autoscaling.behavior.scale_down.max_percent = 0;
    let paths: Vec<String> = check(&e).into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "autoscaling.behavior.scale_up.period",
            "autoscaling.behavior.scale_up.max_pods",
            "autoscaling.behavior.scale_down.period",
            "autoscaling.behavior.scale_down.stabilization_window",
            "autoscaling.behavior.scale_down.max_percent",
        ]
    );
}

#[test]
fn zero_replicas_without_autoscaling() {
    let mut e = env("development");
    e.replicas = 0;
    assert_problem(&e, "replicas", &["got 0", "at least 1"]);
}

#[test]
fn pdb_that_blocks_every_drain() {
    let mut e = production();
    e.disruption_budget.max_unavailable = 0;
    assert_problem(
        &e,
        "disruption_budget.max_unavailable",
        &["got 0", "drain", "at least 1"],
    );
}

#[test]
fn pdb_with_one_replica_and_max_unavailable_one_is_fine() {
    let mut e = env("staging");
    e.autoscaling.enabled = false;
    e.replicas = 1;
    e.disruption_budget.enabled = true;
    e.disruption_budget.max_unavailable = 1;
    assert_eq!(check(&e), Vec::new());
}

#[test]
fn enabled_ingress_needs_a_host() {
    let mut e = production();
    e.ingress.hosts.clear();
    e.ingress.tls.clear();
    assert_problem(&e, "ingress.hosts", &["at least one"]);
}

#[test]
fn tls_host_not_served() {
    let mut e = production();
    e.ingress.tls[0].hosts.push(host("www.ai.example.com"));
    assert_problem(
        &e,
        "ingress.tls[0].hosts[1]",
        &["`www.ai.example.com`", "api.ai.example.com"],
    );
}

#[test]
fn wildcard_tls_covers_a_served_host() {
    let mut e = production();
    e.ingress.tls[0].hosts = vec![host("*.ai.example.com")];
    assert_eq!(check(&e), Vec::new());
    e.ingress.tls[0].hosts = vec![host("*.example.com")];
    assert_problem(&e, "ingress.tls[0].hosts[0]", &["`*.example.com`"]);
}

#[test]
fn ingress_paths_are_absolute_and_hosts_unique() {
    let mut e = production();
    e.ingress.hosts[0].paths[0].path = "v1".into();
    e.ingress.hosts.push(IngressHost {
        host: host("api.ai.example.com"),
        paths: vec![IngressPath {
            path: "/".into(),
            path_type: PathType::Prefix,
        }],
    });
    let problems = check(&e);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["ingress.hosts[0].paths[0].path", "ingress.hosts[1].host"]
    );
    assert!(problems[0].message.contains("got `v1`"));
    assert!(problems[1].message.contains("ingress.hosts[0].host"));
}

#[test]
fn annotation_keys_are_qualified_names() {
    let mut e = production();
    e.ingress.annotations.insert("bad key/x".into(), "1".into());
    assert_problem(
        &e,
        "ingress.annotations.\"bad key/x\"",
        &["`bad key/x`", "prefix/name"],
    );
}

#[test]
fn nginx_timeouts_must_not_undercut_the_proxy() {
    let mut e = production();
    e.ingress.annotations.insert(
        "nginx.ingress.kubernetes.io/proxy-read-timeout".into(),
        "60".into(),
    );
    assert_problem(
        &e,
        "ingress.annotations.\"nginx.ingress.kubernetes.io/proxy-read-timeout\"",
        &["`60`", "10m", "proxy.timeouts.total", "at least 600"],
    );
}

#[test]
fn nginx_timeouts_count_upstream_overrides() {
    let mut e = production();
    let mut t = e.proxy.timeouts;
    t.total = Duration::from_secs(1200);
    e.proxy.upstreams[0].timeouts = Some(t);
    e.ingress.annotations.insert(
        "nginx.ingress.kubernetes.io/proxy-send-timeout".into(),
        "600".into(),
    );
    assert_problem(
        &e,
        "ingress.annotations.\"nginx.ingress.kubernetes.io/proxy-send-timeout\"",
        &["at least 1200"],
    );
}

#[test]
fn nginx_buffering_on_is_refused_but_other_classes_are_not_checked() {
    let mut e = production();
    e.ingress.annotations.insert(
        "nginx.ingress.kubernetes.io/proxy-buffering".into(),
        "on".into(),
    );
    assert_problem(
        &e,
        "ingress.annotations.\"nginx.ingress.kubernetes.io/proxy-buffering\"",
        &["`on`", "`off`"],
    );
    e.ingress.class_name = Some(crate::config::DnsLabel::known("traefik"));
    assert_eq!(check(&e), Vec::new());
}

#[test]
fn nginx_body_size_below_the_proxy_limit() {
    let mut e = production();
    e.ingress.annotations.insert(
        "nginx.ingress.kubernetes.io/proxy-body-size".into(),
        "1m".into(),
    );
    assert_problem(
        &e,
        "ingress.annotations.\"nginx.ingress.kubernetes.io/proxy-body-size\"",
        &["`1m`", "10485760"],
    );
}

#[test]
fn image_needs_a_tag_or_digest() {
    let mut e = production();
    e.image.tag = None;
    assert_problem(&e, "image", &["tag", "digest"]);
}

#[test]
fn image_tag_latest_and_bad_digest() {
    let mut e = production();
    e.image.tag = Some("latest".into());
    assert_problem(&e, "image.tag", &["`latest`", "0.1.0"]);
    e.image.digest = Some("sha256:abc".into());
    assert_problem(&e, "image.digest", &["`sha256:abc`", "64"]);
    e.image.digest = Some(format!("sha256:{}", "a1".repeat(32)));
    assert_eq!(check(&e), Vec::new());
}

#[test]
fn image_repository_is_lowercase_without_spaces() {
    let mut e = production();
    for bad in [
        "",
        "ghcr.io/Example/proxy",
        "ghcr.io/example/ai api",
        "ghcr.io/x/proxy:1.0",
    ] {
        e.image.repository = bad.into();
        assert_problem(&e, "image.repository", &[&format!("`{bad}`")]);
    }
    for good in [
        "nginx",
        "localhost:5000/proxy",
        "registry.example.com:443/team/ai-api-proxy",
    ] {
        e.image.repository = good.into();
        assert_eq!(check(&e), Vec::new(), "{good}");
    }
}

#[test]
fn env_key_sources_cannot_be_set_by_the_cluster() {
    let mut e = production();
    e.proxy.upstreams[0].api_key = KeySource::Env("OPENAI_API_KEY".into());
    assert_problem(
        &e,
        "proxy.upstreams[0].api_key.env",
        &["`OPENAI_API_KEY`", "secret = {"],
    );
}

#[test]
fn upstream_cidrs_are_valid_networks() {
    let mut e = production();
    e.network_policy.upstream_cidrs = vec![
        "10.0.0.0/8".into(),
        "2001:db8::/32".into(),
        "10.0.0.1/8".into(),
        "10.0.0.0".into(),
        "300.0.0.0/8".into(),
        "::/129".into(),
    ];
    let problems = check(&e);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "network_policy.upstream_cidrs[2]",
            "network_policy.upstream_cidrs[3]",
            "network_policy.upstream_cidrs[4]",
            "network_policy.upstream_cidrs[5]",
        ]
    );
    assert!(problems[0].message.contains("`10.0.0.0/8`"), "{problems:?}");
    assert!(problems[1].message.contains("`10.0.0.0`"), "{problems:?}");
}

#[test]
fn pod_security_and_spread() {
    let mut e = production();
    e.security.run_as_user = 0;
    assert_problem(&e, "security.run_as_user", &["got 0", "non-root"]);
    let mut e = production();
    e.topology_spread.max_skew = 0;
    assert_problem(&e, "topology_spread.max_skew", &["got 0"]);
}

#[test]
fn proxy_port_must_be_bindable_without_root() {
    let mut e = production();
    e.proxy.port = 80;
    assert_problem(&e, "proxy.port", &["got 80", "1024"]);
}

#[test]
fn proxy_grace_delay_zero_drops_requests() {
    let mut e = production();
    e.proxy.shutdown.grace_delay = Duration::from_secs(0);
    assert_problem(&e, "proxy.shutdown.grace_delay", &["`0s`", "`5s`"]);
}

#[test]
fn proxy_rules_are_prefixed() {
    let mut e = production();
    e.proxy.timeouts.first_byte = Duration::from_secs(900);
    assert_problem(
        &e,
        "proxy.timeouts.first_byte",
        &["timeouts.total (10m)", "15m"],
    );
}

const SECRETS: &[&str] = &[
    "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "sk-abcdefghijklmnopqrstuvwxyz0123456789",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
    "xoxb-1234567890-abcdefghijkl",
    "AKIAIOSFODNN7EXAMPLE",
    "Bearer abcdef123456",
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2hlcmU",
    "https://user:hunter22@api.example.com/v1",
    "https://api.example.com/v1?api_key=abcdef123",
    "password=hunter22",
    "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0Lz",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
];

const NOT_SECRETS: &[&str] = &[
    "https://api.holysheep.ai/v1",
    "ghcr.io/example/ai-api-proxy",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "/var/run/secrets/ai-api-proxy",
    "letsencrypt-prod",
    "claude-sonnet-4.5",
    "holysheep-api-key",
    "api.staging.ai.example.com",
    "sk-1",
    "sk-learn-classifier-for-tickets",
    "ai-api-client-keys-production-blue-2026",
    "OPENAI_API_KEY",
    "10m",
];

#[test]
fn secrets_are_recognized() {
    for s in SECRETS {
        assert!(looks_like_secret(s), "{s:?} should look like a secret");
    }
    for s in NOT_SECRETS {
        assert!(!looks_like_secret(s), "{s:?} should not look like a secret");
    }
}

#[test]
fn secret_values_are_reported_without_the_value() {
    for secret in SECRETS {
        let mut e = production();
        e.proxy.upstreams[0]
            .headers
            .insert("X-Org".into(), (*secret).into());
        let problems = check(&e);
        let p = problems
            .iter()
            .find(|p| p.path == "proxy.upstreams[0].headers.X-Org")
            .unwrap_or_else(|| panic!("{secret:?} not reported: {problems:?}"));
        assert!(p.message.contains("value not shown"), "{p:?}");
        for p in &problems {
            assert!(!p.message.contains(secret), "{p:?} repeats the secret");
        }
    }
}

#[test]
fn secret_in_a_rejected_value_is_not_repeated() {
    let mut e = production();
    let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
    e.proxy.upstreams[0].base_url = key.into();
    let problems = check(&e);
    assert!(
        problems
            .iter()
            .any(|p| p.path == "proxy.upstreams[0].base_url")
    );
    for p in &problems {
        assert!(!p.message.contains(key), "{p:?}");
    }
}

#[test]
fn redaction_keeps_the_rest_of_the_message() {
    let msg =
        "invalid value `ghp_abcdefghijklmnopqrstuvwxyz0123456789AB`: expected a DNS-1123 label";
    assert_eq!(
        redact_text(msg),
        "invalid value `(value not shown)`: expected a DNS-1123 label"
    );
    assert_eq!(
        redact_text("sk-proj-abcdefghijklmnopqrstuvwxyz012345"),
        "(value not shown)"
    );
    let toml = "12 | api_key = \"sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789\n   |  ^";
    assert!(
        !redact_text(toml).contains("sk-ant"),
        "{}",
        redact_text(toml)
    );
}

#[test]
fn proxy_auth_is_required() {
    let mut e = production();
    e.proxy.auth = None;
    assert_problem(&e, "proxy.auth", &["required", "\"anonymous\""]);
}

#[test]
fn proxy_admin_port_is_its_own_and_bindable() {
    let mut e = production();
    e.proxy.admin_port = e.proxy.port;
    assert_problem(&e, "proxy.admin_port", &["must differ from port (8080)"]);
    e.proxy.admin_port = 90;
    assert_problem(&e, "proxy.admin_port", &["got 90", "1024"]);
}

#[test]
fn proxy_body_budget_holds_the_largest_body() {
    let mut e = production();
    e.proxy.limits.body_budget_bytes = 1024;
    assert_problem(
        &e,
        "proxy.limits.body_budget_bytes",
        &["max_body_bytes (10485760)", "got 1024"],
    );
}
