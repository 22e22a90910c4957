//! What the access log and metrics learn about a request from the layers below them: who the
//! client was (from the guards) and how the upstream exchange went (from the relay). The lower
//! layers put these in the response's extensions; observability reads them there, so it
//! depends on none of those layers.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use http::header::HeaderName;

use serde::Deserialize;

/// The request id header: the client's or the proxy's, returned to the client and logged.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client id for logs: a key id, or `anonymous`.
#[derive(Clone, Debug)]
pub struct ClientId(pub Arc<str>);

impl ClientId {
    /// The id of every anonymous client.
    pub fn anonymous() -> Self {
        static ANONYMOUS: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("anonymous"));
        Self(ANONYMOUS.clone())
    }
}

/// What the access log and metrics learn about one proxied exchange.
#[derive(Debug)]
pub struct Exchange {
    /// Configured model name (`-` for pass-through paths).
    pub model: Arc<str>,
    /// Client key id for metric labels (`anonymous` without authentication).
    pub client: Arc<str>,
    /// Upstream that answered.
    pub upstream: Arc<str>,
    /// Attempts made, across upstreams.
    pub attempts: u32,
    /// Time until the upstream's first byte.
    pub ttfb: Duration,
    /// Token usage, when the answer reported it.
    pub usage: OnceLock<Usage>,
    /// Why the answer was cut after its first byte, if it was.
    pub stream_error: OnceLock<&'static str>,
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
