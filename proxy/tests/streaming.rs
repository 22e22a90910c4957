//! Streaming through the real binary: chunk-by-chunk delivery, usage, broken streams,
//! idle timeouts and cancellation when the client goes away.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions,
    CreateChatCompletionRequestArgs,
};
use common::fake::{Behaviour, Fake};
use common::*;
use futures_util::StreamExt;

async fn setup() -> (Fake, Proxy) {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    (fake, proxy)
}

#[tokio::test]
async fn chunks_reach_the_client_as_they_arrive() {
    let (_fake, proxy) = setup().await;
    let r = stream(&proxy, "?chunks=5&delay_ms=150", chat_body("m", true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let (events, err) = sse_events(r).await;
    assert_eq!(err, None);
    let datas: Vec<_> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(datas.len(), 7, "{datas:?}");
    assert_eq!(datas[6], "[DONE]");
    // The upstream sends one chunk every 150 ms; had anything buffered them, they would
    // arrive together. Each must arrive at least 75 ms after the one before.
    for pair in events[..5].windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(75),
            "chunks arrived together: gap {gap:?}"
        );
    }
}

#[tokio::test]
async fn sdk_stream_and_usage_from_the_final_chunk() {
    let (_fake, proxy) = setup().await;
    let client = openai(&proxy, CLIENT_KEY);
    let request = CreateChatCompletionRequestArgs::default()
        .model("m")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hi")
            .build()
            .unwrap()
            .into()])
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()
        .unwrap();
    let mut s = client.chat().create_stream(request).await.unwrap();
    let mut text = String::new();
    let mut usage = None;
    while let Some(item) = s.next().await {
        let chunk = item.unwrap();
        if let Some(c) = chunk.choices.first().and_then(|c| c.delta.content.clone()) {
            text.push_str(&c);
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    assert_eq!(text, "tok0 tok1 tok2 ");
    assert_eq!(usage.unwrap().completion_tokens, 3);
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["complete"], true);
    assert_eq!(log["completion_tokens"], 3);
    assert_eq!(log["prompt_tokens"], 7);
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_tokens_total{client="team-a",model="m",kind="completion"}"#)
            .await,
        3.0
    );
}

const RESET_EVENT: &str = r#"{"error":{"message":"The upstream stream was interrupted.","type":"server_error","param":null,"code":"upstream_stream_error"}}"#;

#[tokio::test]
async fn a_stream_cut_inside_an_event_still_ends_with_a_well_formed_error_event() {
    let (fake, proxy) = setup().await;
    fake.ctl.script([Behaviour::CutMidEvent(2)]);
    let r = stream(&proxy, "?chunks=5&delay_ms=20", chat_body("m", true)).await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    // The half event never reaches the client: it would splice into the error event.
    assert_eq!(
        text.matches(r#""choi"#).count(),
        text.matches(r#""choices""#).count(),
        "{text}"
    );
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim_start_matches('\n').strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert!(events[0].contains("tok0") && events[1].contains("tok1"));
    assert_eq!(events[2], RESET_EVENT);
    for e in events {
        serde_json::from_str::<serde_json::Value>(e).unwrap();
    }
}

#[tokio::test]
async fn reset_mid_stream_ends_with_an_error_event_and_a_metric() {
    let (fake, proxy) = setup().await;
    fake.ctl.script([Behaviour::ResetAfter(2)]);
    let r = stream(&proxy, "?chunks=5&delay_ms=20", chat_body("m", true)).await;
    assert_eq!(r.status(), 200);
    let (events, _) = sse_events(r).await;
    let datas: Vec<_> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(datas.len(), 3, "{datas:?}");
    assert!(datas[0].contains("tok0") && datas[1].contains("tok1"));
    assert_eq!(datas[2], RESET_EVENT);
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_stream_errors_total{upstream="main",reason="reset"}"#)
            .await,
        1.0
    );
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["error"], "reset");

    // The SDK raises on it instead of ending quietly.
    fake.ctl.script([Behaviour::ResetAfter(1)]);
    let request = CreateChatCompletionRequestArgs::default()
        .model("m")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hi")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    let mut s = openai(&proxy, CLIENT_KEY)
        .chat()
        .create_stream(request)
        .await
        .unwrap();
    let mut errors = 0;
    while let Some(item) = s.next().await {
        if item.is_err() {
            errors += 1;
        }
    }
    assert!(errors >= 1, "the SDK stream must end in an error");
}

#[tokio::test]
async fn idle_upstream_mid_stream_ends_with_a_timeout_event() {
    let (fake, proxy) = setup().await;
    fake.ctl.script([Behaviour::StallAfter(1)]);
    let r = stream(&proxy, "?chunks=5&delay_ms=10", chat_body("m", true)).await;
    let (events, _) = sse_events(r).await;
    let datas: Vec<_> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(datas.len(), 2, "{datas:?}");
    assert_eq!(
        datas[1],
        r#"{"error":{"message":"The upstream stream stalled (idle timeout).","type":"server_error","param":null,"code":"upstream_timeout"}}"#
    );
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_stream_errors_total{upstream="main",reason="idle_timeout"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let (fake, proxy) = setup().await;
    let r = stream(&proxy, "?chunks=50&delay_ms=50", chat_body("m", true)).await;
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("tok0"));
    drop(body);
    let cancelled = eventually(Duration::from_secs(3), || {
        fake.ctl.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(cancelled, "the upstream kept streaming to nobody");
    assert_eq!(fake.ctl.finished.load(Ordering::SeqCst), 0);
    let log = proxy.wait_log(|v| v["model"] == "m").await;
    assert_eq!(log["complete"], false);
    assert_eq!(proxy.metric("ai_proxy_in_flight_requests").await, 0.0);
}
