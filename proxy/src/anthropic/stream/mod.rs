//! Streams across the two APIs, one upstream event at a time (state machines over parsed
//! server-sent events; nothing of the answer is buffered): Chat Completions chunks as
//! Anthropic's events ([`ToAnthropic`]) and back ([`ToChat`]), and the usage of an Anthropic
//! stream relayed as it is ([`AnthropicUsage`]: input from `message_start`, output from
//! `message_delta`).

#[cfg(test)]
mod tests;
mod to_anthropic;
mod to_chat;

pub use to_anthropic::ToAnthropic;
pub use to_chat::ToChat;

use bytes::BytesMut;
use serde::Serialize;
use serde_json::Value;

pub use crate::observability::facts::Usage;

use super::wire::{DeltaUsage, Event};

/// Writes one Anthropic event (`event:` line and JSON `data:`).
fn anthropic_event(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

/// Writes Anthropic's error event.
pub fn anthropic_error(out: &mut BytesMut, kind: &str, message: &str) {
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(super::error::error_json(kind, message).as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Writes one OpenAI `data:` event.
fn openai_data(out: &mut BytesMut, data: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

/// Writes OpenAI's error event (what OpenAI's SDKs raise as an API error mid-stream).
pub fn openai_error(out: &mut BytesMut, message: &str, kind: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(
        crate::error_answer::error_json(message, kind, None, "upstream_stream_error").as_bytes(),
    );
    out.extend_from_slice(b"\n\n");
}

/// `error.message` of an error event's data, in either API's shape.
fn error_message(data: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data).ok()?;
    v.get("error")?.get("message")?.as_str().map(str::to_owned)
}

/// The usage of an Anthropic stream relayed as it is: only `message_start` and
/// `message_delta` are parsed (by their `event:` name), every other event is passed over.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnthropicUsage {
    input: Option<u64>,
    output: u64,
}

impl AnthropicUsage {
    /// Reads one event (`name`: its `event:` field).
    pub fn event(&mut self, name: Option<&str>, data: &str) {
        if !matches!(name, Some("message_start" | "message_delta")) {
            return;
        }
        match serde_json::from_str::<Event>(data) {
            Ok(Event::MessageStart { message }) => {
                self.input = Some(message.usage.all_input());
                self.output = message.usage.output_tokens;
            }
            Ok(Event::MessageDelta { usage, .. }) => self.delta(usage),
            _ => {}
        }
    }

    fn delta(&mut self, usage: DeltaUsage) {
        self.output = usage.output_tokens;
        if let Some(input) = usage.input_tokens {
            self.input = Some(
                input
                    .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0))
                    .saturating_add(usage.cache_read_input_tokens.unwrap_or(0)),
            );
        }
    }

    /// The usage, once `message_start` was seen.
    pub fn usage(&self) -> Option<Usage> {
        self.input.map(|input| Usage {
            prompt_tokens: input,
            completion_tokens: self.output,
        })
    }
}
