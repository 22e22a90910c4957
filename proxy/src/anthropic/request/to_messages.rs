//! An OpenAI Chat Completions request as an Anthropic Messages request (a
//! `/v1/chat/completions` client, an `anthropic` upstream).

use serde_json::Value;

use super::super::chat::{
    ChatMessage, ChatRequest, ChatTool, ChatToolChoice, Stop, Text, TextPart, ToolCall,
    UserContent, UserPart,
};
use super::super::wire::{
    Block, Content, ImageBlock, ImageSource, Message, MessagesRequest, Metadata, Role, TextBlock,
    Tool, ToolChoice, ToolResultBlock, ToolUseBlock,
};
use super::super::{Api, TranslateError};

/// `max_tokens` when the client set none: Anthropic requires one, OpenAI does not.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn unsupported(what: &str, why: &str) -> TranslateError {
    TranslateError::unsupported(what, Api::Messages, why)
}

/// Translates `req`.
pub fn to_messages(req: ChatRequest) -> Result<MessagesRequest, TranslateError> {
    refuse_unneutral(&req)?;
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let (role, blocks) = match m {
            ChatMessage::System { content, name } | ChatMessage::Developer { content, name } => {
                no_name(i, name.as_deref())?;
                if !turns.is_empty() {
                    return Err(unsupported(
                        &format!(
                            "`messages[{i}]`: a system message after the conversation started"
                        ),
                        "Anthropic has one system prompt, before every turn",
                    ));
                }
                system.extend(text_blocks(content));
                continue;
            }
            ChatMessage::User { content, name } => {
                no_name(i, name.as_deref())?;
                (Role::User, user_blocks(i, content)?)
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
                refusal,
                name,
            } => {
                no_name(i, name.as_deref())?;
                let mut blocks = content.map(text_blocks).unwrap_or_default();
                blocks.extend(refusal.filter(|r| !r.is_empty()).map(text_block));
                for (j, call) in tool_calls.into_iter().flatten().enumerate() {
                    blocks.push(tool_use(i, j, call)?);
                }
                (Role::Assistant, blocks)
            }
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => (
                Role::User,
                vec![Block::ToolResult(ToolResultBlock {
                    tool_use_id: tool_call_id,
                    content: Some(Content::Text(content.joined())),
                    is_error: None,
                    cache_control: None,
                })],
            ),
        };
        // Consecutive turns of one role are one turn: the tool results answering one
        // assistant turn must all be in the next user turn.
        match turns.last_mut() {
            Some(last) if last.role == role => {
                if let Content::Blocks(b) = &mut last.content {
                    b.extend(blocks);
                }
            }
            _ => turns.push(Message {
                role,
                content: Content::Blocks(blocks),
            }),
        }
    }
    let has_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty());
    let tools = req
        .tools
        .map(|tools| tools.into_iter().map(tool).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let mut tool_choice = req.tool_choice.map(tool_choice).transpose()?;
    if req.parallel_tool_calls == Some(false) && has_tools {
        tool_choice = Some(
            match tool_choice.unwrap_or(ToolChoice::Auto {
                disable_parallel_tool_use: None,
            }) {
                ToolChoice::Auto { .. } => ToolChoice::Auto {
                    disable_parallel_tool_use: Some(true),
                },
                ToolChoice::Any { .. } => ToolChoice::Any {
                    disable_parallel_tool_use: Some(true),
                },
                ToolChoice::Tool { name, .. } => ToolChoice::Tool {
                    name,
                    disable_parallel_tool_use: Some(true),
                },
                ToolChoice::None {} => ToolChoice::None {},
            },
        );
    }
    Ok(MessagesRequest {
        model: req.model,
        messages: turns,
        max_tokens: Some(
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
        ),
        system: (!system.is_empty()).then_some(Content::Blocks(system)),
        metadata: req.user.map(|u| Metadata { user_id: Some(u) }),
        stop_sequences: req.stop.map(|s| match s {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }),
        stream: req.stream,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: None,
        tools,
        tool_choice,
        thinking: None,
        service_tier: None,
    })
}

/// Fields Anthropic has no equivalent for pass only with their neutral value.
fn refuse_unneutral(req: &ChatRequest) -> Result<(), TranslateError> {
    if req.n.is_some_and(|n| n != 1) {
        return Err(unsupported("`n` other than 1", "it answers one completion"));
    }
    for (name, v) in [
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        if v.is_some_and(|v| v != 0.0) {
            return Err(unsupported(&format!("`{name}`"), "it has no such penalty"));
        }
    }
    if req.logprobs == Some(true) {
        return Err(unsupported("`logprobs`", "it reports no log probabilities"));
    }
    if req.store == Some(true) {
        return Err(unsupported(
            "`store`",
            "completions are stored by OpenAI only",
        ));
    }
    if let Some(format) = &req.response_format
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(unsupported(
            "`response_format` other than `text`",
            "JSON modes are not translated; describe the format in the prompt or use a tool",
        ));
    }
    Ok(())
}

fn no_name(i: usize, name: Option<&str>) -> Result<(), TranslateError> {
    match name {
        Some(_) => Err(unsupported(
            &format!("`messages[{i}].name`"),
            "it has no participant names",
        )),
        None => Ok(()),
    }
}

fn text_block(text: String) -> Block {
    Block::Text(TextBlock {
        text,
        cache_control: None,
        citations: None,
    })
}

/// Text as blocks; empty text gives none (Anthropic refuses empty text blocks).
fn text_blocks(text: Text) -> Vec<Block> {
    let texts = match text {
        Text::Plain(s) => vec![s],
        Text::Parts(parts) => parts
            .into_iter()
            .map(|p| match p {
                TextPart::Text { text } => text,
                TextPart::Refusal { refusal } => refusal,
            })
            .collect(),
    };
    texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(text_block)
        .collect()
}

fn user_blocks(i: usize, content: UserContent) -> Result<Vec<Block>, TranslateError> {
    match content {
        UserContent::Plain(s) => Ok(vec![text_block(s)]),
        UserContent::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, p)| match p {
                UserPart::Text { text } => Ok(text_block(text)),
                UserPart::ImageUrl { image_url } => Ok(Block::Image(ImageBlock {
                    source: image_source(&image_url.url).ok_or_else(|| {
                        unsupported(
                            &format!("`messages[{i}].content[{j}].image_url.url`"),
                            "an image must be an http(s) URL or a base64 data URL",
                        )
                    })?,
                    cache_control: None,
                })),
            })
            .collect(),
    }
}

/// `data:<media type>;base64,<data>` or an http(s) URL.
fn image_source(url: &str) -> Option<ImageSource> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest.split_once(";base64,")?;
        return Some(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    (url.starts_with("https://") || url.starts_with("http://")).then(|| ImageSource::Url {
        url: url.to_owned(),
    })
}

fn tool_use(i: usize, j: usize, call: ToolCall) -> Result<Block, TranslateError> {
    let at = format!("`messages[{i}].tool_calls[{j}]`");
    if call.kind != "function" {
        return Err(unsupported(&at, "only function calls exist there"));
    }
    let input: Value = if call.function.arguments.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(&call.function.arguments).map_err(|_| {
            TranslateError::Request(format!(
                "{at}.function.arguments is not JSON text; Anthropic needs the arguments as an object."
            ))
        })?
    };
    if !input.is_object() {
        return Err(TranslateError::Request(format!(
            "{at}.function.arguments is not a JSON object; Anthropic needs the arguments as an object."
        )));
    }
    Ok(Block::ToolUse(ToolUseBlock {
        id: call.id,
        name: call.function.name,
        input,
        cache_control: None,
    }))
}

fn tool(t: ChatTool) -> Result<Tool, TranslateError> {
    if t.kind != "function" {
        return Err(unsupported(
            "a tool whose `type` is not `function`",
            "only function tools are translated",
        ));
    }
    if t.function.strict == Some(true) {
        return Err(unsupported(
            "`strict` function tools",
            "strict schema adherence is not translated",
        ));
    }
    Ok(Tool {
        name: t.function.name,
        description: t.function.description,
        input_schema: t
            .function
            .parameters
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        kind: None,
        cache_control: None,
    })
}

fn tool_choice(choice: ChatToolChoice) -> Result<ToolChoice, TranslateError> {
    Ok(match choice {
        ChatToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: None,
            },
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: None,
            },
            "none" => ToolChoice::None {},
            _ => {
                return Err(TranslateError::Request(
                    "`tool_choice` must be `auto`, `none`, `required` or a named function.".into(),
                ));
            }
        },
        ChatToolChoice::Named(named) => ToolChoice::Tool {
            name: named.function.name,
            disable_parallel_tool_use: None,
        },
    })
}
