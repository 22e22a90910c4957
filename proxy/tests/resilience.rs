//! Failure handling through the real binary: 502, 504, retries with backoff and
//! `Retry-After`, fallback to the next upstream, circuit breaker open and recovery.

mod common;

use std::time::{Duration, Instant};

use ai_api_proxy_config::Duration as D;
use common::fake::{Behaviour, Fake, dead_url};
use common::*;

/// A plain chat completion of model `m`: status, body, headers.
async fn ask(proxy: &Proxy) -> (u16, String, reqwest::header::HeaderMap) {
    answer(chat(proxy).json(&chat_body("m", false))).await
}

#[tokio::test]
async fn upstream_down_is_502() {
    let proxy = Proxy::start(config(&[("main", dead_url().await)], &[("m", &["main"])]));
    let (s, b, _) = ask(&proxy).await;
    assert_eq!(s, 502);
    assert_eq!(
        b,
        r#"{"error":{"message":"The upstream service could not be reached.","type":"server_error","param":null,"code":"bad_gateway"}}"#
    );
    // Connect errors are retried: 2 retries on the one upstream.
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_upstream_retries_total{upstream="main"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn slow_upstream_is_504_and_not_retried() {
    let fake = Fake::start().await;
    fake.ctl
        .set_default(Behaviour::Slow(Duration::from_secs(3)));
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let t = Instant::now();
    let (s, b, _) = ask(&proxy).await;
    assert_eq!(s, 504);
    assert_eq!(
        b,
        r#"{"error":{"message":"The upstream service did not answer in time.","type":"server_error","param":null,"code":"upstream_timeout"}}"#
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "answered only after the upstream"
    );
    assert_eq!(fake.ctl.count(), 1);
}

#[tokio::test]
async fn retries_then_succeeds() {
    let fake = Fake::start().await;
    fake.ctl
        .script([Behaviour::Status(503, None), Behaviour::Status(502, None)]);
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let (s, _, _) = ask(&proxy).await;
    assert_eq!(s, 200);
    assert_eq!(fake.ctl.count(), 3);
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_upstream_retries_total{upstream="main"}"#)
            .await,
        2.0
    );
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["attempts"], 3);
}

#[tokio::test]
async fn honours_upstream_retry_after() {
    let fake = Fake::start().await;
    fake.ctl.script([Behaviour::Status(429, Some(1))]);
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.retry.max_backoff = D::from_secs(2);
    let proxy = Proxy::start(c);
    let t = Instant::now();
    let (s, _, _) = ask(&proxy).await;
    assert_eq!(s, 200);
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After"
    );
    assert_eq!(fake.ctl.count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_max_backoff_is_passed_to_the_client() {
    let fake = Fake::start().await;
    fake.ctl.script([Behaviour::Status(429, Some(30))]);
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let (s, b, h) = ask(&proxy).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "30");
    assert!(b.contains("upstream says 429"), "{b}");
    assert_eq!(fake.ctl.count(), 1);
}

#[tokio::test]
async fn falls_back_to_the_next_upstream() {
    let primary = Fake::start().await;
    let secondary = Fake::start().await;
    primary.ctl.set_default(Behaviour::Status(503, None));
    let proxy = Proxy::start(config(
        &[
            ("primary", primary.base_url()),
            ("secondary", secondary.base_url()),
        ],
        &[("m", &["primary", "secondary"])],
    ));
    let (s, _, _) = ask(&proxy).await;
    assert_eq!(s, 200);
    assert_eq!(
        primary.ctl.count(),
        3,
        "bounded retries on the first upstream"
    );
    assert_eq!(secondary.ctl.count(), 1);
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["upstream"], "secondary");

    // And when the first one is not even listening.
    let proxy = Proxy::start(config(
        &[
            ("primary", dead_url().await),
            ("secondary", secondary.base_url()),
        ],
        &[("m", &["primary", "secondary"])],
    ));
    assert_eq!(ask(&proxy).await.0, 200);
    assert_eq!(secondary.ctl.count(), 2);
}

#[tokio::test]
async fn circuit_breaker_opens_then_recovers() {
    let flaky = Fake::start().await;
    let backup = Fake::start().await;
    flaky.ctl.set_default(Behaviour::Status(500, None));
    let mut c = config(
        &[("flaky", flaky.base_url()), ("backup", backup.base_url())],
        &[("m", &["flaky", "backup"])],
    );
    c.retry.max_attempts = 1;
    c.circuit_breaker.failure_threshold = 3;
    c.circuit_breaker.open_for = D::from_millis(400);
    let proxy = Proxy::start(c);
    let gauge = r#"ai_proxy_circuit_breaker_state{upstream="flaky"}"#;

    // 500 is not retried but counts as a failure; the client gets the upstream's answer.
    for _ in 0..3 {
        assert_eq!(ask(&proxy).await.0, 500);
    }
    assert_eq!(flaky.ctl.count(), 3);
    assert_eq!(proxy.metric(gauge).await, 1.0, "open after 3 failures");

    // Open: the flaky upstream is skipped, the backup answers.
    assert_eq!(ask(&proxy).await.0, 200);
    assert_eq!(flaky.ctl.count(), 3);
    assert_eq!(backup.ctl.count(), 1);

    // After open_for, one probe goes through; it succeeds and closes the breaker.
    flaky.ctl.set_default(Behaviour::Ok);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ask(&proxy).await.0, 200);
    assert_eq!(flaky.ctl.count(), 4);
    assert_eq!(proxy.metric(gauge).await, 0.0, "closed again");
}

#[tokio::test]
async fn all_breakers_open_is_503_with_retry_after() {
    let fake = Fake::start().await;
    fake.ctl.set_default(Behaviour::Status(502, None));
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.circuit_breaker.failure_threshold = 2;
    c.circuit_breaker.open_for = D::from_secs(5);
    let proxy = Proxy::start(c);
    let (s, _, _) = ask(&proxy).await;
    assert_eq!(s, 502, "the upstream's own 502 after retries");
    let (s, b, h) = ask(&proxy).await;
    assert_eq!(s, 503);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(b.contains(r#""code":"upstream_unavailable""#), "{b}");
}

#[tokio::test]
async fn an_upstream_429_is_an_answer_not_a_failure() {
    let busy = Fake::start().await;
    // 500, 429, 500, 429: no two failures in a row, because a 429 proves the upstream works.
    busy.ctl.script([
        Behaviour::Status(500, None),
        Behaviour::Status(429, Some(0)),
        Behaviour::Status(500, None),
        Behaviour::Status(429, Some(0)),
    ]);
    let mut c = config(&[("busy", busy.base_url())], &[("m", &["busy"])]);
    c.retry.max_attempts = 1;
    c.circuit_breaker.failure_threshold = 2;
    c.circuit_breaker.open_for = D::from_secs(30);
    let proxy = Proxy::start(c);

    for want in [500, 429, 500, 429, 200] {
        assert_eq!(ask(&proxy).await.0, want);
    }
    assert_eq!(
        busy.ctl.count(),
        5,
        "every request still reached the upstream"
    );
    let gauge = r#"ai_proxy_circuit_breaker_state{upstream="busy"}"#;
    assert_eq!(proxy.metric(gauge).await, 0.0, "still closed");
}
