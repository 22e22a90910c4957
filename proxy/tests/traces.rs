//! OpenTelemetry traces through the real binary into a real Jaeger (tests/common/jaeger.rs):
//! a streamed chat request whose first attempt gets a 502 and whose retry succeeds is one
//! server span over two client spans, in the trace of the client's `traceparent`, with the
//! GenAI attributes; the upstream gets the answering attempt's `traceparent`. Skips (printing
//! why) where Jaeger is not built; CI builds it and sets `E2E_JAEGER_BIN`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::fake::{Behaviour, Fake};
use common::jaeger::Jaeger;
use common::*;
use serde_json::Value;

/// A span's tags as a map of key → value.
fn tags(span: &Value) -> HashMap<String, Value> {
    span["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_owned(),
                t["value"].clone(),
            )
        })
        .collect()
}

fn parent_id(span: &Value) -> Option<&str> {
    span["references"]
        .as_array()?
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")?["spanID"]
        .as_str()
}

#[tokio::test]
async fn a_retried_stream_is_one_server_span_over_two_client_spans_in_the_clients_trace() {
    let Some(jaeger) = Jaeger::start() else {
        return;
    };
    let fake = Fake::start().await;
    fake.ctl
        .script([Behaviour::Status(502, None), Behaviour::Ok]);
    let mut config = config(&[("main", fake.base_url())], &[("gpt-4o-mini", &["main"])]);
    config.telemetry.otlp = Some(ai_api_proxy_config::Otlp {
        endpoint: jaeger.otlp_endpoint(),
        timeout: ai_api_proxy_config::Duration::from_secs(5),
    });
    // Only the client's sampled `traceparent` records this one: nothing new is sampled.
    config.telemetry.sampling_ratio = 0.0;
    let dir = TempDir::new();
    config.secrets_dir = dir.0.join("secrets");
    write_secrets(&config, &config.secrets_dir);
    let path = dir.0.join("proxy.json");
    std::fs::write(&path, config.to_json()).unwrap();
    // A standard variable: export every 100 ms instead of every 5 s.
    let proxy = Proxy::start_file(&path, dir, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);

    let trace_id = format!("{:032x}", fastrand::u128(1..));
    let client_span = "00f067aa0ba902b7";
    let prompt = "a prompt that must never reach a trace";
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
    });
    let response = http()
        .post(proxy.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(fake.ctl.count(), 2, "one 502, one retry");

    let spans = jaeger.wait_for_spans(&trace_id, 3, Duration::from_secs(30));
    let kind = |s: &Value| tags(s)["span.kind"].as_str().unwrap_or_default().to_owned();
    let servers: Vec<_> = spans.iter().filter(|s| kind(s) == "server").collect();
    let mut clients: Vec<_> = spans.iter().filter(|s| kind(s) == "client").collect();
    assert_eq!((servers.len(), clients.len()), (1, 2), "{spans:#?}");
    let server = servers[0];
    clients.sort_by_key(|s| tags(s)["ai_proxy.attempt"].as_i64());

    // The tree: the client's span → the server span → one client span per attempt.
    assert_eq!(server["traceID"], trace_id.as_str());
    assert_eq!(parent_id(server), Some(client_span));
    assert_eq!(server["operationName"], "POST /v1/chat/completions");
    for c in &clients {
        assert_eq!(parent_id(c), server["spanID"].as_str(), "{c:#?}");
        assert_eq!(c["operationName"], "chat gpt-4o-mini");
        let t = tags(c);
        assert_eq!(t["gen_ai.operation.name"], "chat");
        assert_eq!(t["gen_ai.provider.name"], "openai");
        assert_eq!(t["gen_ai.request.model"], "gpt-4o-mini");
        assert_eq!(t["server.address"], "127.0.0.1");
        assert_eq!(t["server.port"], i64::from(fake.addr.port()));
    }
    let (first, second) = (tags(clients[0]), tags(clients[1]));
    assert_eq!(first["http.response.status_code"], 502);
    assert_eq!(first["error"], true, "a failed attempt is an error span");
    assert_eq!(second["http.response.status_code"], 200);
    assert!(!second.contains_key("error"), "{second:?}");

    // What the answer said: on the server span and the answering attempt.
    for t in [tags(server), second] {
        assert_eq!(t["gen_ai.response.model"], "m");
        assert_eq!(t["gen_ai.usage.input_tokens"], 7);
        assert_eq!(t["gen_ai.usage.output_tokens"], 3);
        assert_eq!(t["gen_ai.response.finish_reasons"], r#"["stop"]"#);
    }
    let s = tags(server);
    assert_eq!(s["ai_proxy.client.key_id"], "team-a");
    assert_eq!(s["http.response.status_code"], 200);

    // The upstream's parent is the attempt that reached it, in the client's trace.
    let seen = fake.ctl.seen.lock().unwrap().clone();
    for (attempt, span) in seen.iter().zip(&clients) {
        let tp = attempt.headers["traceparent"].to_str().unwrap();
        assert_eq!(
            tp,
            format!("00-{trace_id}-{}-01", span["spanID"].as_str().unwrap())
        );
    }

    // Ids and numbers only: no key, no prompt, no completion.
    let all = serde_json::to_string(&spans).unwrap();
    for secret in [CLIENT_KEY, UPSTREAM_KEY, prompt, "tok0"] {
        assert!(!all.contains(secret), "`{secret}` is in a span: {all}");
    }
}

#[tokio::test]
async fn a_collector_that_does_not_answer_costs_counted_drops_not_requests() {
    // A collector that accepts connections and never answers: the first export waits out its
    // minute-long timeout, so the queue of 4 stays full for the whole test.
    let collector = silent_listener().await;
    let fake = Fake::start().await;
    let mut config = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    config.telemetry.otlp = Some(ai_api_proxy_config::Otlp {
        endpoint: format!("http://{collector}"),
        timeout: ai_api_proxy_config::Duration::from_secs(60),
    });
    config.telemetry.max_queue_size = 4;
    let proxy = Proxy::start(config);
    let body = chat_body("m", false).to_string();
    for _ in 0..40 {
        let auth = format!("Bearer {CLIENT_KEY}");
        let (status, _, _) = post_raw(&proxy, "/v1/chat/completions", Some(&auth), &body).await;
        assert_eq!(status, 200);
    }
    // 40 requests × 2 spans: at most 4 in the stuck export and 4 queued, the rest dropped and
    // counted (the access log line is written as the answer ends, so wait for the last).
    let mut dropped = 0.0;
    for _ in 0..100 {
        dropped = proxy.metric("ai_proxy_trace_spans_dropped_total").await;
        if dropped >= 72.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!((72.0..=79.0).contains(&dropped), "dropped {dropped}");
}

/// An address that accepts TCP connections and never answers on them.
#[expect(
    clippy::unwrap_used,
    reason = "test set-up: a failure must abort the test"
)]
async fn silent_listener() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = l.accept().await {
            held.push(socket);
        }
    });
    addr
}
