//! A stand-in for Anthropic's Messages API (it fakes the provider: there is no model behind
//! it). It speaks the real wire format over 127.0.0.1: `POST /v1/messages` answers a message
//! or, with `"stream": true`, the event stream in Anthropic's order (`message_start`, `ping`,
//! `content_block_start` / `content_block_delta` / `content_block_stop` per block,
//! `message_delta` with the stop reason and output usage, `message_stop`), and
//! `POST /v1/messages/count_tokens` answers `{"input_tokens":…}`. Like the real API it refuses
//! a request without `x-api-key` (401) or `anthropic-version` (400), with Anthropic's error
//! shape. With `tools` in the request and no `tool_result` in its last turn it calls the first
//! tool (`{"city":"Paris"}`); after a tool result it answers with that result's text. The
//! shared [`Ctl`] records requests and scripts failures as for the OpenAI stand-in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::stream;
use serde_json::{Value, json};

use super::{Behaviour, Ctl, Fake, Seen, query_num};

/// Input tokens every answer reports (plus [`CACHE_READ`] read from the cache).
pub const INPUT_TOKENS: u64 = 11;
/// Cache reads every answer reports.
pub const CACHE_READ: u64 = 2;

impl Fake {
    /// Starts the Anthropic stand-in.
    pub async fn start_anthropic() -> Self {
        let ctl = Arc::new(Ctl::default());
        let app = Router::new().fallback(handle).with_state(ctl.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, ctl }
    }
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", "req_anthropic_error")
        .body(Body::from(
            json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
        ))
        .unwrap()
}

fn json_response(body: Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .header("request-id", "req_anthropic_1")
        .header("set-cookie", "upstream_session=1; Path=/")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// What the model "says": a tool call, or text.
enum Reply {
    Tool { name: String },
    Text(String),
}

fn reply(request: &Value) -> Reply {
    let last = request["messages"].as_array().and_then(|m| m.last());
    let result = last
        .and_then(|m| m["content"].as_array())
        .and_then(|blocks| {
            blocks
                .iter()
                .find(|b| b["type"] == "tool_result")
                .map(|b| match &b["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                })
        });
    match (result, request["tools"].get(0)) {
        (Some(result), _) => Reply::Text(format!("The tool said: {result}")),
        (None, Some(tool)) => Reply::Tool {
            name: tool["name"].as_str().unwrap_or("tool").to_owned(),
        },
        (None, None) => Reply::Text("Hello from Claude!".into()),
    }
}

async fn handle(State(ctl): State<Arc<Ctl>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    ctl.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    if parts.headers.get("x-api-key").is_none() {
        return error(401, "authentication_error", "x-api-key header is required");
    }
    if parts.headers.get("anthropic-version").is_none() {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let behaviour = ctl.next();
    match behaviour {
        Behaviour::Status(code, retry_after) => {
            let mut r = error(
                code,
                if code == 529 {
                    "overloaded_error"
                } else {
                    "api_error"
                },
                &format!("upstream says {code}"),
            );
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", s.into());
            }
            return r;
        }
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    if parts.uri.path().ends_with("/messages/count_tokens") {
        return json_response(json!({"input_tokens": 42}));
    }
    if !parts.uri.path().ends_with("/messages") {
        return error(404, "not_found_error", "no such path");
    }
    let model = request["model"].as_str().unwrap_or("claude").to_owned();
    let reply = reply(&request);
    if request["stream"] != true {
        let (content, stop, output) = match &reply {
            Reply::Tool { name } => (
                json!([{"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01", "name": name, "input": {"city": "Paris"}}]),
                "tool_use",
                9,
            ),
            Reply::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn", 7),
        };
        return json_response(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": CACHE_READ, "output_tokens": output}
        }));
    }
    let chunks = query_num(&parts.uri, "chunks").unwrap_or(3) as usize;
    let delay = Duration::from_millis(query_num(&parts.uri, "delay_ms").unwrap_or(20));
    let reset_after = match behaviour {
        Behaviour::ResetAfter(n) => Some(n),
        _ => None,
    };
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": INPUT_TOKENS, "cache_read_input_tokens": CACHE_READ, "output_tokens": 1}}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    let (stop, output) = match &reply {
        Reply::Text(text) if text.starts_with("The tool said") => {
            events.push(delta(0, json!({"type": "text_delta", "text": text})));
            ("end_turn", 5)
        }
        Reply::Text(_) => {
            for i in 0..chunks {
                events.push(delta(
                    0,
                    json!({"type": "text_delta", "text": format!("tok{i} ")}),
                ));
            }
            ("end_turn", chunks as u64)
        }
        Reply::Tool { name } => {
            events.push(delta(
                0,
                json!({"type": "text_delta", "text": "Let me check."}),
            ));
            events.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            events.push(event("content_block_start", json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": name, "input": {}}})));
            for piece in ["{\"city\"", ": \"Par", "is\"}"] {
                events.push(delta(
                    1,
                    json!({"type": "input_json_delta", "partial_json": piece}),
                ));
            }
            ("tool_use", 9)
        }
    };
    let last = if matches!(reply, Reply::Tool { .. }) {
        1
    } else {
        0
    };
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": last}),
    ));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            if reset_after == Some(i) {
                let _ = tx.send(Err(std::io::Error::other("reset"))).await;
                return;
            }
            if tx.send(Ok(Bytes::from(e))).await.is_err() {
                ctl.cancelled.fetch_add(1, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(delay).await;
        }
        ctl.finished.fetch_add(1, Ordering::SeqCst);
    });
    let body = Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("request-id", "req_anthropic_1")
        .body(body)
        .unwrap()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn delta(index: u64, delta: Value) -> String {
    event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}
