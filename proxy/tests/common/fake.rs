//! A stand-in OpenAI-compatible upstream: records what it received, and can be told to be
//! slow, fail, answer 429, or reset a stream part-way (between events or inside one). Every
//! answer carries headers a provider may send and a client must not get (`set-cookie`, its own
//! `x-request-id` and organization). Asked with `tools`, it calls the first one (arguments
//! `{"city":"Paris"}`), and after a `tool` message answers with that message's text. The
//! Anthropic-format stand-in is [`anthropic`].

pub mod anthropic;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::stream;
use http::HeaderMap;

/// What the upstream does with one request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answer normally.
    Ok,
    /// Answer this status with an OpenAI error body (and `Retry-After` seconds, if given).
    Status(u16, Option<u64>),
    /// Wait this long before answering.
    Slow(Duration),
    /// Stream this many chunks, then break the connection.
    ResetAfter(usize),
    /// Stream this many chunks, then go silent (for idle timeouts).
    StallAfter(usize),
    /// Stream this many chunks, then half an event, then break the connection.
    CutMidEvent(usize),
}

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Shared control and record of the fake.
#[derive(Default)]
pub struct Ctl {
    pub seen: Mutex<Vec<Seen>>,
    /// Behaviours for the next requests, in order; then `default`.
    pub script: Mutex<VecDeque<Behaviour>>,
    pub default: Mutex<Option<Behaviour>>,
    /// Streams whose reader went away before the end.
    pub cancelled: AtomicUsize,
    /// Streams sent to the end.
    pub finished: AtomicUsize,
}

impl Ctl {
    pub fn script(&self, items: impl IntoIterator<Item = Behaviour>) {
        self.script.lock().unwrap().extend(items);
    }
    pub fn set_default(&self, b: Behaviour) {
        *self.default.lock().unwrap() = Some(b);
    }
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("upstream saw no request")
    }
    fn next(&self) -> Behaviour {
        if let Some(b) = self.script.lock().unwrap().pop_front() {
            return b;
        }
        self.default
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Behaviour::Ok)
    }
}

/// A running fake upstream.
pub struct Fake {
    pub addr: SocketAddr,
    pub ctl: Arc<Ctl>,
}

impl Fake {
    pub async fn start() -> Self {
        let ctl = Arc::new(Ctl::default());
        let app = Router::new().fallback(handle).with_state(ctl.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, ctl }
    }

    /// Base URL as configured in the proxy (with `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// An address nothing listens on.
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
}

fn query_num(uri: &http::Uri, key: &str) -> Option<u64> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
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
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let stream = json["stream"].as_bool().unwrap_or(false);
    let include_usage = json["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let chunks = query_num(&parts.uri, "chunks").unwrap_or(3) as usize;
    let delay = Duration::from_millis(query_num(&parts.uri, "delay_ms").unwrap_or(50));
    let behaviour = ctl.next();
    match behaviour {
        Behaviour::Status(code, retry_after) => {
            let mut b = Response::builder()
                .status(code)
                .header("content-type", "application/json");
            if let Some(s) = retry_after {
                b = b.header("retry-after", s.to_string());
            }
            return b
                .body(Body::from(format!(
                    r#"{{"error":{{"message":"upstream says {code}","type":"server_error","param":null,"code":null}}}}"#
                )))
                .unwrap();
        }
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let path = parts.uri.path();
    if path.ends_with("/embeddings") {
        return json_response(
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":5,"total_tokens":5}}"#.into(),
        );
    }
    if path.ends_with("/moderations") {
        return json_response(r#"{"id":"modr-1","model":"m","results":[]}"#.into());
    }
    if path.ends_with("/completions") && !path.ends_with("/chat/completions") {
        return json_response(
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"hi","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}"#.into(),
        );
    }
    if let Some(reply) = tools_reply(&json) {
        return tools_answer(reply, stream, include_usage);
    }
    if !stream {
        return json_response(
            r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}"#.into(),
        );
    }
    let (reset_after, stall_after, half_event) = match behaviour {
        Behaviour::ResetAfter(n) => (Some(n), None, false),
        Behaviour::StallAfter(n) => (None, Some(n), false),
        Behaviour::CutMidEvent(n) => (Some(n), None, true),
        _ => (None, None, false),
    };
    let null_usage = if include_usage {
        r#","usage":null"#
    } else {
        ""
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for i in 0..chunks {
            if reset_after == Some(i) {
                if half_event {
                    let half = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choi";
                    let _ = tx.send(Ok(Bytes::from(half))).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = tx.send(Err(std::io::Error::other("reset"))).await;
                return;
            }
            if stall_after == Some(i) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            // Like OpenAI: asked for usage, every chunk carries `"usage":null` until the last.
            let chunk = format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]{null_usage}}}\n\n"
            );
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                ctl.cancelled.fetch_add(1, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(delay).await;
        }
        let mut tail = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]{null_usage}}}\n\n",
        );
        if include_usage {
            tail.push_str(&format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{{\"prompt_tokens\":7,\"completion_tokens\":{chunks},\"total_tokens\":{}}}}}\n\n", 7 + chunks));
        }
        tail.push_str("data: [DONE]\n\n");
        if tx.send(Ok(Bytes::from(tail))).await.is_ok() {
            ctl.finished.fetch_add(1, Ordering::SeqCst);
        }
    });
    let body = Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    provider_headers(Response::builder())
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap()
}

/// Headers a provider sends that must not reach a client as they are.
fn provider_headers(b: http::response::Builder) -> http::response::Builder {
    b.header("set-cookie", "upstream_session=1; Path=/")
        .header("x-request-id", "req_upstream_1")
        .header("openai-organization", "org-upstream")
}

fn json_response(body: String) -> Response {
    provider_headers(Response::builder())
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// With tools: a call of the first tool, or after a tool's result, text saying it.
fn tools_reply(request: &serde_json::Value) -> Option<Result<String, String>> {
    let tool = request["tools"].get(0)?;
    let last = request["messages"].as_array()?.last()?;
    if last["role"] == "tool" {
        let text = match &last["content"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Some(Err(format!("The tool said: {text}")));
    }
    Some(Ok(tool["function"]["name"].as_str()?.to_owned()))
}

/// The answer to a request with tools: `Ok(name)` calls that tool, `Err(text)` says text.
fn tools_answer(reply: Result<String, String>, stream: bool, include_usage: bool) -> Response {
    use serde_json::json;
    let head = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage = json!({"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15});
    if !stream {
        let (message, finish) = match &reply {
            Ok(name) => (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_01", "type": "function",
                    "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}]}),
                "tool_calls",
            ),
            Err(text) => (json!({"role": "assistant", "content": text}), "stop"),
        };
        return json_response(
            json!({"id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
            .to_string(),
        );
    }
    let mut chunks = vec![head(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    let finish = match &reply {
        Ok(name) => {
            chunks.push(head(
                json!({"tool_calls": [{"index": 0, "id": "call_01", "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
                json!(null),
            ));
            for piece in ["{\"city\"", ": \"Par", "is\"}"] {
                chunks.push(head(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    json!(null),
                ));
            }
            "tool_calls"
        }
        Err(text) => {
            chunks.push(head(json!({"content": text}), json!(null)));
            "stop"
        }
    };
    chunks.push(head(json!({}), json!(finish)));
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if include_usage {
        body += &format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": usage})
        );
    }
    body += "data: [DONE]\n\n";
    provider_headers(Response::builder())
        .header("content-type", "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}
