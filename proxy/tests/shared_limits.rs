//! Per-key policies held across replicas: two real proxy processes share one real
//! `redis-server` (skipped, saying why, where it is not installed). The upstream is the
//! stand-in of `common/fake.rs`.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test"
)]

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use ai_api_proxy_config::{
    KeyPolicy, KeySource, Lease, ProxyConfig, SharedLimits, WhenUnreachable,
};
use common::fake::Fake;
use common::{Proxy, TempDir, post_raw};
use redis_server::{PASSWORD, RedisServer};

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const AUTH: &str = "Bearer sk-client-test-1";

fn limited(
    upstream: &Fake,
    redis: &RedisServer,
    policy: KeyPolicy,
    when_unreachable: WhenUnreachable,
) -> ProxyConfig {
    let mut c = common::config(
        &[("main", upstream.base_url())],
        &[("gpt-4o-mini", &["main"])],
    );
    c.policies.default = policy;
    c.shared_limits = Some(SharedLimits {
        address: redis.address(),
        username: None,
        password: Some(KeySource::Env("TEST_REDIS_PASSWORD".into())),
        key_prefix: "e2e".into(),
        replicas: 2,
        when_unreachable,
        lease: Lease {
            settle_every: ai_api_proxy_config::Duration::from_millis(50),
            ..Lease::default()
        },
    });
    c
}

/// The proxy binary with the store's password in its environment.
fn start(mut config: ProxyConfig) -> Proxy {
    let dir = TempDir::new();
    config.secrets_dir = dir.0.join("secrets");
    common::write_secrets(&config, &config.secrets_dir);
    let path = dir.0.join("proxy.json");
    std::fs::write(&path, config.to_json()).unwrap();
    Proxy::start_file(&path, dir, &[("TEST_REDIS_PASSWORD", PASSWORD)])
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn two_proxies_hold_one_client_to_its_limit_together() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = Fake::start().await;
    let policy = KeyPolicy {
        requests_per_minute: Some(30),
        ..KeyPolicy::default()
    };
    let proxies = [
        start(limited(
            &upstream,
            &redis,
            policy.clone(),
            WhenUnreachable::PerReplica,
        )),
        start(limited(
            &upstream,
            &redis,
            policy,
            WhenUnreachable::PerReplica,
        )),
    ];
    let started = Instant::now();
    let mut served = [0; 2];
    let mut refused = None;
    for i in 0..70 {
        let (status, body, headers) =
            post_raw(&proxies[i % 2], "/v1/chat/completions", Some(AUTH), CHAT).await;
        match status {
            200 => {
                served[i % 2] += 1;
                assert_eq!(headers["x-ratelimit-limit-requests"], "30");
                assert!(headers.contains_key("x-ratelimit-remaining-requests"));
                assert!(headers.contains_key("x-ratelimit-reset-requests"));
            }
            429 => refused = Some((body, headers)),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // 30 a minute, refilling one every 2 s; each proxy may hold one request's lease unused.
    let refill = (started.elapsed().as_secs() / 2) as i32 + 1;
    let total = served[0] + served[1];
    assert!(
        (28..=30 + refill).contains(&total),
        "served {served:?}, limit 30 across both"
    );
    assert!(
        served[0] >= 10 && served[1] >= 10,
        "both proxies served: {served:?}"
    );
    let (body, headers) = refused.expect("requests past the limit are refused");
    assert_eq!(code(&body), "rate_limit_exceeded");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["x-ratelimit-limit-requests"], "30");
    assert_eq!(
        upstream.ctl.count(),
        total as usize,
        "refused requests never reach the upstream"
    );
    for proxy in &proxies {
        let degraded = proxy.metric("ai_proxy_shared_limits_degraded ").await;
        assert_eq!(degraded, 0.0, "counted in the store, not each alone");
    }
    assert_eq!(redis.cli(&["EXISTS", "e2e:{team-a}:rpm"]), "1");
}

#[tokio::test]
async fn a_budget_spent_on_one_proxy_is_spent_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = Fake::start().await;
    let policy = KeyPolicy {
        tokens_per_day: Some(100),
        ..KeyPolicy::default()
    };
    let a = start(limited(
        &upstream,
        &redis,
        policy.clone(),
        WhenUnreachable::PerReplica,
    ));
    let b = start(limited(
        &upstream,
        &redis,
        policy,
        WhenUnreachable::PerReplica,
    ));
    let mut served = 0;
    let mut last = (0, String::new());
    for _ in 0..30 {
        let (status, body, _) = post_raw(&a, "/v1/chat/completions", Some(AUTH), CHAT).await;
        if status != 200 {
            last = (status, body);
            break;
        }
        served += 1;
    }
    // Each answer reports 15 tokens: the budget of 100 lasts 7 requests, maybe 8.
    assert!(
        (6..=8).contains(&served),
        "{served} served on a budget of 100 tokens"
    );
    assert_eq!(
        (last.0, code(&last.1)),
        (429, "insufficient_quota".to_owned()),
        "{}",
        last.1
    );
    let (status, body, _) = post_raw(&b, "/v1/chat/completions", Some(AUTH), CHAT).await;
    assert_eq!(
        (status, code(&body)),
        (429, "insufficient_quota".to_owned()),
        "{body}"
    );
    let logged = a.wait_log(|l| l["status"] == 200).await;
    assert_eq!(logged["prompt_tokens"], 9);
}

#[tokio::test]
async fn a_stream_is_metered_though_the_client_did_not_ask() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = Fake::start().await;
    let policy = KeyPolicy {
        tokens_per_minute: Some(10_000),
        ..KeyPolicy::default()
    };
    let proxy = start(limited(
        &upstream,
        &redis,
        policy,
        WhenUnreachable::PerReplica,
    ));
    let body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, text, _) =
        post_raw(&proxy, "/v1/chat/completions?chunks=3", Some(AUTH), body).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        !text.contains("usage"),
        "the client did not ask for usage: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(
        text.matches("data: ").count(),
        5,
        "3 chunks, the final one, [DONE]: {text}"
    );
    let sent: serde_json::Value = serde_json::from_slice(&upstream.ctl.last().body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let logged = proxy.wait_log(|l| l["status"] == 200).await;
    assert_eq!(
        (
            logged["prompt_tokens"].clone(),
            logged["completion_tokens"].clone()
        ),
        (7.into(), 3.into())
    );
    let prompt = r#"ai_proxy_tokens_total{client="team-a",model="gpt-4o-mini",kind="prompt"}"#;
    assert_eq!(proxy.metric(prompt).await, 7.0);
}

#[tokio::test]
async fn redis_killed_then_restarted_mid_run() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = Fake::start().await;
    let policy = KeyPolicy {
        requests_per_minute: Some(1000),
        ..KeyPolicy::default()
    };
    let open = start(limited(
        &upstream,
        &redis,
        policy.clone(),
        WhenUnreachable::PerReplica,
    ));
    let closed = start(limited(&upstream, &redis, policy, WhenUnreachable::Refuse));
    for proxy in [&open, &closed] {
        let (status, body, _) = post_raw(proxy, "/v1/chat/completions", Some(AUTH), CHAT).await;
        assert_eq!(status, 200, "{body}");
    }
    redis.kill();
    for _ in 0..80 {
        let (status, body, _) = post_raw(&open, "/v1/chat/completions", Some(AUTH), CHAT).await;
        assert_eq!(
            status, 200,
            "fail-open keeps serving within its share: {body}"
        );
    }
    assert_eq!(open.metric("ai_proxy_shared_limits_degraded ").await, 1.0);
    let warnings = open
        .all_output()
        .matches("shared limits store unreachable")
        .count();
    assert_eq!(warnings, 1, "logged once");
    let mut refused = None;
    for _ in 0..80 {
        let (status, body, _) = post_raw(&closed, "/v1/chat/completions", Some(AUTH), CHAT).await;
        if status != 200 {
            refused = Some((status, code(&body)));
            break;
        }
    }
    assert_eq!(
        refused,
        Some((503, "rate_limiter_unavailable".to_owned())),
        "fail-closed refuses"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open.metric("ai_proxy_shared_limits_degraded ").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the store is back but the proxy did not notice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open.all_output()
            .contains("shared limits store reachable again")
    );
    for _ in 0..60 {
        let (status, _, _) = post_raw(&open, "/v1/chat/completions", Some(AUTH), CHAT).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        redis.cli(&["EXISTS", "e2e:{team-a}:rpm"]),
        "1",
        "counting in the store again"
    );
}
