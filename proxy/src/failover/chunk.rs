//! One server-sent event of a chat completion stream, read for what a failover needs: the
//! ids, the text, whether a tool call or the end has begun, the usage. The first attempt's
//! events are only looked at (borrowed, nothing rewritten); a continuing attempt's events are
//! rewritten, so they are read whole.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// What one event's `data` is.
pub enum Event<'a> {
    /// A `chat.completion.chunk` (or anything else that is a JSON object without `error`).
    Chunk(Peek<'a>),
    /// `{"error":{…}}`: the upstream ends the stream with an error (e.g. `overloaded`).
    Error,
    /// `[DONE]`.
    Done,
    /// Not JSON (a comment, another event type): passed on, never looked into.
    Other,
}

/// The fields of a chunk a failover reads, borrowed from the event.
#[derive(Default, Deserialize)]
pub struct Peek<'a> {
    /// The completion id, as written.
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    /// Its creation time, as written.
    #[serde(borrow, default)]
    pub created: Option<&'a RawValue>,
    /// The model that answered, as written.
    #[serde(borrow, default)]
    pub model: Option<&'a RawValue>,
    /// The choices (one: `n` > 1 is never continued).
    #[serde(borrow, default)]
    pub choices: Option<Vec<Choice<'a>>>,
    /// Present in an error event.
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// One choice of a chunk.
#[derive(Default, Deserialize)]
pub struct Choice<'a> {
    /// What this chunk adds.
    #[serde(borrow, default)]
    pub delta: Option<Delta<'a>>,
    /// Set once, on the choice's last chunk.
    #[serde(borrow, default)]
    pub finish_reason: Option<std::borrow::Cow<'a, str>>,
}

/// What a chunk adds to the answer.
#[derive(Default, Deserialize)]
pub struct Delta<'a> {
    /// `assistant`, on the first chunk.
    #[serde(borrow, default)]
    pub role: Option<std::borrow::Cow<'a, str>>,
    /// Text.
    #[serde(borrow, default)]
    pub content: Option<std::borrow::Cow<'a, str>>,
    /// A tool call's name or arguments.
    #[serde(default)]
    pub tool_calls: Option<IgnoredAny>,
    /// The older function call's name or arguments.
    #[serde(default)]
    pub function_call: Option<IgnoredAny>,
}

impl<'a> Event<'a> {
    /// Reads one event's `data` (the `data:` lines' content, joined).
    pub fn read(data: &'a [u8]) -> Self {
        if data.trim_ascii() == b"[DONE]" {
            return Self::Done;
        }
        match serde_json::from_slice::<Peek<'a>>(data) {
            Ok(peek) if peek.error.is_some() && peek.choices.is_none() => Self::Error,
            Ok(peek) => Self::Chunk(peek),
            Err(_) => Self::Other,
        }
    }
}

impl Peek<'_> {
    /// The first choice's delta and finish reason (`n` is 1 whenever a failover may happen).
    pub fn first(&self) -> Option<&Choice<'_>> {
        self.choices.as_ref()?.first()
    }
}

impl Delta<'_> {
    /// A tool or function call is being streamed.
    pub fn calls(&self) -> bool {
        self.tool_calls.is_some() || self.function_call.is_some()
    }
}

/// The first choice of a chunk being rewritten, and its delta.
pub fn first_choice(chunk: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    chunk
        .get_mut("choices")?
        .as_array_mut()?
        .first_mut()?
        .as_object_mut()
}

/// A rewritten chunk that says nothing: no text, call, role, finish reason, usage or
/// log probabilities (what a continuing upstream's opening `role` chunk becomes).
pub fn is_empty(chunk: &Map<String, Value>) -> bool {
    let usage = chunk.get("usage").is_some_and(|u| !u.is_null());
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return !usage;
    };
    !usage
        && choices.iter().all(|c| {
            let delta_empty = c.get("delta").and_then(Value::as_object).is_none_or(|d| {
                d.iter()
                    .all(|(k, v)| v.is_null() || (k == "content" && v.as_str() == Some("")))
            });
            delta_empty
                && c.get("finish_reason").is_none_or(Value::is_null)
                && c.get("logprobs").is_none_or(Value::is_null)
        })
}

/// `data: <json>` and the blank line that ends the event.
pub fn frame(chunk: &Map<String, Value>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    // A map of JSON values always serializes.
    let _ = serde_json::to_writer(&mut *out, chunk);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart() {
        assert!(matches!(Event::read(b"[DONE]"), Event::Done));
        assert!(matches!(
            Event::read(br#"{"error":{"message":"overloaded","code":"overloaded"}}"#),
            Event::Error
        ));
        assert!(matches!(Event::read(b": keep-alive"), Event::Other));
        let data = br#"{"id":"c1","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"hi","tool_calls":null},"finish_reason":null}],"usage":null}"#;
        let Event::Chunk(peek) = Event::read(data) else {
            panic!("not a chunk")
        };
        assert_eq!(peek.id.map(RawValue::get), Some(r#""c1""#));
        assert_eq!(peek.created.map(RawValue::get), Some("7"));
        let delta = peek.first().and_then(|c| c.delta.as_ref()).unwrap();
        assert_eq!(delta.content.as_deref(), Some("hi"));
        assert!(!delta.calls(), "a null tool_calls is no call");
    }

    #[test]
    fn a_role_chunk_is_empty_once_its_role_is_gone() {
        let empty: Map<String, Value> = serde_json::from_str(
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        )
        .unwrap();
        assert!(is_empty(&empty));
        for full in [
            r#"{"choices":[{"delta":{"content":"a"}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
        ] {
            let chunk: Map<String, Value> = serde_json::from_str(full).unwrap();
            assert!(!is_empty(&chunk), "{full}");
        }
    }
}
