//! An Anthropic Messages request as an OpenAI Chat Completions request (a `/v1/messages`
//! client, an `openai` upstream).

use super::super::chat::{
    ChatMessage, ChatRequest, ChatTool, ChatToolChoice, FunctionCall, FunctionName, ImageUrl,
    NamedChoice, Stop, StreamOptions, Text, TextPart, ToolCall, UserContent, UserPart,
};
use super::super::wire::{
    Block, Content, ImageSource, MessagesRequest, Role, Thinking, Tool, ToolChoice, ToolResultBlock,
};
use super::super::{Api, TranslateError};

fn unsupported(what: &str, why: &str) -> TranslateError {
    TranslateError::unsupported(what, Api::Chat, why)
}

/// Translates `req`; the stream, if any, asks for usage (the proxy meters every answer and
/// Anthropic's `message_delta` reports it).
pub fn to_chat(req: MessagesRequest) -> Result<ChatRequest, TranslateError> {
    let Some(max_tokens) = req.max_tokens else {
        return Err(TranslateError::malformed(
            Api::Messages,
            "",
            "missing field `max_tokens`",
        ));
    };
    if req.top_k.is_some() {
        return Err(unsupported("`top_k`", "OpenAI has no top-k sampling"));
    }
    if let Some(Thinking::Enabled { .. }) = req.thinking {
        return Err(unsupported(
            "`thinking`",
            "extended thinking has no equivalent in Chat Completions",
        ));
    }
    if let Some(tier) = &req.service_tier
        && tier != "auto"
    {
        return Err(unsupported(
            "`service_tier` other than `auto`",
            "OpenAI's service tiers are different ones",
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system {
        messages.push(ChatMessage::System {
            content: text_of(system, "`system`")?,
            name: None,
        });
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role {
            Role::User => user_turn(i, m.content, &mut messages)?,
            Role::Assistant => messages.push(assistant_turn(i, m.content)?),
        }
    }
    let tools = req
        .tools
        .map(|tools| tools.into_iter().map(tool).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let (tool_choice, parallel) = match req.tool_choice {
        None => (None, None),
        Some(choice) => {
            let (choice, disable) = tool_choice(choice);
            (Some(choice), disable.then_some(false))
        }
    };
    let stream = req.stream == Some(true);
    Ok(ChatRequest {
        model: req.model,
        messages,
        max_completion_tokens: Some(max_tokens),
        stop: req.stop_sequences.filter(|s| !s.is_empty()).map(Stop::Many),
        stream: req.stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        temperature: req.temperature,
        top_p: req.top_p,
        parallel_tool_calls: parallel.filter(|_| tools.is_some()),
        tools,
        tool_choice,
        user: req.metadata.and_then(|m| m.user_id),
        ..ChatRequest::default()
    })
}

/// Text-only content (the system prompt, a tool's result).
fn text_of(content: Content, at: &str) -> Result<Text, TranslateError> {
    match content {
        Content::Text(s) => Ok(Text::Plain(s)),
        Content::Blocks(blocks) => blocks
            .into_iter()
            .map(|b| match b {
                Block::Text(t) => {
                    no_citations(t.citations.as_deref())?;
                    Ok(TextPart::Text { text: t.text })
                }
                _ => Err(unsupported(
                    &format!("a non-text block in {at}"),
                    "only text can go there",
                )),
            })
            .collect::<Result<_, _>>()
            .map(Text::Parts),
    }
}

fn no_citations(citations: Option<&[serde_json::Value]>) -> Result<(), TranslateError> {
    match citations {
        Some(c) if !c.is_empty() => Err(unsupported(
            "`citations`",
            "Chat Completions has no citations",
        )),
        _ => Ok(()),
    }
}

/// A user turn: its tool results become `tool` messages (first: each must follow the
/// assistant's calls), its text and images one `user` message.
fn user_turn(i: usize, content: Content, out: &mut Vec<ChatMessage>) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(s) => {
            out.push(ChatMessage::User {
                content: UserContent::Plain(s),
                name: None,
            });
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            Block::Text(t) => {
                no_citations(t.citations.as_deref())?;
                parts.push(UserPart::Text { text: t.text });
            }
            Block::Image(image) => parts.push(UserPart::ImageUrl {
                image_url: image_url(image.source),
            }),
            Block::ToolResult(result) => out.push(tool_message(i, result)?),
            Block::ToolUse(_) => {
                return Err(unsupported(
                    &format!("`messages[{i}]`: a `tool_use` block in a user turn"),
                    "only the assistant calls tools",
                ));
            }
        }
    }
    if !parts.is_empty() {
        out.push(ChatMessage::User {
            content: UserContent::Parts(parts),
            name: None,
        });
    }
    Ok(())
}

fn image_url(source: ImageSource) -> ImageUrl {
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url,
    };
    ImageUrl { url, detail: None }
}

/// A tool's result as a `tool` message; `is_error` is said in its text (`Error: …`), as Chat
/// Completions has no such flag.
fn tool_message(i: usize, result: ToolResultBlock) -> Result<ChatMessage, TranslateError> {
    let at = format!("a `tool_result` of `messages[{i}]`");
    let text = match result.content {
        None => String::new(),
        Some(content) => lines(text_of(content, &at)?),
    };
    let content = if result.is_error == Some(true) {
        format!("Error: {text}")
    } else {
        text
    };
    Ok(ChatMessage::Tool {
        content: Text::Plain(content),
        tool_call_id: result.tool_use_id,
    })
}

/// Parts joined by newlines (several text blocks of one tool result).
fn lines(text: Text) -> String {
    match text {
        Text::Plain(s) => s,
        Text::Parts(parts) => parts
            .into_iter()
            .map(|p| match p {
                TextPart::Text { text } => text,
                TextPart::Refusal { refusal } => refusal,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn assistant_turn(i: usize, content: Content) -> Result<ChatMessage, TranslateError> {
    let blocks = match content {
        Content::Text(s) => {
            return Ok(ChatMessage::Assistant {
                content: Some(Text::Plain(s)),
                tool_calls: None,
                refusal: None,
                name: None,
            });
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            Block::Text(t) => {
                no_citations(t.citations.as_deref())?;
                texts.push(TextPart::Text { text: t.text });
            }
            Block::ToolUse(call) => calls.push(ToolCall {
                id: call.id,
                kind: "function".into(),
                function: FunctionCall {
                    name: call.name,
                    arguments: call.input.to_string(),
                },
            }),
            Block::Image(_) | Block::ToolResult(_) => {
                return Err(unsupported(
                    &format!("`messages[{i}]`: an image or a tool result in an assistant turn"),
                    "an assistant message holds text and tool calls only",
                ));
            }
        }
    }
    Ok(ChatMessage::Assistant {
        content: (!texts.is_empty()).then_some(Text::Parts(texts)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        refusal: None,
        name: None,
    })
}

fn tool(t: Tool) -> Result<ChatTool, TranslateError> {
    if let Some(kind) = t.kind.as_deref()
        && kind != "custom"
    {
        return Err(unsupported(
            &format!("the server tool `{}`", t.name),
            "only client tools (functions) exist in Chat Completions",
        ));
    }
    Ok(ChatTool {
        kind: "function".into(),
        function: super::super::chat::Function {
            name: t.name,
            description: t.description,
            parameters: Some(t.input_schema),
            strict: None,
        },
    })
}

/// The choice, and whether parallel calls are off.
fn tool_choice(choice: ToolChoice) -> (ChatToolChoice, bool) {
    match choice {
        ToolChoice::Auto {
            disable_parallel_tool_use,
        } => (
            ChatToolChoice::Mode("auto".into()),
            disable_parallel_tool_use == Some(true),
        ),
        ToolChoice::Any {
            disable_parallel_tool_use,
        } => (
            ChatToolChoice::Mode("required".into()),
            disable_parallel_tool_use == Some(true),
        ),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            ChatToolChoice::Named(NamedChoice {
                kind: "function".into(),
                function: FunctionName { name },
            }),
            disable_parallel_tool_use == Some(true),
        ),
        ToolChoice::None {} => (ChatToolChoice::Mode("none".into()), false),
    }
}
