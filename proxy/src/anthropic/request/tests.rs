use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn chat(v: Value) -> Value {
    serde_json::from_slice(&messages_to_chat(v.to_string().as_bytes()).unwrap()).unwrap()
}

fn messages(v: Value) -> Value {
    serde_json::from_slice(&chat_to_messages(v.to_string().as_bytes()).unwrap()).unwrap()
}

fn refusal_to_chat(v: Value) -> String {
    match messages_to_chat(v.to_string().as_bytes()) {
        Err(TranslateError::Request(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn refusal_to_messages(v: Value) -> String {
    match chat_to_messages(v.to_string().as_bytes()) {
        Err(TranslateError::Request(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_messages_request_becomes_chat() {
    let got = chat(json!({
        "model": "m", "max_tokens": 100, "stream": true, "temperature": 0.5,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["END"],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": false},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ]}
        ]
    }));
    assert_eq!(
        got,
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "Checking."}],
                 "tool_calls": [{"id": "toolu_1", "type": "function",
                                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "content": "18C", "tool_call_id": "toolu_1"},
                {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
                {"role": "tool", "content": "Error: a\nb", "tool_call_id": "toolu_2"}
            ],
            "max_completion_tokens": 100,
            "stop": ["END"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "user": "u-1"
        })
    );
}

#[test]
fn a_chat_request_becomes_messages() {
    let got = messages(json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}}
            ]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "thanks"}
        ],
        "stop": "END", "stream": true, "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": false,
        "user": "u-1", "n": 1, "presence_penalty": 0
    }));
    assert_eq!(
        got,
        json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "f", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "two"},
                    {"type": "text", "text": "thanks"}
                ]}
            ],
            "max_tokens": DEFAULT_MAX_TOKENS,
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
            "metadata": {"user_id": "u-1"},
            "stop_sequences": ["END"],
            "stream": true,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true}
        })
    );
}

#[test]
fn what_has_no_equivalent_is_refused_by_name() {
    let base =
        || json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    assert!(refusal_to_chat(with("top_k", json!(5))).contains("`top_k` cannot be translated"));
    assert!(
        refusal_to_chat(with(
            "thinking",
            json!({"type": "enabled", "budget_tokens": 1024})
        ))
        .contains("`thinking`")
    );
    assert!(
        chat(with("thinking", json!({"type": "disabled"})))
            .get("thinking")
            .is_none()
    );
    assert!(
        refusal_to_chat(with(
            "tools",
            json!([{"type": "web_search_20250305", "name": "web_search", "input_schema": {}}])
        ))
        .contains("server tool `web_search`")
    );
    let doc = with(
        "messages",
        json!([{"role": "user", "content": [{"type": "document", "source": {}}]}]),
    );
    let m = refusal_to_chat(doc);
    assert!(
        m.contains("at `messages[0].content`") && m.contains("unknown variant `document`"),
        "{m}"
    );
    let m = refusal_to_chat(with("container", json!("c")));
    assert!(m.contains("unknown field `container`"), "{m}");
    let m = refusal_to_chat(with("max_tokens", json!("a secret prompt")));
    assert!(
        m.contains("at `max_tokens`") && !m.contains("secret"),
        "{m}"
    );

    let chat_base = || json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let chat_with = |k: &str, v: Value| {
        let mut b = chat_base();
        b[k] = v;
        b
    };
    assert!(refusal_to_messages(chat_with("n", json!(2))).contains("`n` other than 1"));
    assert!(refusal_to_messages(chat_with("logprobs", json!(true))).contains("`logprobs`"));
    assert!(
        refusal_to_messages(chat_with("response_format", json!({"type": "json_object"})))
            .contains("`response_format`")
    );
    assert!(refusal_to_messages(chat_with("seed", json!(1))).contains("unknown field `seed`"));
    assert!(
        refusal_to_messages(chat_with(
            "messages",
            json!([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])
        ))
        .contains("a system message after the conversation started")
    );
    assert!(
        refusal_to_messages(chat_with(
            "messages",
            json!([{"role": "user", "content": "a", "name": "bob"}])
        ))
        .contains("`messages[0].name`")
    );
    assert!(
        refusal_to_messages(chat_with(
            "messages",
            json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}])
        ))
        .contains("not a JSON object")
    );
    assert!(
        refusal_to_messages(chat_with(
            "messages",
            json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
        ))
        .contains("unknown variant `input_audio`")
    );
}

#[test]
fn count_tokens_estimates_text_and_images() {
    let body = json!({"model": "m", "system": "abcd",
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "12345678"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    ]}]});
    assert_eq!(
        estimate_input_tokens(body.to_string().as_bytes()),
        Ok(3 + IMAGE_TOKENS)
    );
    assert!(estimate_input_tokens(br#"{"model":"m","messages":[],"top_k":1}"#).is_err());
    assert!(
        estimate_input_tokens(br#"{"model":"m","max_tokens":5,"messages":[],"top_k":1}"#).is_err()
    );
}

/// A conversation in the subset both APIs share: alternating turns, the user's tool results
/// first, non-empty texts.
fn conversation() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z0-9 .,!?\n\"\\\\é]{1,20}";
    let user = (
        proptest::collection::vec(("[a-z0-9_]{1,8}", text), 0..3),
        proptest::collection::vec(text, 0..3),
    )
        .prop_filter("a turn has content", |(r, t)| {
            !r.is_empty() || !t.is_empty()
        })
        .prop_map(|(results, texts)| {
            let mut blocks: Vec<Value> = results
                .into_iter()
                .map(|(id, c)| json!({"type": "tool_result", "tool_use_id": id, "content": c}))
                .collect();
            blocks.extend(
                texts
                    .into_iter()
                    .map(|t| json!({"type": "text", "text": t})),
            );
            json!({"role": "user", "content": blocks})
        });
    let assistant = (
        proptest::collection::vec(text, 0..3),
        proptest::collection::vec(("[a-z0-9_]{1,8}", "[a-z]{1,8}", any::<i32>()), 0..3),
    )
        .prop_filter("a turn has content", |(t, c)| {
            !t.is_empty() || !c.is_empty()
        })
        .prop_map(|(texts, calls)| {
            let mut blocks: Vec<Value> = texts
                .into_iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            blocks.extend(calls.into_iter().map(|(id, name, x)| {
                json!({"type": "tool_use", "id": id, "name": name, "input": {"x": x}})
            }));
            json!({"role": "assistant", "content": blocks})
        });
    (
        proptest::collection::vec((user, assistant), 1..4),
        proptest::option::of(text),
        proptest::option::of(proptest::collection::vec("[A-Z]{1,5}", 1..3)),
        1u64..100_000,
        any::<bool>(),
    )
        .prop_map(|(turns, system, stop, max_tokens, stream)| {
            let messages: Vec<Value> = turns.into_iter().flat_map(|(u, a)| [u, a]).collect();
            let mut req = json!({"model": "m", "messages": messages, "max_tokens": max_tokens, "stream": stream});
            if let Some(s) = system {
                req["system"] = json!([{"type": "text", "text": s}]);
            }
            if let Some(s) = stop {
                req["stop_sequences"] = json!(s);
            }
            req
        })
}

proptest! {
    /// A Messages request in the shared subset comes back the same after a trip through
    /// Chat Completions: nothing is lost or reordered either way.
    #[test]
    fn messages_survive_a_round_trip_through_chat(req in conversation()) {
        let there = messages_to_chat(req.to_string().as_bytes()).unwrap();
        let back: Value = serde_json::from_slice(&chat_to_messages(&there).unwrap()).unwrap();
        prop_assert_eq!(back, req);
    }

    /// Arbitrary JSON never panics either way; what is refused is refused as a request error.
    #[test]
    fn arbitrary_bodies_are_translated_or_refused(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        for result in [messages_to_chat(&body), chat_to_messages(&body)] {
            prop_assert!(matches!(result, Ok(_) | Err(TranslateError::Request(_))));
        }
    }
}
