//! Anthropic's Messages API: its error shape and rate-limit headers on its routes
//! ([`error`], [`dialect`]), and translation between it and OpenAI's Chat Completions, both
//! ways, as pure functions over the two wire formats ([`wire`], [`chat`]): requests
//! ([`request`]), whole answers ([`response`]) and streams, event by event ([`stream`], run
//! by the relay as event hooks: [`hooks`]).
//! What cannot be carried across is refused with a clear error, never dropped (the table is
//! in the proxy's README).

pub mod chat;
pub mod dialect;
pub mod error;
pub mod hooks;
pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

/// Why a request or an answer cannot be translated. The message names fields and JSON types,
/// never values (they may be prompts).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client's request cannot be carried to the upstream's API (a 400 for the client).
    #[error("{0}")]
    Request(String),
    /// The upstream's answer cannot be carried back (a 502 for the client).
    #[error("{0}")]
    Answer(String),
}

impl TranslateError {
    /// `what` (a field, in backquotes) has no equivalent in the upstream's API (`target`).
    pub fn unsupported(what: &str, target: Api, why: &str) -> Self {
        Self::Request(format!(
            "{what} cannot be translated for this model's upstream, which speaks {}: {why}.",
            target.name()
        ))
    }

    /// The request is not a well-formed request of `api` (`at`: where, from the parser).
    pub fn malformed(api: Api, at: &str, error: &str) -> Self {
        let at = if at.is_empty() || at == "." {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        let kind = match api {
            Api::Chat => "an OpenAI Chat Completions",
            Api::Messages => "an Anthropic Messages",
        };
        Self::Request(format!(
            "The request cannot be read as {kind} request{at}: {error}."
        ))
    }
}

/// One of the two APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI's Chat Completions.
    Chat,
    /// Anthropic's Messages.
    Messages,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Self::Chat => "OpenAI's Chat Completions API",
            Self::Messages => "Anthropic's Messages API",
        }
    }
}

/// serde's message without the string value it may quote (`invalid type: string "…",
/// expected …`): the value may be part of a prompt.
fn without_values(message: &str) -> String {
    const LEAD: &str = "string \"";
    let cleaned = match (message.find(LEAD), message.rfind("\", expected")) {
        (Some(start), Some(end)) if end >= start + LEAD.len() - 1 => {
            format!("{}string{}", &message[..start], &message[end + 1..])
        }
        _ => message.to_owned(),
    };
    // Field and variant names come from the client too: bounded.
    cleaned.chars().take(300).collect()
}

/// Reads `body` as a request of `api` into `T`, with the path of the first problem.
pub fn parse<T: serde::de::DeserializeOwned>(api: Api, body: &[u8]) -> Result<T, TranslateError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        // serde's messages end with the position; the path says where already.
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        TranslateError::malformed(api, &e.path().to_string(), &without_values(message))
    })?;
    de.end()
        .map_err(|e| TranslateError::malformed(api, "", &e.to_string()))?;
    Ok(value)
}
