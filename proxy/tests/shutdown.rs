//! Graceful shutdown through the real binary: SIGTERM with a stream in flight.

mod common;

use std::time::Duration;

use common::fake::Fake;
use common::*;

#[tokio::test]
async fn sigterm_lets_the_stream_in_flight_finish_then_exits_0() {
    let fake = Fake::start().await;
    let mut proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let r = http()
        .post(proxy.url("/v1/chat/completions?chunks=8&delay_ms=100"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat_body("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reader = tokio::spawn(sse_events(r));
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.sigterm();
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Within the grace delay: new connections are still taken, and readiness says 503.
    let ready = http().get(proxy.admin_url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), r#"{"status":"draining"}"#);
    let health = http().get(proxy.admin_url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let (events, error) = reader.await.unwrap();
    assert_eq!(error, None);
    let datas: Vec<_> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(datas.len(), 10, "{datas:?}");
    assert_eq!(datas.last(), Some(&"[DONE]"));

    assert_eq!(proxy.wait_exit(Duration::from_secs(5)), Some(0));
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["complete"], true);
}

#[tokio::test]
async fn drain_deadline_cuts_streams_that_do_not_end() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.shutdown.grace_delay = ai_api_proxy_config::Duration::from_millis(100);
    c.shutdown.drain_timeout = ai_api_proxy_config::Duration::from_millis(300);
    c.timeouts.idle = ai_api_proxy_config::Duration::from_secs(5);
    let mut proxy = Proxy::start(c);
    let r = http()
        .post(proxy.url("/v1/chat/completions?chunks=100&delay_ms=100"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat_body("m", true))
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(sse_events(r));
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.sigterm();
    assert_eq!(proxy.wait_exit(Duration::from_secs(3)), Some(0));
    let (events, _) = reader.await.unwrap();
    assert!(events.len() < 100, "the stream was cut at the deadline");
    // ...with an error event the SDKs raise, not a silent truncation.
    let (_, last) = events.last().unwrap();
    let error: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["error"]["code"], "server_shutting_down", "{last}");
}
