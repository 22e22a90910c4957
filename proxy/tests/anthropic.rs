//! Anthropic's Messages API through the real binary with a raw HTTP client, where an SDK
//! would hide the bytes: Anthropic's error shape from every layer, its rate-limit headers,
//! streams relayed as they are (and metered) or translated, broken streams ending with
//! Anthropic's error event, count_tokens both ways, and upstream errors in the client's shape.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup must fail the test"
)]

mod common;

use ai_api_proxy_config::{KeyPolicy, UpstreamKind};
use common::fake::anthropic::{CACHE_READ, INPUT_TOKENS};
use common::fake::{Behaviour, Fake};
use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};

fn proxy_for(kind: UpstreamKind, base_url: String, policy: Option<KeyPolicy>) -> Proxy {
    let mut c = config(
        &[("up", base_url)],
        &[("model-a", &["up"]), ("model-b", &["up"])],
    );
    c.upstreams[0].kind = kind;
    if let Some(p) = policy {
        c.policies.default = p;
    }
    Proxy::start(c)
}

fn message(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 32, "stream": stream,
        "messages": [{"role": "user", "content": "a secret prompt"}]})
}

/// POSTs to `path` with Anthropic's key header; status, headers and body.
async fn post(
    proxy: &Proxy,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut rb = http()
        .post(proxy.url(path))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body.to_owned());
    if let Some(k) = key {
        rb = rb.header("x-api-key", k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// `(event name, data)` of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (
                name.to_owned(),
                serde_json::from_str(data).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn error_of(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!(v["type"], "error", "{body}");
    (
        v["error"]["type"].as_str().unwrap().to_owned(),
        v["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_refusal_on_messages_routes_has_anthropics_shape() {
    let up = Fake::start_anthropic().await;
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url(), None);
    let body = message("model-a", false).to_string();
    let (status, _, text) = post(&proxy, "/v1/messages", None, &body).await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (401, "authentication_error")
    );
    let (status, _, text) = post(&proxy, "/v1/messages", Some("sk-wrong"), &body).await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (401, "authentication_error")
    );
    let (status, _, text) = post(
        &proxy,
        "/v1/messages",
        Some(CLIENT_KEY),
        &message("nope", false).to_string(),
    )
    .await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (404, "not_found_error")
    );
    let (status, _, text) = post(&proxy, "/v1/messages", Some(CLIENT_KEY), "{\"model\":").await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (400, "invalid_request_error")
    );
    let r = http()
        .get(proxy.url("/v1/messages"))
        .header("x-api-key", CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(
        error_of(&r.text().await.unwrap()).0,
        "invalid_request_error"
    );
    // OpenAI's routes keep OpenAI's shape.
    let (status, text, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        None,
        &chat_body("model-a", false).to_string(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["code"],
        "missing_api_key"
    );
    assert_eq!(up.ctl.count(), 0, "nothing refused reached the upstream");
    assert!(!proxy.all_output().contains("a secret prompt"));
}

#[tokio::test]
async fn policies_answer_with_anthropics_rate_limit_headers() {
    let up = Fake::start_anthropic().await;
    let policy = KeyPolicy {
        models: Some(vec!["model-a".into()]),
        requests_per_minute: Some(2),
        ..Default::default()
    };
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url(), Some(policy));
    let body = message("model-a", false).to_string();
    let (status, headers, _) = post(&proxy, "/v1/messages", Some(CLIENT_KEY), &body).await;
    assert_eq!(status, 200);
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "2");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "1");
    let reset = headers["anthropic-ratelimit-requests-reset"]
        .to_str()
        .unwrap();
    assert!(humantime::parse_rfc3339(reset).is_ok(), "{reset}");
    assert!(headers.get("x-ratelimit-limit-requests").is_none());
    post(&proxy, "/v1/messages", Some(CLIENT_KEY), &body).await;
    let (status, headers, text) = post(&proxy, "/v1/messages", Some(CLIENT_KEY), &body).await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (429, "rate_limit_error")
    );
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
    let (status, _, text) = post(
        &proxy,
        "/v1/messages",
        Some(CLIENT_KEY),
        &message("model-b", false).to_string(),
    )
    .await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (403, "permission_error")
    );
    assert_eq!(up.ctl.count(), 2);
}

#[tokio::test]
async fn a_native_stream_is_relayed_as_it_is_and_metered() {
    let up = Fake::start_anthropic().await;
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url(), None);
    let r = http()
        .post(proxy.url("/v1/messages?chunks=6&delay_ms=100"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "some-beta-2025")
        .json(&message("model-a", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"event: message_start\n"));
    // Relayed unbuffered: the first event is here while the upstream is still streaming.
    assert_eq!(up.ctl.finished.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut all = first.to_vec();
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let evs = events(std::str::from_utf8(&all).unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let seen = up.ctl.last();
    assert_eq!(seen.headers["anthropic-beta"], "some-beta-2025");
    assert_eq!(seen.headers["x-api-key"], UPSTREAM_KEY);
    let tokens = |kind: &'static str| {
        let proxy = &proxy;
        async move {
            proxy
                .metric(&format!(
                    r#"ai_proxy_tokens_total{{client="team-a",model="model-a",kind="{kind}"}}"#
                ))
                .await
        }
    };
    assert_eq!(tokens("prompt").await, (INPUT_TOKENS + CACHE_READ) as f64);
    assert_eq!(tokens("completion").await, 6.0);
}

#[tokio::test]
async fn broken_streams_end_with_anthropics_error_event() {
    for kind in [UpstreamKind::Anthropic, UpstreamKind::Openai] {
        let up = match kind {
            UpstreamKind::Anthropic => Fake::start_anthropic().await,
            UpstreamKind::Openai => Fake::start().await,
        };
        up.ctl.script([Behaviour::ResetAfter(4)]);
        let proxy = proxy_for(kind, up.base_url(), None);
        let r = http()
            .post(proxy.url("/v1/messages?chunks=6&delay_ms=10"))
            .header("x-api-key", CLIENT_KEY)
            .json(&message("model-a", true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind:?}");
        let text = r.text().await.unwrap();
        let evs = events(&text);
        assert_eq!(evs[0].0, "message_start", "{kind:?}: {text}");
        let (name, data) = evs.last().unwrap();
        assert_eq!(name, "error", "{kind:?}: {text}");
        assert_eq!(data["type"], "error");
        assert_eq!(data["error"]["type"], "api_error");
        assert_eq!(text.matches("event: error").count(), 1, "{text}");
        assert!(!text.contains("message_stop"), "{kind:?}: {text}");
    }
}

#[tokio::test]
async fn count_tokens_is_passed_on_or_estimated() {
    let body = json!({"model": "model-a", "messages": [{"role": "user", "content": "Hello there, how are you?"}]}).to_string();
    let up = Fake::start_anthropic().await;
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url(), None);
    let (status, headers, text) =
        post(&proxy, "/v1/messages/count_tokens", Some(CLIENT_KEY), &body).await;
    assert_eq!((status, text.as_str()), (200, r#"{"input_tokens":42}"#));
    assert!(headers.get("x-ai-proxy-token-count").is_none());
    assert_eq!(up.ctl.last().uri, "/v1/messages/count_tokens");

    let up = Fake::start().await;
    let proxy = proxy_for(UpstreamKind::Openai, up.base_url(), None);
    let (status, headers, text) =
        post(&proxy, "/v1/messages/count_tokens", Some(CLIENT_KEY), &body).await;
    assert_eq!((status, text.as_str()), (200, r#"{"input_tokens":7}"#));
    assert_eq!(headers["x-ai-proxy-token-count"], "estimate");
    assert_eq!(
        up.ctl.count(),
        0,
        "an OpenAI upstream cannot count: nothing is sent"
    );
    let thinking =
        json!({"model": "model-a", "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "x"}]})
        .to_string();
    let (status, _, text) = post(
        &proxy,
        "/v1/messages/count_tokens",
        Some(CLIENT_KEY),
        &thinking,
    )
    .await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (400, "invalid_request_error")
    );
    assert!(error_of(&text).1.contains("`thinking`"));
}

#[tokio::test]
async fn upstream_errors_come_back_in_the_clients_shape() {
    let up = Fake::start().await;
    up.ctl.script([Behaviour::Status(400, None)]);
    let proxy = proxy_for(UpstreamKind::Openai, up.base_url(), None);
    let (status, _, text) = post(
        &proxy,
        "/v1/messages",
        Some(CLIENT_KEY),
        &message("model-a", false).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&text),
        ("invalid_request_error".into(), "upstream says 400".into())
    );

    let up = Fake::start_anthropic().await;
    up.ctl.script([Behaviour::Status(404, None)]);
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url(), None);
    let (status, text, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body("model-a", false).to_string(),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["message"], "upstream says 404");
    assert_eq!(v["error"]["type"], "not_found_error");
    // The Anthropic upstream got Anthropic's request, with a version though the client sent none.
    let seen = up.ctl.last();
    assert_eq!(seen.uri, "/v1/messages");
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "a secret prompt"}]}])
    );
}

#[tokio::test]
async fn answers_being_translated_count_against_the_body_budget() {
    let up = Fake::start().await;
    let body = message("model-a", false).to_string();
    let start = |budget: u64| {
        let mut c = config(&[("up", up.base_url())], &[("model-a", &["up"])]);
        c.max_body_bytes = body.len() as u64;
        c.limits.body_budget_bytes = budget;
        Proxy::start(c)
    };
    // The request body fits; with the upstream's whole answer (about 250 bytes) it does not.
    let proxy = start(body.len() as u64 + 100);
    let (status, _, text) = post(&proxy, "/v1/messages", Some(CLIENT_KEY), &body).await;
    assert_eq!(
        (status, error_of(&text).0.as_str()),
        (503, "overloaded_error"),
        "{text}"
    );
    let proxy = start(body.len() as u64 + 1000);
    let (status, _, text) = post(&proxy, "/v1/messages", Some(CLIENT_KEY), &body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["content"][0]["text"], "Hello!");
}
