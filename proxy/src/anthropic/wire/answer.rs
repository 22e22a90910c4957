//! Anthropic's answers on the wire: a whole message, and a stream's events (read leniently:
//! a provider may add fields).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Role;

/// A non-streamed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    /// Its id.
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `assistant`.
    pub role: Role,
    /// The model that answered.
    pub model: String,
    /// What it said.
    pub content: Vec<ResponseBlock>,
    /// Why it stopped (`null` in a stream's `message_start`).
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    pub stop_sequence: Option<String>,
    /// Tokens used.
    pub usage: Usage,
}

/// A content block of an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// Its id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        input: Value,
    },
    /// Thinking (only when asked for, which a translated request never does).
    Thinking {},
    /// Redacted thinking (likewise).
    RedactedThinking {},
    /// Anything else (server tools: never asked for by a translated request).
    #[serde(other)]
    Other,
}

/// Token counts as Anthropic reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// Every input token, cached or not.
    pub fn all_input(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }
}

/// A stream event's data, by its `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The answer starts (empty content, input usage).
    MessageStart {
        /// The answer so far.
        message: MessageResponse,
    },
    /// A block starts.
    ContentBlockStart {
        /// Its position.
        index: u64,
        /// Its start.
        content_block: ResponseBlock,
    },
    /// More of a block.
    ContentBlockDelta {
        /// Its position.
        index: u64,
        /// What is added.
        delta: Delta,
    },
    /// A block ends.
    ContentBlockStop {
        /// Its position.
        index: u64,
    },
    /// The answer's end: why it stopped and the output usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: StopDelta,
        /// Cumulative usage.
        usage: DeltaUsage,
    },
    /// The stream ends.
    MessageStop {},
    /// Keep-alive.
    Ping {},
    /// An error in the middle of the stream.
    Error {
        /// What went wrong.
        error: ErrorBody,
    },
}

/// What a `content_block_delta` adds (the variants are Anthropic's type names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(
    clippy::enum_variant_names,
    reason = "named as Anthropic names them: text_delta, input_json_delta"
)]
pub enum Delta {
    /// Text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of a tool call's JSON arguments.
    InputJsonDelta {
        /// The piece.
        partial_json: String,
    },
    /// Anything else (thinking, signatures, citations: never asked for).
    #[serde(other)]
    Other,
}

/// Stop reason and sequence of `message_delta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopDelta {
    /// Why it stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Usage in `message_delta`: output always, input in newer versions of the API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Output tokens so far.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens, when reported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Cache writes, when reported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Cache reads, when reported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// Anthropic's error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `invalid_request_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong.
    pub message: String,
}
