//! Requests across the two APIs: a Messages body as a Chat Completions body ([`to_chat`]) and
//! back ([`to_messages`]), and the token estimate `count_tokens` answers for an `openai`
//! upstream (which has no such endpoint).

mod to_chat;
mod to_messages;

#[cfg(test)]
use to_messages::DEFAULT_MAX_TOKENS;

use super::wire::{Block, Content, MessagesRequest};
use super::{Api, TranslateError, chat::ChatRequest, parse};

/// A `/v1/messages` body as a `/v1/chat/completions` body.
pub fn messages_to_chat(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let req: MessagesRequest = parse(Api::Messages, body)?;
    to_json(&to_chat::to_chat(req)?)
}

/// A `/v1/chat/completions` body as a `/v1/messages` body.
pub fn chat_to_messages(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let req: ChatRequest = parse(Api::Chat, body)?;
    to_json(&to_messages::to_messages(req)?)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(value).map_err(|e| TranslateError::Request(e.to_string()))
}

/// Tokens an image is counted as: Anthropic's figure for an image at its largest size
/// (1092 × 1092 pixels, about 1,600 tokens); smaller images cost less.
pub const IMAGE_TOKENS: u64 = 1600;

/// An estimate of a Messages request's input tokens, for `count_tokens` when the model's
/// upstream is OpenAI-compatible: the characters of its text (system prompt, messages, tool
/// calls and results, tool definitions) over four, plus [`IMAGE_TOKENS`] per image. The same
/// rule of thumb the proxy charges budgets with before an answer reports real usage; a
/// request that could not be translated is refused as `/v1/messages` would refuse it.
pub fn estimate_input_tokens(body: &[u8]) -> Result<u64, TranslateError> {
    let req: MessagesRequest = parse(Api::Messages, body)?;
    // Refused as `/v1/messages` would refuse it (a count has no `max_tokens`).
    to_chat::to_chat(MessagesRequest {
        max_tokens: Some(1),
        ..req.clone()
    })?;
    let mut chars = 0usize;
    let mut images = 0u64;
    let mut content = |c: &Content| match c {
        Content::Text(s) => chars += s.chars().count(),
        Content::Blocks(blocks) => {
            for b in blocks {
                match b {
                    Block::Text(t) => chars += t.text.chars().count(),
                    Block::Image(_) => images += 1,
                    Block::ToolUse(u) => chars += u.name.len() + u.input.to_string().len(),
                    Block::ToolResult(r) => match &r.content {
                        Some(Content::Text(s)) => chars += s.chars().count(),
                        Some(Content::Blocks(inner)) => {
                            for b in inner {
                                match b {
                                    Block::Text(t) => chars += t.text.chars().count(),
                                    _ => images += 1,
                                }
                            }
                        }
                        None => {}
                    },
                }
            }
        }
    };
    if let Some(system) = &req.system {
        content(system);
    }
    for m in &req.messages {
        content(&m.content);
    }
    for t in req.tools.iter().flatten() {
        chars += t.name.len()
            + t.description.as_deref().map_or(0, str::len)
            + t.input_schema.to_string().len();
    }
    Ok((chars as u64)
        .div_ceil(4)
        .saturating_add(images.saturating_mul(IMAGE_TOKENS)))
}

#[cfg(test)]
mod tests;
