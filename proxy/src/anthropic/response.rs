//! Whole (non-streamed) answers across the two APIs, and the mapping of stop reasons both
//! ways (used by the stream translators too).

use serde_json::Value;

use super::chat::{ChatResponse, ChatUsage, Choice, FunctionCall, ResponseMessage, ToolCall};
use super::wire::{MessageResponse, ResponseBlock, Role, Usage};
use super::{Api, TranslateError, parse};

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        // OpenAI does not say whether a stop sequence matched.
        _ => "end_turn",
    }
}

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Tool arguments (JSON text) as the object Anthropic carries; empty text is no arguments.
pub fn arguments(text: &str) -> Result<Value, TranslateError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(TranslateError::Answer(
            "The upstream answered with tool arguments that are not a JSON object.".into(),
        )),
    }
}

fn answer_error(api: Api, e: &TranslateError) -> TranslateError {
    let what = match api {
        Api::Chat => "chat completion",
        Api::Messages => "message",
    };
    TranslateError::Answer(format!("The upstream's answer is not a {what}: {e}"))
}

/// A `chat.completion` body as a Messages answer body.
pub fn chat_to_message(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let resp: ChatResponse = parse(Api::Chat, body).map_err(|e| answer_error(Api::Chat, &e))?;
    let choice =
        resp.choices.into_iter().next().ok_or_else(|| {
            TranslateError::Answer("The upstream answered with no choices.".into())
        })?;
    let m = choice.message;
    let mut content = Vec::new();
    content.extend(
        m.content
            .filter(|t| !t.is_empty())
            .map(|text| ResponseBlock::Text { text }),
    );
    let refused = m.refusal.is_some();
    content.extend(m.refusal.map(|text| ResponseBlock::Text { text }));
    for call in m.tool_calls.into_iter().flatten() {
        content.push(ResponseBlock::ToolUse {
            input: arguments(&call.function.arguments)?,
            id: call.id,
            name: call.function.name,
        });
    }
    let usage = resp.usage.unwrap_or_default();
    let out = MessageResponse {
        id: resp.id,
        kind: "message".into(),
        role: Role::Assistant,
        model: resp.model,
        content,
        stop_reason: Some(
            if refused {
                "refusal"
            } else {
                stop_reason(choice.finish_reason.as_deref())
            }
            .into(),
        ),
        stop_sequence: None,
        usage: Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cache_creation_input_tokens: None,
            cache_read_input_tokens: None,
        },
    };
    serde_json::to_vec(&out).map_err(|e| TranslateError::Answer(e.to_string()))
}

/// A Messages answer body as a `chat.completion` body (`created`: now, in Unix seconds).
pub fn message_to_chat(body: &[u8], created: u64) -> Result<Vec<u8>, TranslateError> {
    let resp: MessageResponse =
        parse(Api::Messages, body).map_err(|e| answer_error(Api::Messages, &e))?;
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for block in resp.content {
        match block {
            ResponseBlock::Text { text: t } => text.get_or_insert_with(String::new).push_str(&t),
            ResponseBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            // Never asked for by a translated request; Chat Completions has no place for it.
            ResponseBlock::Thinking {} | ResponseBlock::RedactedThinking {} => {}
            ResponseBlock::Other => {
                return Err(TranslateError::Answer(
                    "The upstream answered with a content block Chat Completions cannot carry."
                        .into(),
                ));
            }
        }
    }
    let input = resp.usage.all_input();
    let out = ChatResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: text,
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: None,
            },
            finish_reason: Some(finish_reason(resp.stop_reason.as_deref()).into()),
        }],
        usage: Some(ChatUsage {
            prompt_tokens: input,
            completion_tokens: resp.usage.output_tokens,
            total_tokens: input.saturating_add(resp.usage.output_tokens),
        }),
    };
    serde_json::to_vec(&out).map_err(|e| TranslateError::Answer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(b: Result<Vec<u8>, TranslateError>) -> Value {
        serde_json::from_slice(&b.unwrap()).unwrap()
    }

    #[test]
    fn a_chat_completion_becomes_a_message() {
        let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "system_fingerprint": "fp",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null,
                "message": {"role": "assistant", "content": "Let me check.", "refusal": null,
                    "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}});
        assert_eq!(
            v(chat_to_message(body.to_string().as_bytes())),
            json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "m",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 9, "output_tokens": 6}})
        );
        let bad = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}]}}]});
        assert!(matches!(
            chat_to_message(bad.to_string().as_bytes()),
            Err(TranslateError::Answer(_))
        ));
        assert!(matches!(
            chat_to_message(b"{}"),
            Err(TranslateError::Answer(_))
        ));
    }

    #[test]
    fn a_message_becomes_a_chat_completion() {
        let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "text", "text": "Hi "}, {"type": "text", "text": "there"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 7}});
        assert_eq!(
            v(message_to_chat(body.to_string().as_bytes(), 42)),
            json!({"id": "msg_1", "object": "chat.completion", "created": 42, "model": "claude",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Hi there",
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1]}"}}]}}],
                "usage": {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22}})
        );
        let server = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}});
        assert!(matches!(
            message_to_chat(server.to_string().as_bytes(), 0),
            Err(TranslateError::Answer(_))
        ));
    }

    #[test]
    fn stop_reasons_map_both_ways() {
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            assert_eq!(stop_reason(Some(finish)), stop);
            assert_eq!(finish_reason(Some(stop)), finish);
        }
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
    }
}
