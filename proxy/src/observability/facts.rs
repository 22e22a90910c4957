//! What the access log and metrics learn about a request from the layers below them: who the
//! client was (from the guards), how the upstream exchange went and what it used (from the
//! forwarder and the relay). The lower layers write these into the answer's [`Facts`];
//! observability reads them there, so it depends on none of those layers.

use std::sync::Arc;
use std::time::Duration;

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
    /// Attempts made, across upstreams.
    pub attempts: u32,
    /// Time until the upstream's first byte.
    pub ttfb: Option<Duration>,
    /// Token usage, when the answer reported it.
    pub usage: Option<Usage>,
    /// The proxy's error code, or why the answer was cut after its first byte.
    pub error: Option<&'static str>,
}

/// The id every anonymous client has in logs and labels.
pub fn anonymous() -> Arc<str> {
    static ANONYMOUS: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from("anonymous"));
    ANONYMOUS.clone()
}

/// Token counts of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

impl Usage {
    /// Both counts together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}
