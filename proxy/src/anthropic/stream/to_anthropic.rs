//! A Chat Completions stream as Anthropic's events (a `/v1/messages` client, an `openai`
//! upstream), chunk by chunk: `message_start` at the first chunk; text and each tool call as
//! their own block (`content_block_start`, deltas, `content_block_stop`); `message_delta`
//! with the stop reason and usage, then `message_stop`, at `[DONE]` (the usage chunk comes
//! just before it).
//!
//! Nothing is accumulated: text and tool arguments go out as they come. A tool call's
//! arguments after another call started (OpenAI never interleaves calls) would need the
//! earlier block reopened, which Anthropic's order does not allow: the stream ends with an
//! error event instead.

use bytes::BytesMut;
use serde_json::json;

use super::super::chat::{ChatUsage, Chunk};
use super::super::response::stop_reason;
use super::{Usage, anthropic_error, anthropic_event};

/// The block open now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text,
    /// A tool call, by OpenAI's index.
    Tool(u64),
}

/// The translator of one stream.
#[derive(Debug, Default)]
pub struct ToAnthropic {
    started: bool,
    open: Option<Open>,
    /// Blocks started so far (the next block's index).
    blocks: u64,
    stop_reason: Option<&'static str>,
    usage: Option<ChatUsage>,
    ended: bool,
}

impl ToAnthropic {
    /// Translates one event's data (`[DONE]` or a chunk) into `out`.
    pub fn event(&mut self, data: &str, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if data.trim() == "[DONE]" {
            return self.end(out);
        }
        // An error event (the upstream's, or the proxy's own for a broken stream).
        if let Some(message) = super::error_message(data) {
            return self.fail(&message, out);
        }
        let Ok(chunk) = serde_json::from_str::<Chunk>(data) else {
            return self.fail(
                "The upstream sent an event that is not a chat completion chunk.",
                out,
            );
        };
        if !self.started {
            self.started = true;
            anthropic_event(
                out,
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": chunk.id, "type": "message", "role": "assistant", "model": chunk.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            );
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        // Only one choice is ever asked for.
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return;
        };
        let delta = choice.delta;
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.open_block(Open::Text, out, |index| {
                    json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}})
                });
                self.delta(out, json!({"type": "text_delta", "text": text}));
            }
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let function = call.function.unwrap_or_default();
            if let Some(id) = call.id {
                let name = function.name.unwrap_or_default();
                self.open_block(Open::Tool(call.index), out, |index| {
                    json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})
                });
            } else if self.open != Some(Open::Tool(call.index)) {
                return self.fail(
                    "The upstream interleaved the arguments of several tool calls, which \
                     Anthropic's stream cannot carry.",
                    out,
                );
            }
            if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
                self.delta(
                    out,
                    json!({"type": "input_json_delta", "partial_json": args}),
                );
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.close(out);
            self.stop_reason = Some(stop_reason(Some(&reason)));
        }
    }

    /// The upstream's stream ended. Without `[DONE]` but after a finish reason it still ends
    /// well; before one, with an error event.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if self.stop_reason.is_some() {
            self.end(out);
        } else {
            self.fail("The upstream's stream ended before the answer did.", out);
        }
    }

    /// Ends the stream with Anthropic's error event.
    pub fn fail(&mut self, message: &str, out: &mut BytesMut) {
        if !self.ended {
            self.ended = true;
            anthropic_error(out, "api_error", message);
        }
    }

    /// The answer's usage, once reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        })
    }

    fn open_block(
        &mut self,
        block: Open,
        out: &mut BytesMut,
        start: impl FnOnce(u64) -> serde_json::Value,
    ) {
        if self.open == Some(block) {
            return;
        }
        self.close(out);
        anthropic_event(out, "content_block_start", &start(self.blocks));
        self.open = Some(block);
        self.blocks += 1;
    }

    fn delta(&self, out: &mut BytesMut, delta: serde_json::Value) {
        anthropic_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}),
        );
    }

    fn close(&mut self, out: &mut BytesMut) {
        if self.open.take().is_some() {
            anthropic_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.blocks - 1}),
            );
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        if !self.started {
            return self.fail(
                "The upstream's stream ended before the answer started.",
                out,
            );
        }
        self.close(out);
        self.ended = true;
        let usage = self.usage.unwrap_or_default();
        anthropic_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}}),
        );
        anthropic_event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}
