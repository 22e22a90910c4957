use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// `(event name, data as JSON or text)` of each event in `out`.
fn events(out: &[u8]) -> Vec<(Option<String>, String)> {
    let text = std::str::from_utf8(out).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                }
            }
            (name, data)
        })
        .collect()
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    .to_string()
}

#[test]
fn a_chat_stream_becomes_anthropic_events_in_order() {
    let mut t = ToAnthropic::default();
    let mut out = BytesMut::new();
    for data in [
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hi"}), None),
        chunk(json!({"content": " there"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(9, 4),
        "[DONE]".to_owned(),
    ] {
        t.event(&data, &mut out);
    }
    t.finish(&mut out);
    let got: Vec<(String, Value)> = events(&out)
        .into_iter()
        .map(|(n, d)| (n.unwrap(), json_of(&d)))
        .collect();
    let want = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"input_tokens": 9, "output_tokens": 4}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((gn, gd), (wn, wd)) in got.iter().zip(want) {
        assert_eq!((gn.as_str(), gd), (wn, &wd));
    }
    assert_eq!(
        t.usage(),
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 4
        })
    );
}

#[test]
fn what_cannot_be_carried_ends_with_an_error_event() {
    let mut t = ToAnthropic::default();
    let mut out = BytesMut::new();
    for data in [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
            None,
        ),
        chunk(json!({"content": "late"}), None),
    ] {
        t.event(&data, &mut out);
    }
    t.finish(&mut out);
    let all = events(&out);
    let (name, data) = all.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(json_of(data)["error"]["type"], "api_error");
    assert_eq!(
        all.iter()
            .filter(|(n, _)| n.as_deref() == Some("error"))
            .count(),
        1
    );

    let mut t = ToAnthropic::default();
    let mut out = BytesMut::new();
    t.event(&chunk(json!({"content": "cut"}), None), &mut out);
    t.finish(&mut out);
    assert_eq!(events(&out).last().unwrap().0.as_deref(), Some("error"));

    let mut t = ToAnthropic::default();
    let mut out = BytesMut::new();
    t.event(
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        &mut out,
    );
    let (name, data) = events(&out).pop().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(json_of(&data)["error"]["message"], "overloaded");
}

fn anthropic(name: &str, data: Value) -> String {
    let _ = name;
    data.to_string()
}

#[test]
fn anthropic_events_become_chat_chunks() {
    let mut t = ToChat::new(7, true);
    let mut out = BytesMut::new();
    for data in [
        anthropic(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 1}}}),
        ),
        anthropic("ping", json!({"type": "ping"})),
        anthropic(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ),
        anthropic(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        anthropic(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}}),
        ),
        anthropic(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        anthropic("future", json!({"type": "some_new_event"})),
        anthropic(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        ),
        anthropic("message_stop", json!({"type": "message_stop"})),
    ] {
        t.event(&data, &mut out);
    }
    t.finish(&mut out);
    let got: Vec<String> = events(&out).into_iter().map(|(_, d)| d).collect();
    let head = |delta: Value, finish: Value| {
        json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "claude",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let want = [
        head(json!({"role": "assistant", "content": ""}), Value::Null),
        head(json!({"content": "Hi"}), Value::Null),
        head(
            json!({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
            Value::Null,
        ),
        head(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}),
            Value::Null,
        ),
        head(json!({}), json!("tool_calls")),
        json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "claude", "choices": [],
            "usage": {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20}}),
    ];
    assert_eq!(got.len(), want.len() + 1, "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(&json_of(g), w);
    }
    assert_eq!(got.last().unwrap(), "[DONE]");

    // Without the usage chunk asked for, and cut short: an OpenAI error event ends it.
    let mut t = ToChat::new(7, false);
    let mut out = BytesMut::new();
    t.event(&anthropic("message_start", json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}}})), &mut out);
    t.finish(&mut out);
    let last = events(&out).pop().unwrap().1;
    assert!(json_of(&last)["error"]["message"].is_string());
}

#[test]
fn anthropic_usage_is_read_from_start_and_delta_only() {
    let mut u = AnthropicUsage::default();
    assert_eq!(u.usage(), None);
    u.event(Some("message_start"), r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":5,"output_tokens":1}}}"#);
    u.event(
        Some("content_block_delta"),
        r#"{"usage":{"output_tokens":999}}"#,
    );
    u.event(Some("message_delta"), r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":30}}"#);
    assert_eq!(
        u.usage(),
        Some(Usage {
            prompt_tokens: 25,
            completion_tokens: 30
        })
    );
}

/// An answer: text pieces, tool calls (name, argument pieces), prompt and completion tokens.
type Answer = (Vec<String>, Vec<(String, Vec<String>)>, u64, u64);

/// An answer: text pieces, then tool calls each with argument pieces.
fn answer() -> impl Strategy<Value = Answer> {
    (
        proptest::collection::vec("[a-zA-Z0-9 \"\\\\\n{}é]{1,10}", 0..5),
        proptest::collection::vec(
            (
                "[a-z]{1,6}",
                proptest::collection::vec("[a-z0-9\":{},]{1,6}", 0..4),
            ),
            0..3,
        ),
        0u64..100_000,
        0u64..100_000,
    )
}

proptest! {
    /// However an answer is streamed, Anthropic's client gets its text and each tool call's
    /// arguments whole, in blocks in Anthropic's order (start, deltas, stop; indexes rising),
    /// between one `message_start` and one `message_delta` + `message_stop` with the usage;
    /// and translated back to chunks the answer is the same again.
    #[test]
    fn streams_keep_the_answer_both_ways((texts, calls, prompt, completion) in answer()) {
        let mut upstream = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        upstream.extend(texts.iter().map(|t| chunk(json!({"content": t}), None)));
        for (i, (name, args)) in calls.iter().enumerate() {
            upstream.push(chunk(json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": ""}}]}), None));
            upstream.extend(args.iter().map(|a| chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": a}}]}), None)));
        }
        let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
        upstream.push(chunk(json!({}), Some(finish)));
        upstream.push(usage_chunk(prompt, completion));
        upstream.push("[DONE]".into());

        let mut there = ToAnthropic::default();
        let mut out = BytesMut::new();
        for e in &upstream {
            there.event(e, &mut out);
        }
        there.finish(&mut out);
        let evs = events(&out);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
        prop_assert_eq!(names.first(), Some(&"message_start"));
        prop_assert_eq!(&names[names.len() - 2..], &["message_delta", "message_stop"]);
        // Blocks: start, deltas of that index, stop; indexes 0, 1, 2…
        let mut open: Option<u64> = None;
        let mut next = 0;
        let mut text = String::new();
        let mut args: Vec<String> = Vec::new();
        for (name, data) in &evs[1..evs.len() - 2] {
            let d = json_of(data);
            match name.as_deref().unwrap() {
                "content_block_start" => {
                    prop_assert_eq!(open, None);
                    prop_assert_eq!(d["index"].as_u64(), Some(next));
                    open = Some(next);
                    next += 1;
                    if d["content_block"]["type"] == "tool_use" { args.push(String::new()); }
                }
                "content_block_delta" => {
                    prop_assert_eq!(d["index"].as_u64(), open);
                    match d["delta"]["type"].as_str().unwrap() {
                        "text_delta" => text += d["delta"]["text"].as_str().unwrap(),
                        _ => *args.last_mut().unwrap() += d["delta"]["partial_json"].as_str().unwrap(),
                    }
                }
                "content_block_stop" => {
                    prop_assert_eq!(d["index"].as_u64(), open);
                    open = None;
                }
                other => prop_assert!(false, "unexpected {}", other),
            }
        }
        prop_assert_eq!(&text, &texts.concat());
        let want_args: Vec<String> = calls.iter().map(|(_, a)| a.concat()).collect();
        prop_assert_eq!(&args, &want_args);
        let delta = json_of(&evs[evs.len() - 2].1);
        prop_assert_eq!(&delta["usage"], &json!({"input_tokens": prompt, "output_tokens": completion}));

        let mut back = ToChat::new(1, true);
        let mut chunks = BytesMut::new();
        for (_, data) in &evs {
            back.event(data, &mut chunks);
        }
        back.finish(&mut chunks);
        let mut text = String::new();
        let mut args: Vec<String> = Vec::new();
        let mut usage = Value::Null;
        let mut finish_reason = Value::Null;
        for (_, data) in events(&chunks) {
            if data == "[DONE]" { continue; }
            let c = json_of(&data);
            prop_assert!(c.get("error").is_none(), "{}", data);
            if !c["usage"].is_null() { usage = c["usage"].clone(); }
            let Some(choice) = c["choices"].get(0) else { continue };
            if !choice["finish_reason"].is_null() { finish_reason = choice["finish_reason"].clone(); }
            text += choice["delta"]["content"].as_str().unwrap_or("");
            for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let i = call["index"].as_u64().unwrap() as usize;
                if args.len() <= i { args.resize(i + 1, String::new()); }
                args[i] += call["function"]["arguments"].as_str().unwrap_or("");
            }
        }
        prop_assert_eq!(text, texts.concat());
        prop_assert_eq!(args, want_args);
        prop_assert_eq!(finish_reason, json!(finish));
        prop_assert_eq!(usage, json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}));
    }
}
