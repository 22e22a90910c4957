//! The request side of a mid-stream failover: whether the client's request allows continuing
//! on another upstream at all, and the body that asks the next upstream to continue.
//!
//! The continuation is the request the broken upstream got, unchanged, with two messages
//! appended: the text already delivered as an `assistant` message, then a `user` message
//! holding [`INSTRUCTION`]. `max_completion_tokens` / `max_tokens`, when set, are lowered by
//! the tokens the broken attempts already produced (at least 1 is left). Nothing else changes.

use serde_json::{Map, Value, json};

use super::Refusal;

/// What the next upstream is asked, after the delivered text, word for word.
pub const INSTRUCTION: &str = "Your previous answer was cut off. Continue it from exactly \
where it stopped, even in the middle of a word or sentence: do not repeat any of it, do not \
mention the interruption, and keep the same language, format and style.";

/// Why the request itself rules continuing out, checked when a stream breaks: several
/// choices (`n` > 1) cannot be continued one by one, log probabilities would be another
/// model's, and a response format or JSON schema cannot be resumed half-way by prefill.
pub fn refusal(body: &[u8]) -> Option<Refusal> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Some(Refusal::NotChat);
    };
    if !request.get("messages").is_some_and(Value::is_array) {
        return Some(Refusal::NotChat);
    }
    if request.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Some(Refusal::Choices);
    }
    let logprobs = request.get("logprobs").and_then(Value::as_bool) == Some(true);
    if logprobs
        || !request
            .get("top_logprobs")
            .unwrap_or(&Value::Null)
            .is_null()
    {
        return Some(Refusal::Logprobs);
    }
    let format = request.get("response_format").unwrap_or(&Value::Null);
    if !(format.is_null() || format.get("type").and_then(Value::as_str) == Some("text")) {
        return Some(Refusal::ResponseFormat);
    }
    None
}

/// The body sent to the next upstream: `sent` (the body the broken upstream got) plus the
/// delivered text and [`INSTRUCTION`]; with nothing delivered yet, `sent` as it is. `used` is
/// the completion tokens the broken attempts produced. `None` when `sent` is not a JSON object
/// with a `messages` list ([`refusal`] is asked first, so this does not happen in practice).
pub fn continuation(sent: &[u8], delivered: &str, used: u64) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(sent) else {
        return None;
    };
    let messages = request.get_mut("messages")?.as_array_mut()?;
    if delivered.is_empty() {
        return Some(sent.to_vec());
    }
    messages.push(json!({ "role": "assistant", "content": delivered }));
    messages.push(json!({ "role": "user", "content": INSTRUCTION }));
    lower_maximum(&mut request, used);
    serde_json::to_vec(&request).ok()
}

fn lower_maximum(request: &mut Map<String, Value>, used: u64) {
    for key in ["max_completion_tokens", "max_tokens"] {
        if let Some(max) = request.get(key).and_then(Value::as_u64) {
            request.insert(key.into(), json!(max.saturating_sub(used).max(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rules_continuing_out() {
        let cases = [
            (r#"{"messages":[],"n":2}"#, Some(Refusal::Choices)),
            (r#"{"messages":[],"n":1}"#, None),
            (
                r#"{"messages":[],"logprobs":true}"#,
                Some(Refusal::Logprobs),
            ),
            (r#"{"messages":[],"logprobs":false}"#, None),
            (
                r#"{"messages":[],"top_logprobs":2}"#,
                Some(Refusal::Logprobs),
            ),
            (
                r#"{"messages":[],"response_format":{"type":"json_object"}}"#,
                Some(Refusal::ResponseFormat),
            ),
            (
                r#"{"messages":[],"response_format":{"type":"json_schema","json_schema":{}}}"#,
                Some(Refusal::ResponseFormat),
            ),
            (r#"{"messages":[],"response_format":{"type":"text"}}"#, None),
            (r#"{"messages":[],"response_format":null}"#, None),
            (r#"{"messages":[],"tools":[{"type":"function"}]}"#, None),
            (r#"{"prompt":"legacy completions"}"#, Some(Refusal::NotChat)),
            ("not json", Some(Refusal::NotChat)),
        ];
        for (body, want) in cases {
            assert_eq!(refusal(body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn the_continuation_appends_the_delivered_text_and_the_instruction() {
        let sent = br#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Count."}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"temperature":0.7}"#;
        let body = continuation(sent, "one two th", 3).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["messages"],
            json!([
                {"role":"system","content":"Be brief."},
                {"role":"user","content":"Count."},
                {"role":"assistant","content":"one two th"},
                {"role":"user","content":INSTRUCTION},
            ])
        );
        assert_eq!(v["max_tokens"], 97);
        assert_eq!(v["temperature"], 0.7);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "m");
    }

    #[test]
    fn the_maximum_never_drops_to_zero_and_nothing_delivered_sends_the_request_as_it_was() {
        let sent = br#"{"messages":[{"role":"user","content":"x"}],"max_completion_tokens":2}"#;
        let v: Value = serde_json::from_slice(&continuation(sent, "abc", 9).unwrap()).unwrap();
        assert_eq!(v["max_completion_tokens"], 1);
        assert_eq!(continuation(sent, "", 0).unwrap(), sent.to_vec());
        assert_eq!(continuation(b"[1]", "abc", 1), None);
        assert_eq!(continuation(br#"{"prompt":"x"}"#, "abc", 1), None);
    }
}
