//! Mid-stream failover (`models[].on_stream_failure = "continue"`): when a streamed chat
//! completion breaks after its first byte, the next upstream is asked to continue the text
//! already delivered ([`request`]), and its stream is spliced into the client's ([`splice`]),
//! or the client gets the error event as without it, when continuing is not safe
//! ([`Refusal`]). [`relay`] is what the relay asks while it streams. The contract is written in
//! the proxy's README.

pub mod chunk;
pub mod relay;
pub mod request;
pub mod splice;

/// Why a broken stream was not continued; the client gets the error event, unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A tool call (or function call) was being streamed.
    ToolCall,
    /// The answer had its `finish_reason` already.
    Finished,
    /// The request asked for several choices (`n` > 1).
    Choices,
    /// The request asked for log probabilities.
    Logprobs,
    /// The request asked for a response format (JSON object or schema).
    ResponseFormat,
    /// Not a chat completion with `messages` (e.g. `/v1/completions`).
    NotChat,
    /// The answer was longer than [`splice::MAX_DELIVERED`].
    TooLong,
    /// The model has no upstream after the one that broke.
    NoUpstream,
}

impl Refusal {
    /// The name in the access log and the README.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToolCall => "tool_call",
            Self::Finished => "finished",
            Self::Choices => "n",
            Self::Logprobs => "logprobs",
            Self::ResponseFormat => "response_format",
            Self::NotChat => "not_chat",
            Self::TooLong => "too_long",
            Self::NoUpstream => "no_upstream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    #[test]
    fn every_reason_is_in_the_readme_table() {
        let readme = include_str!("../../README.md");
        let all = [
            Refusal::ToolCall,
            Refusal::Finished,
            Refusal::Choices,
            Refusal::Logprobs,
            Refusal::ResponseFormat,
            Refusal::NotChat,
            Refusal::TooLong,
            Refusal::NoUpstream,
        ];
        for r in all {
            let row = format!("\n| `{}` | ", r.as_str());
            assert!(
                readme.contains(&row),
                "proxy/README.md lacks the row of {r:?}"
            );
        }
    }
}
