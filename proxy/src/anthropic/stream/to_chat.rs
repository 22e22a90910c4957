//! Anthropic's stream events as Chat Completions chunks (a `/v1/chat/completions` client, an
//! `anthropic` upstream), event by event: `message_start` gives the first chunk (the role),
//! text and tool-argument deltas one chunk each, `message_delta` the finish reason, and
//! `message_stop` the usage chunk (when the client asked for it) and `[DONE]`. Thinking is
//! never asked for; its deltas, like `ping`, give nothing.

use std::collections::HashMap;

use bytes::BytesMut;
use serde_json::{Value, json};

use super::super::response::finish_reason;
use super::super::wire::{Delta, Event, ResponseBlock};
use super::{Usage, openai_data, openai_error};

/// Tool blocks a stream may open: one tool call each, bounded so a hostile upstream cannot
/// grow the map.
const MAX_TOOL_CALLS: usize = 1024;

/// The translator of one stream.
#[derive(Debug)]
pub struct ToChat {
    created: u64,
    include_usage: bool,
    id: String,
    model: String,
    /// Anthropic's block index → OpenAI's tool call index.
    tools: HashMap<u64, u64>,
    input: u64,
    output: u64,
    ended: bool,
}

impl ToChat {
    /// A translator; `created` is now (Unix seconds), `include_usage` whether the client asked
    /// for the usage chunk.
    pub fn new(created: u64, include_usage: bool) -> Self {
        Self {
            created,
            include_usage,
            id: String::new(),
            model: String::new(),
            tools: HashMap::new(),
            input: 0,
            output: 0,
            ended: false,
        }
    }

    /// Translates one event's data into `out`.
    pub fn event(&mut self, data: &str, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        let event: Event = match serde_json::from_str(data) {
            Ok(e) => e,
            // Events this proxy does not know (the API grows): nothing to say in Chat's terms.
            Err(_) if is_unknown_type(data) => return,
            Err(_) => {
                return self.fail(
                    "The upstream sent an event that is not one of Anthropic's stream events.",
                    out,
                );
            }
        };
        match event {
            Event::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.input = message.usage.all_input();
                self.output = message.usage.output_tokens;
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ResponseBlock::Text { text } if !text.is_empty() => {
                    self.chunk(out, json!({"content": text}), None);
                }
                ResponseBlock::Text { .. }
                | ResponseBlock::Thinking {}
                | ResponseBlock::RedactedThinking {} => {}
                ResponseBlock::ToolUse { id, name, .. } => {
                    if self.tools.len() >= MAX_TOOL_CALLS {
                        return self.fail("The upstream started too many tool calls.", out);
                    }
                    let n = self.tools.len() as u64;
                    self.tools.insert(index, n);
                    self.chunk(
                        out,
                        json!({"tool_calls": [{"index": n, "id": id, "type": "function",
                            "function": {"name": name, "arguments": ""}}]}),
                        None,
                    );
                }
                ResponseBlock::Other => self.fail(
                    "The upstream started a content block Chat Completions cannot carry.",
                    out,
                ),
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                Delta::TextDelta { text } => self.chunk(out, json!({"content": text}), None),
                Delta::InputJsonDelta { partial_json } => {
                    let Some(&n) = self.tools.get(&index) else {
                        return self.fail("The upstream sent arguments for no tool call.", out);
                    };
                    self.chunk(
                        out,
                        json!({"tool_calls": [{"index": n, "function": {"arguments": partial_json}}]}),
                        None,
                    );
                }
                Delta::Other => {}
            },
            Event::ContentBlockStop { .. } | Event::Ping {} => {}
            Event::MessageDelta { delta, usage } => {
                self.output = usage.output_tokens;
                if let Some(input) = usage.input_tokens {
                    self.input = input
                        .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0))
                        .saturating_add(usage.cache_read_input_tokens.unwrap_or(0));
                }
                let reason = finish_reason(delta.stop_reason.as_deref());
                self.chunk(out, json!({}), Some(reason));
            }
            Event::MessageStop {} => {
                self.ended = true;
                if self.include_usage {
                    let usage = self.usage();
                    openai_data(
                        out,
                        &json!({"id": self.id, "object": "chat.completion.chunk",
                            "created": self.created, "model": self.model, "choices": [],
                            "usage": {"prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens)}}),
                    );
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Event::Error { error } => {
                self.ended = true;
                openai_error(out, &error.message, &error.kind);
            }
        }
    }

    /// The upstream's stream ended; without `message_stop` that is an error.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if !self.ended {
            self.fail("The upstream's stream ended before the answer did.", out);
        }
    }

    /// Ends the stream with OpenAI's error event.
    pub fn fail(&mut self, message: &str, out: &mut BytesMut) {
        if !self.ended {
            self.ended = true;
            openai_error(out, message, "server_error");
        }
    }

    /// The stream was ended by someone else (the proxy's own error event): nothing more.
    pub fn stop(&mut self) {
        self.ended = true;
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.input,
            completion_tokens: self.output,
        }
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        openai_data(
            out,
            &json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        );
    }
}

/// An event whose `type` this proxy does not know (as opposed to a broken one).
fn is_unknown_type(data: &str) -> bool {
    const KNOWN: [&str; 8] = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ];
    serde_json::from_str::<Value>(data).is_ok_and(|v| {
        v.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !KNOWN.contains(&t))
    })
}
