//! Hostile and unlucky clients, driven with raw sockets through the real binary (a client
//! library would hide the attack): slow headers, idle connections, slow bodies, too many
//! connections, too many bytes of bodies, too many requests in flight.

mod common;

use std::time::Duration;

use ai_api_proxy_config::Duration as D;
use common::fake::Fake;
use common::*;

fn base(fake: &Fake) -> ai_api_proxy_config::ProxyConfig {
    config(&[("main", fake.base_url())], &[("m", &["main"])])
}

#[tokio::test]
async fn stalled_headers_get_408_and_the_connection_closed() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.limits.header_read_timeout = D::from_millis(300);
    let proxy = Proxy::start(c);

    // Half a request head, then nothing.
    let mut s = raw(&proxy).await;
    send(&mut s, b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n").await;
    let (text, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "still open: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");

    // A connection that never sends a byte is closed the same way.
    let mut s = raw(&proxy).await;
    let (text, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(closed && text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_client_timeouts_total{phase="header"}"#)
            .await,
        2.0
    );
    assert_eq!(fake.ctl.count(), 0);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_quietly() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.limits.keep_alive_timeout = D::from_millis(400);
    let proxy = Proxy::start(c);
    let mut s = raw(&proxy).await;
    let request =
        format!("GET /v1/models HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\r\n");
    send(&mut s, request.as_bytes()).await;
    let (text, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "an idle connection stays open: {text}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        !text.contains("408"),
        "an idle connection is not a slow one: {text}"
    );
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_the_connection_closed() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.limits.body_read_idle = D::from_millis(300);
    let proxy = Proxy::start(c);
    let mut s = raw(&proxy).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":"
    );
    send(&mut s, head.as_bytes()).await;
    let (text, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "still open: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_client_timeouts_total{phase="body"}"#)
            .await,
        1.0
    );
    assert_eq!(fake.ctl.count(), 0);
}

#[tokio::test]
async fn a_trickled_body_gets_408_at_the_total_limit() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.limits.body_read_idle = D::from_millis(400);
    c.limits.body_read_total = D::from_millis(800);
    let proxy = Proxy::start(c);
    let mut s = raw(&proxy).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    send(&mut s, head.as_bytes()).await;
    // One byte every 100 ms: never idle long enough, never done.
    let (reader_tx, reader_rx) = tokio::sync::oneshot::channel();
    let (mut rd, mut wr) = s.into_split();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut out)).await;
        let _ = reader_tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    for _ in 0..30 {
        use tokio::io::AsyncWriteExt;
        if wr.write_all(b" ").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = reader_rx.await.unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_are_closed() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.limits.max_connections = 3;
    let proxy = Proxy::start(c);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw(&proxy).await);
    }
    for _ in 0..100 {
        if proxy.metric("ai_proxy_open_connections").await >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut extra = raw(&proxy).await;
    let (text, closed) = read_to_close(&mut extra, Duration::from_secs(5)).await;
    assert!(closed, "{text}");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains(r#""code":"too_many_connections""#), "{text}");
    assert_eq!(
        proxy.metric("ai_proxy_connections_rejected_total").await,
        1.0
    );
    assert_eq!(proxy.metric("ai_proxy_open_connections").await, 3.0);

    // A freed slot is usable again.
    held.pop();
    for _ in 0..100 {
        if proxy.metric("ai_proxy_open_connections").await < 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = http()
        .get(proxy.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_budget_get_503_at_once() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.max_body_bytes = 64 * 1024;
    c.limits.body_budget_bytes = 100 * 1024;
    c.limits.body_read_idle = D::from_secs(5);
    let proxy = Proxy::start(c);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n{{\"model\":\"m\""
    );
    // The first body holds 64 KiB of the 100 KiB budget while it trickles in...
    let mut first = raw(&proxy).await;
    send(&mut first, head.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a second one cannot have its 64 KiB: refused at once, not queued, not buffered.
    let mut second = raw(&proxy).await;
    send(&mut second, head.as_bytes()).await;
    let (text, _) = read_to_close(&mut second, Duration::from_millis(1500)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains(r#""code":"server_overloaded""#), "{text}");
    assert_eq!(
        proxy.metric("ai_proxy_body_budget_rejected_total").await,
        1.0
    );
    // The first is unaffected, and its bytes go back to the budget when it is done.
    drop(first);
    let r = chat(&proxy)
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_in_flight_cap() {
    let fake = Fake::start().await;
    let mut c = base(&fake);
    c.rate_limit.max_in_flight = 2;
    let proxy = Proxy::start(c);
    let slow = || stream(&proxy, "?chunks=10&delay_ms=100", chat_body("m", true));
    let (a, b) = tokio::join!(slow(), slow());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let (status, body, headers) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body("m", false).to_string(),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains(r#""code":"too_many_concurrent_requests""#),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    // Another client is not affected.
    let (status, _, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some("Bearer sk-client-test-2"),
        &chat_body("m", false).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    // Once the streams end, the client may send again.
    let _ = tokio::join!(sse_events(a), sse_events(b));
    let (status, _, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body("m", false).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        proxy
            .metric("ai_proxy_client_in_flight_limited_total")
            .await,
        1.0
    );
}
