//! Mid-stream failover (`on_stream_failure = "continue"`) against the real binary: two
//! stand-in providers over real SSE on 127.0.0.1, the first cut after N chunks by each
//! failure kind (reset, stall, error event), the client reading one answer; and each case where
//! continuing is refused, where the client gets the error event it gets without failover.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed setup or a missing event must abort the test"
)]

mod common;

use ai_api_proxy_config::OnStreamFailure;
use common::fake::{Behaviour, Fake};
use common::*;
use serde_json::{Value, json};

/// What the continuing upstream is told after the delivered text (proxy/README.md).
const INSTRUCTION: &str = "Your previous answer was cut off. Continue it from exactly where it stopped, even in the middle of a word or sentence: do not repeat any of it, do not mention the interruption, and keep the same language, format and style.";

struct Setup {
    alpha: Fake,
    bravo: Fake,
    proxy: Proxy,
}

/// Providers `alpha` and `bravo`; model `m` on both, continuing; model `plain` on both with the
/// default (`error`); model `late` on `bravo` then `alpha` (nothing after `alpha`).
async fn setup() -> Setup {
    let alpha = Fake::start_as("alpha").await;
    let bravo = Fake::start_as("bravo").await;
    let mut c = config(
        &[("a", alpha.base_url()), ("b", bravo.base_url())],
        &[
            ("m", &["a", "b"]),
            ("plain", &["a", "b"]),
            ("late", &["b", "a"]),
        ],
    );
    c.models[0].on_stream_failure = OnStreamFailure::Continue;
    c.models[2].on_stream_failure = OnStreamFailure::Continue;
    let proxy = Proxy::start(c);
    Setup {
        alpha,
        bravo,
        proxy,
    }
}

/// What a client read: the chunks, the error event if one ended the stream, `[DONE]`s.
struct Read {
    chunks: Vec<Value>,
    error: Option<Value>,
    done: usize,
}

impl Read {
    fn text(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    fn count(&self, pointer: &str) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.pointer(pointer).is_some_and(|v| !v.is_null()))
            .count()
    }
}

async fn read(s: &Setup, query: &str, body: Value) -> Read {
    let r = stream(&s.proxy, query, body).await;
    assert_eq!(r.status(), 200);
    let (events, transport) = sse_events(r).await;
    assert!(
        transport.is_none(),
        "the stream ended cleanly: {transport:?}"
    );
    let mut read = Read {
        chunks: Vec::new(),
        error: None,
        done: 0,
    };
    for (_, data) in events {
        if data == "[DONE]" {
            read.done += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        if v.get("error").is_some() {
            assert!(read.error.is_none(), "one error event at most");
            read.error = Some(v);
        } else {
            assert!(
                read.error.is_none() && read.done == 0,
                "nothing after the end: {v}"
            );
            read.chunks.push(v);
        }
    }
    read
}

fn body(model: &str, extra: Value) -> Value {
    let mut b = chat_body(model, true);
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

/// The continued answer: alpha's first two chunks, then all four of bravo's, as one.
async fn continued(kind: Behaviour, usage: bool) {
    let s = setup().await;
    s.alpha.ctl.script([kind]);
    let extra = if usage {
        json!({"stream_options": {"include_usage": true}, "max_tokens": 50})
    } else {
        json!({"max_tokens": 50})
    };
    let r = read(&s, "?chunks=4&delay_ms=10", body("m", extra)).await;

    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.text(), "alpha0 alpha1 bravo0 bravo1 bravo2 bravo3 ");
    assert_eq!(r.done, 1);
    assert_eq!(r.count("/choices/0/delta/role"), 1);
    assert_eq!(r.count("/choices/0/finish_reason"), 1);
    let first = &r.chunks[0];
    assert_eq!(first["id"], "chatcmpl-alpha");
    assert_eq!(first["model"], "alpha-model");
    for c in &r.chunks {
        assert_eq!(
            (&c["id"], &c["created"], &c["model"]),
            (&first["id"], &first["created"], &first["model"]),
            "{c}"
        );
    }

    // Bravo got the request alpha got, plus the delivered text and the instruction.
    let sent = s.alpha.ctl.bodies().remove(0);
    let cont = s.bravo.ctl.bodies().remove(0);
    let mut messages = sent["messages"].as_array().unwrap().clone();
    messages.push(json!({"role": "assistant", "content": "alpha0 alpha1 "}));
    messages.push(json!({"role": "user", "content": INSTRUCTION}));
    assert_eq!(cont["messages"], json!(messages));
    // Alpha's share: 14 characters / 4 = 4 tokens (more than its 2 chunks).
    assert_eq!(cont["max_tokens"], 46, "50 less alpha's share");
    assert_eq!(cont["stream_options"], sent["stream_options"]);

    let usage_chunks: Vec<&Value> = r.chunks.iter().filter(|c| !c["usage"].is_null()).collect();
    if usage {
        assert_eq!(usage_chunks.len(), 1, "usage is reported once");
        let u = &usage_chunks[0]["usage"];
        // Bravo reports its prompt (a quarter of its body) and 4 completion tokens; alpha's
        // share is estimated: 4 completion tokens, its prompt bravo's less what was added.
        let bravo_prompt = serde_json::to_vec(&cont).unwrap().len() as u64 / 4;
        assert_eq!(u["completion_tokens"], 4 + 4);
        assert!(
            u["prompt_tokens"].as_u64().unwrap() > bravo_prompt,
            "both prompts are counted: {u}"
        );
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(u["prompt_tokens"].as_u64().unwrap() + 8)
        );
    } else {
        assert!(usage_chunks.is_empty(), "{usage_chunks:?}");
    }

    let log = s
        .proxy
        .wait_log(|v| v["model"] == "m" && v["failover"].is_array())
        .await;
    assert_eq!(
        log["failover"],
        json!([{"from": "a", "to": "b", "outcome": "continued"}])
    );
    assert_eq!(log["upstream"], "b");
    assert_eq!(log["complete"], true);
    assert_eq!(
        s.proxy
            .metric(
                r#"ai_proxy_stream_failovers_total{model="m",from="a",to="b",outcome="continued"}"#
            )
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_reset_is_continued_on_the_next_upstream() {
    continued(Behaviour::ResetAfter(2), true).await;
}

#[tokio::test]
async fn a_stall_is_continued_on_the_next_upstream() {
    continued(Behaviour::StallAfter(2), false).await;
}

#[tokio::test]
async fn an_error_event_is_continued_on_the_next_upstream() {
    continued(Behaviour::ErrorAfter(2), true).await;
}

/// A refused failover: the client gets the error event it would get without failover, the
/// next upstream is never called, and the refusal is counted and logged with its reason.
async fn refused(s: &Setup, model: &str, extra: Value, reason: &str, code: &str) {
    let before = s.bravo.ctl.count() + s.alpha.ctl.count();
    let r = read(s, "?chunks=4&delay_ms=10", body(model, extra)).await;
    let error = r
        .error
        .unwrap_or_else(|| panic!("no error event: {:?}", r.chunks));
    assert_eq!(error["error"]["code"], code, "{error}");
    assert_eq!(r.done, 0);
    let log = s
        .proxy
        .wait_log(|v| v["model"] == model && v["failover"][0]["reason"] == reason)
        .await;
    assert_eq!(log["failover"][0]["outcome"], "refused");
    assert_eq!(log["failover"][0]["to"], "-");
    assert_eq!(
        s.bravo.ctl.count() + s.alpha.ctl.count(),
        before + 1,
        "only the broken upstream was called"
    );
}

#[tokio::test]
async fn unsafe_requests_are_refused_with_the_usual_error_event() {
    let s = setup().await;
    for (extra, reason) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 1}), "logprobs"),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
    ] {
        s.alpha.ctl.script([Behaviour::ResetAfter(2)]);
        refused(&s, "m", extra, reason, "upstream_stream_error").await;
    }
    // An upstream's own error event reaches the client unchanged.
    s.alpha.ctl.script([Behaviour::ErrorAfter(2)]);
    refused(&s, "m", json!({"n": 2}), "n", "overloaded").await;
    assert_eq!(
        s.proxy
            .metric(
                r#"ai_proxy_stream_failovers_total{model="m",from="a",to="-",outcome="refused"}"#
            )
            .await,
        6.0
    );
}

#[tokio::test]
async fn a_break_inside_a_tool_call_is_refused() {
    let s = setup().await;
    s.alpha.ctl.script([Behaviour::ResetInToolCall(2)]);
    refused(&s, "m", json!({}), "tool_call", "upstream_stream_error").await;
}

#[tokio::test]
async fn the_last_upstream_has_no_next_one() {
    let s = setup().await;
    // `late` is bravo then alpha: bravo refuses before the first byte, alpha breaks after it.
    s.bravo.ctl.set_default(Behaviour::Status(503, None));
    s.alpha.ctl.script([Behaviour::ResetAfter(2)]);
    let r = read(&s, "?chunks=4&delay_ms=10", body("late", json!({}))).await;
    assert_eq!(
        r.error.as_ref().unwrap()["error"]["code"],
        "upstream_stream_error"
    );
    assert_eq!(r.text(), "alpha0 alpha1 ");
    let log = s
        .proxy
        .wait_log(|v| v["model"] == "late" && v["failover"].is_array())
        .await;
    assert_eq!(
        log["failover"],
        json!([{"from": "a", "to": "-", "outcome": "refused", "reason": "no_upstream"}])
    );
}

#[tokio::test]
async fn a_continuation_that_breaks_too_ends_with_the_error_event() {
    let s = setup().await;
    s.alpha.ctl.script([Behaviour::ResetAfter(2)]);
    s.bravo.ctl.script([Behaviour::ResetAfter(1)]);
    let r = read(&s, "?chunks=4&delay_ms=10", body("m", json!({}))).await;
    assert_eq!(
        r.error.as_ref().unwrap()["error"]["code"],
        "upstream_stream_error"
    );
    assert_eq!(
        r.text(),
        "alpha0 alpha1 bravo0 ",
        "what was delivered stays delivered"
    );
    let log = s
        .proxy
        .wait_log(|v| v["model"] == "m" && v["failover"].is_array())
        .await;
    assert_eq!(
        log["failover"],
        json!([
            {"from": "a", "to": "b", "outcome": "continued"},
            {"from": "b", "to": "-", "outcome": "refused", "reason": "no_upstream"},
        ])
    );
    assert_eq!(
        s.proxy
            .metric(
                r#"ai_proxy_stream_failovers_total{model="m",from="b",to="-",outcome="refused"}"#
            )
            .await,
        1.0
    );
}

#[tokio::test]
async fn without_continue_a_break_ends_the_stream_as_before() {
    let s = setup().await;
    s.alpha.ctl.script([Behaviour::ResetAfter(2)]);
    let r = read(&s, "?chunks=4&delay_ms=10", body("plain", json!({}))).await;
    assert_eq!(
        r.error.as_ref().unwrap()["error"]["code"],
        "upstream_stream_error"
    );
    assert_eq!(r.text(), "alpha0 alpha1 ");
    assert_eq!(s.bravo.ctl.count(), 0);
    let log = s.proxy.wait_log(|v| v["model"] == "plain").await;
    assert!(log.get("failover").is_none(), "{log}");
}
