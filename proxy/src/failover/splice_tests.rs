//! The splice driven by chunks shaped like OpenAI's, checked on what a client would read.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// A content chunk as upstream `up` writes it.
fn text(up: &str, t: &str) -> Vec<u8> {
    chunk(up, json!({ "content": t }), Value::Null)
}

fn role(up: &str) -> Vec<u8> {
    chunk(
        up,
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )
}

fn finish(up: &str) -> Vec<u8> {
    chunk(up, json!({}), json!("stop"))
}

fn usage(up: &str, prompt: u64, completion: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("chatcmpl-{up}"), "object": "chat.completion.chunk",
        "created": if up == "a" { 100 } else { 200 }, "model": format!("model-{up}"),
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }))
    .unwrap()
}

fn chunk(up: &str, delta: Value, finish: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("chatcmpl-{up}"), "object": "chat.completion.chunk",
        "created": if up == "a" { 100 } else { 200 }, "model": format!("model-{up}"),
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    }))
    .unwrap()
}

const ERROR: &[u8] =
    br#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":"overloaded"}}"#;

/// What the client reads: the data of every event sent.
#[derive(Default)]
struct Client(Vec<Value>);

impl Client {
    fn feed(&mut self, s: &mut Splice, data: &[u8]) -> Out {
        let out = s.event(data);
        match &out {
            Out::Same => self.0.push(
                serde_json::from_slice(data)
                    .unwrap_or_else(|_| json!(String::from_utf8_lossy(data))),
            ),
            Out::Send(bytes) => {
                let text = std::str::from_utf8(bytes).unwrap();
                for event in text.split_terminator("\n\n") {
                    let data = event.strip_prefix("data: ").expect("one data line");
                    self.0.push(serde_json::from_str(data).unwrap());
                }
            }
            Out::Failed => {}
        }
        out
    }

    fn text(&self) -> String {
        self.0
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    fn chunks(&self) -> Vec<&Value> {
        self.0.iter().filter(|c| c.is_object()).collect()
    }
}

#[test]
fn a_continued_answer_reads_as_one() {
    let (mut s, mut client) = (Splice::default(), Client::default());
    for data in [role("a"), text("a", "The quick "), text("a", "brown")] {
        assert_eq!(client.feed(&mut s, &data), Out::Same);
    }
    let handover = s.fail().unwrap();
    assert_eq!(
        handover,
        Handover {
            delivered: "The quick brown",
            used: 4
        }
    );
    for data in [
        role("b"),
        text("b", " fox"),
        text("b", " jumps."),
        finish("b"),
    ] {
        client.feed(&mut s, &data);
    }
    client.feed(&mut s, &usage("b", 200, 3));
    client.feed(&mut s, b"[DONE]");

    assert_eq!(client.text(), "The quick brown fox jumps.");
    let chunks = client.chunks();
    assert_eq!(
        chunks.len(),
        7,
        "the continuing role chunk is not sent: {chunks:?}"
    );
    for c in &chunks {
        assert_eq!(
            (&c["id"], &c["created"], &c["model"]),
            (&json!("chatcmpl-a"), &json!(100), &json!("model-a"))
        );
    }
    let roles = chunks
        .iter()
        .filter(|c| !c["choices"][0]["delta"]["role"].is_null());
    assert_eq!(roles.count(), 1);
    let finishes = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null());
    assert_eq!(finishes.count(), 1);
    // Attempt a: 4 completion tokens (15 characters / 4), prompt 200 - 4 - the instruction.
    let a_prompt = 200 - 4 - INSTRUCTION_TOKENS;
    let want = Usage {
        prompt_tokens: 200 + a_prompt,
        completion_tokens: 3 + 4,
    };
    assert_eq!(s.usage(), Some(want));
    let reported = &chunks[6]["usage"];
    assert_eq!(reported["prompt_tokens"], want.prompt_tokens);
    assert_eq!(reported["completion_tokens"], want.completion_tokens);
    assert_eq!(
        reported["total_tokens"],
        want.prompt_tokens + want.completion_tokens
    );
    assert_eq!(client.0.last(), Some(&json!("[DONE]")));
}

#[test]
fn an_error_event_is_a_failure_on_every_attempt() {
    let mut s = Splice::default();
    assert_eq!(s.event(&text("a", "x")), Out::Same);
    assert_eq!(s.event(ERROR), Out::Failed);
    s.fail().unwrap();
    assert!(matches!(s.event(&text("b", "y")), Out::Send(_)));
    assert_eq!(s.event(ERROR), Out::Failed);
    assert_eq!(s.fail().unwrap().delivered, "xy");
}

#[test]
fn unsafe_states_refuse() {
    let call = chunk(
        "a",
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
        Value::Null,
    );
    let mut s = Splice::default();
    s.event(&text("a", "Let me look."));
    s.event(&call);
    assert_eq!(s.fail(), Err(Refusal::ToolCall));

    let legacy = chunk(
        "a",
        json!({"function_call": {"arguments": "{"}}),
        Value::Null,
    );
    let mut s = Splice::default();
    s.event(&legacy);
    assert_eq!(s.fail(), Err(Refusal::ToolCall));

    let mut s = Splice::default();
    s.event(&text("a", "Done."));
    s.event(&finish("a"));
    assert_eq!(s.fail(), Err(Refusal::Finished));

    let mut s = Splice::default();
    let long = "x".repeat(MAX_DELIVERED / 2 + 1);
    s.event(&text("a", &long));
    s.event(&text("a", &long));
    assert_eq!(s.fail(), Err(Refusal::TooLong));
    assert!(
        s.delivered().is_empty(),
        "the text is not kept once too long"
    );
}

#[test]
fn a_continuation_that_restarts_the_answer_is_not_repeated() {
    // All of it, across chunks, then more.
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &text("a", "Hello wor"));
    s.fail().unwrap();
    for t in ["Hello", " wor", "ld!"] {
        client.feed(&mut s, &text("b", t));
    }
    assert_eq!(client.text(), "Hello world!");

    // All of it and more in one chunk.
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &text("a", "Hello wor"));
    s.fail().unwrap();
    client.feed(&mut s, &text("b", "Hello world!"));
    assert_eq!(client.text(), "Hello world!");

    // A start that only looks like a repetition is sent, held part included.
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &text("a", "Hello wor"));
    s.fail().unwrap();
    for t in ["Hello", " there"] {
        client.feed(&mut s, &text("b", t));
    }
    assert_eq!(client.text(), "Hello worHello there");
    assert_eq!(s.delivered(), "Hello worHello there");

    // A repetition the upstream ends early is dropped with it.
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &text("a", "Hello wor"));
    s.fail().unwrap();
    client.feed(&mut s, &text("b", "Hello"));
    client.feed(&mut s, &finish("b"));
    assert_eq!(client.text(), "Hello wor");
    assert_eq!(client.chunks().len(), 2);
}

#[test]
fn nothing_delivered_continues_with_the_request_as_it_was() {
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &role("a"));
    let h = s.fail().unwrap();
    assert_eq!((h.delivered, h.used), ("", 0));
    for data in [role("b"), text("b", "Hi"), finish("b"), usage("b", 10, 1)] {
        client.feed(&mut s, &data);
    }
    assert_eq!(client.text(), "Hi");
    // The broken attempt had the same prompt (no instruction was added) and produced nothing.
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 20,
            completion_tokens: 1
        })
    );
}

#[test]
fn three_attempts_sum_their_usage() {
    let (mut s, mut client) = (Splice::default(), Client::default());
    client.feed(&mut s, &text("a", "one "));
    assert_eq!(s.fail().unwrap().used, 1);
    client.feed(&mut s, &text("b", "two "));
    client.feed(&mut s, &text("b", "three "));
    assert_eq!(s.fail().unwrap().used, 1 + 3);
    client.feed(&mut s, &text("c", "four"));
    client.feed(&mut s, &finish("c"));
    client.feed(&mut s, &usage("c", 100, 1));
    assert_eq!(client.text(), "one two three four");
    let i = INSTRUCTION_TOKENS;
    // Completions: a 1, b 3 (10 characters / 4), c 1. Prompts: c 100; b 100 - 3 (b's text,
    // which c's prompt has); a 100 - 4 - the instruction (which a's prompt lacked).
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 100 + (100 - 3) + (100 - 4 - i),
            completion_tokens: 1 + 3 + 1
        })
    );
}

proptest! {
    /// However the first attempt's text is cut and the second's is chunked, the client reads
    /// the first's delivered text followed by the second's, under the first's ids.
    #[test]
    fn the_client_reads_the_concatenation(
        first in proptest::collection::vec("[a-z ]{1,6}", 1..8),
        second in proptest::collection::vec("[A-Z.][A-Z. ]{0,5}", 1..8),
    ) {
        let (mut s, mut client) = (Splice::default(), Client::default());
        client.feed(&mut s, &role("a"));
        for t in &first {
            client.feed(&mut s, &text("a", t));
        }
        s.fail().unwrap();
        client.feed(&mut s, &role("b"));
        for t in &second {
            client.feed(&mut s, &text("b", t));
        }
        client.feed(&mut s, &finish("b"));
        client.feed(&mut s, b"[DONE]");
        prop_assert_eq!(client.text(), format!("{}{}", first.concat(), second.concat()));
        for c in client.chunks() {
            prop_assert_eq!(&c["id"], &json!("chatcmpl-a"));
        }
    }
}
