//! What the access log and metrics learn about a request from the layers below them: who the
//! client was (from the guards), how the upstream exchange went and what it used (from the
//! forwarder and the relay). The lower layers write these into the answer's [`Facts`];
//! observability reads them there, so it depends on none of those layers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HeaderName;
use serde::Deserialize;

/// The request id header: the client's or the proxy's, returned to the client and logged.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What one request's answer tells the access log and the metrics.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The client for logs and metric labels: a key id or `anonymous` (unset: not identified).
    pub client: Option<Arc<str>>,
    /// Configured model name (`-` for pass-through paths); unset when not routed.
    pub model: Option<Arc<str>>,
    /// Upstream that answered.
    pub upstream: Option<Arc<str>>,
    /// The API the upstream that answered speaks, as the OpenTelemetry GenAI conventions name
    /// providers (`gen_ai.provider.name`): `openai` or `anthropic`.
    pub provider: Option<&'static str>,
    /// What the client asked for, as the GenAI conventions name operations
    /// (`gen_ai.operation.name`): `chat` (chat completions and Anthropic's messages),
    /// `text_completion`, `embeddings`, or `count_tokens`; unset for pass-through paths.
    pub operation: Option<&'static str>,
    /// Attempts made, across upstreams.
    pub attempts: u32,
    /// Time until the upstream's first byte.
    pub ttfb: Option<Duration>,
    /// Token usage, when the answer reported it.
    pub usage: Option<Usage>,
    /// The proxy's error code, or why the answer was cut after its first byte.
    pub error: Option<&'static str>,
    /// What the answer said about itself, for the traces and the GenAI metrics.
    pub gen_ai: GenAi,
}

/// What the relay reads from an answer for the traces and the GenAI metrics (the operation
/// and the provider are [`Facts::operation`] and [`Facts::provider`]).
#[derive(Clone, Debug, Default)]
pub struct GenAi {
    /// The model the upstream says answered.
    pub response_model: Option<Arc<str>>,
    /// Why each choice stopped, in the order the answer gave them.
    pub finish_reasons: Vec<Arc<str>>,
    /// When the first and the latest chunk of a streamed answer (server-sent events) came.
    pub stream: Option<(Instant, Instant)>,
}

/// The id every anonymous client has in logs and labels.
pub fn anonymous() -> Arc<str> {
    static ANONYMOUS: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("anonymous"));
    ANONYMOUS.clone()
}

/// Token counts of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Reported")]
pub struct Usage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
}

/// A `usage` object as OpenAI (`prompt_tokens`, `completion_tokens`) or Anthropic
/// (`input_tokens` plus cache reads and writes, `output_tokens`) reports it.
#[derive(Deserialize)]
struct Reported {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl From<Reported> for Usage {
    fn from(r: Reported) -> Self {
        let anthropic_input = [
            r.input_tokens,
            r.cache_creation_input_tokens,
            r.cache_read_input_tokens,
        ]
        .into_iter()
        .flatten()
        .fold(0u64, u64::saturating_add);
        Self {
            prompt_tokens: r.prompt_tokens.unwrap_or(anthropic_input),
            completion_tokens: r.completion_tokens.or(r.output_tokens).unwrap_or(0),
        }
    }
}

impl Usage {
    /// Both counts together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}
