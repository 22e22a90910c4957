//! The configuration of `ai-api-proxy`: the one description of the proxy's settings.
//!
//! `infra` embeds [`ProxyConfig`] in its environment files, validates it with
//! [`ProxyConfig::validate`] and serializes the same value into the proxy's ConfigMap; the proxy
//! reads that file back at start ([`ProxyConfig::from_json`]). Nothing here does I/O beyond
//! naming the paths where secrets are mounted.
#![forbid(unsafe_code)]

mod duration;
mod egress;
mod failover;
pub mod metrics;
mod policy;
mod report;
mod rules;
mod telemetry;
mod url;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::Duration;
pub use egress::{
    ClientCertificate, ConfigMapRef, Egress, FileSource, ProxyBasicAuth, UpstreamTls,
};
pub use failover::OnStreamFailure;
pub use policy::{KeyPolicy, Lease, Policies, SharedLimits, WhenUnreachable};
pub use report::{Problem, Report};
pub use telemetry::{Otlp, Telemetry};
pub use url::upstream_endpoint;
pub use validate::{is_dns_label, is_dns_subdomain};

/// The file name of the proxy configuration inside its ConfigMap and mount.
pub const CONFIG_FILE_NAME: &str = "proxy.json";

/// Where the proxy looks for its configuration file unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ai-api-proxy/proxy.json";

/// Everything the proxy needs to know to serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// TCP port of the API (nothing else is served there).
    pub port: u16,
    /// TCP port of the admin listener: health, readiness and metrics, never on `port`.
    pub admin_port: u16,
    /// Paths of the operational endpoints on `admin_port`; probes and scrapers use exactly these.
    pub endpoints: Endpoints,
    /// Directory under which each referenced Secret is mounted as `<dir>/<secret name>/<key>`.
    pub secrets_dir: PathBuf,
    /// Directory under which each referenced ConfigMap (a CA bundle) is mounted as
    /// `<dir>/<config map name>/<key>`.
    pub config_maps_dir: PathBuf,
    /// Largest request body accepted, in bytes; larger bodies are answered 413.
    pub max_body_bytes: u64,
    /// What one client connection and the whole process may hold: connections, time to send
    /// headers and bodies, bytes of request bodies, HTTP/2 settings.
    pub limits: Limits,
    /// Default timeouts towards upstreams (an upstream may override them).
    pub timeouts: Timeouts,
    /// Retries before the first byte reaches the client.
    pub retry: Retry,
    /// Per-upstream circuit breaker.
    pub circuit_breaker: CircuitBreaker,
    /// Graceful shutdown on SIGTERM.
    pub shutdown: Shutdown,
    /// How clients authenticate to the proxy. Required: leaving it out is an error, never an
    /// open proxy; `"anonymous"` is the explicit opt-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuth>,
    /// Requests per client key (per client IP when anonymous), and requests in flight.
    pub rate_limit: RateLimit,
    /// Browser origins allowed to call the API (CORS). Empty: no cross-origin access.
    pub cors: Cors,
    /// Upstream providers, by name.
    pub upstreams: Vec<Upstream>,
    /// Model names clients may ask for, and the upstreams that serve each, in fallback order.
    pub models: Vec<ModelRoute>,
    /// Extra paths under `/v1/` forwarded as they are (everything else there is 404).
    pub passthrough: Vec<Passthrough>,
    /// What each client key may do: models, request and token rates, token budgets.
    #[serde(skip_serializing_if = "Policies::is_empty")]
    pub policies: Policies,
    /// The store that holds the policies' counters across replicas; absent: each replica
    /// counts on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_limits: Option<SharedLimits>,
    /// The HTTP CONNECT proxy towards `https://` upstreams; absent: the process's
    /// `HTTPS_PROXY` and `NO_PROXY` variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
    /// OpenTelemetry traces (OTLP export, sampling, export queue); off by default.
    #[serde(skip_serializing_if = "Telemetry::is_default")]
    pub telemetry: Telemetry,
}

/// Paths of the proxy's operational endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    /// Liveness: answers 200 while the process runs.
    pub health: String,
    /// Readiness: 200 once configured, 503 while draining.
    pub ready: String,
    /// Prometheus metrics in text format.
    pub metrics: String,
}

/// Connection and request limits towards clients. Each bounds time or memory a client can
/// take; their defaults are safe for an Internet-facing pod of 512 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Client connections open at once on the API port; more are answered 503 and closed.
    pub max_connections: u32,
    /// A request's headers must be complete this long after their first byte (else 408 and
    /// the connection is closed).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub keep_alive_timeout: Duration,
    /// Longest pause between two reads of a request body (else 408, connection closed).
    pub body_read_idle: Duration,
    /// A whole request body must arrive within this long (else 408, connection closed).
    pub body_read_total: Duration,
    /// Bytes of request bodies held at once, all requests together; a request that would go
    /// over it is answered 503 at once. At least `max_body_bytes`.
    pub body_budget_bytes: u64,
    /// Largest request head (request line and headers; HTTP/2: the header list), in bytes.
    pub max_header_bytes: u32,
    /// HTTP/2 settings announced to clients.
    pub http2: Http2Limits,
}

/// HTTP/2 limits (clients speaking HTTP/2 directly or through an HTTP/2 load balancer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Limits {
    /// Streams (requests) open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Flow-control window of one stream: request body bytes a client may send unread.
    pub stream_window_bytes: u32,
    /// Flow-control window of a connection, all its streams together.
    pub connection_window_bytes: u32,
    /// A PING is sent after this long without frames; a connection that does not answer
    /// within the same time is closed.
    pub keep_alive_interval: Duration,
}

/// Timeouts for one upstream exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending the request to the upstream's response headers.
    pub first_byte: Duration,
    /// Longest silence between two chunks of a streamed response.
    pub idle: Duration,
    /// The whole exchange, streaming included.
    pub total: Duration,
}

/// Retry policy; retries happen only before the first byte reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Retry {
    /// Attempts per upstream, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles each time, with jitter.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff (a longer upstream `Retry-After` ends the attempts there).
    pub max_backoff: Duration,
}

/// Circuit breaker: stop sending to an upstream that keeps failing, probe it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before one probe request is let through.
    pub open_for: Duration,
}

/// Graceful shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Shutdown {
    /// After SIGTERM, keep accepting connections this long (readiness is already 503) so
    /// endpoints controllers and load balancers stop routing here first.
    pub grace_delay: Duration,
    /// Then give in-flight requests and streams this long to finish.
    pub drain_timeout: Duration,
}

impl Shutdown {
    /// The longest a SIGTERM-ed process can take to exit.
    pub fn total(&self) -> Duration {
        Duration(self.grace_delay.get() + self.drain_timeout.get())
    }
}

/// How clients authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientAuth {
    /// Clients send `Authorization: Bearer <key>`; the key file holds one `<id>:<sha256 hex>`
    /// line per client (`#` starts a comment).
    ApiKeys {
        /// Where the file of hashed client keys comes from.
        keys: KeySource,
    },
    /// No authentication: every request is served (rate-limited per client IP).
    Anonymous,
}

/// Where a secret value comes from. Values never appear in configuration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A key of a Kubernetes Secret, mounted as a file under `secrets_dir`.
    Secret(SecretRef),
    /// An environment variable of the proxy process (for local runs and benchmarks).
    Env(String),
}

/// A reference to one key of a Kubernetes Secret; never its value.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Secret name (in the proxy's namespace).
    pub name: String,
    /// Key inside the Secret.
    pub key: String,
}

impl SecretRef {
    /// The directory where this Secret is mounted.
    pub fn mount_dir(&self, secrets_dir: &Path) -> PathBuf {
        secrets_dir.join(&self.name)
    }

    /// The file that holds this key's value.
    pub fn path(&self, secrets_dir: &Path) -> PathBuf {
        self.mount_dir(secrets_dir).join(&self.key)
    }
}

/// Per-client limits: a token bucket, and a cap on requests in flight (streams last minutes,
/// so a rate alone does not bound what one client holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Requests of one client being served at once (streams included); more are answered 429.
    pub max_in_flight: u32,
}

/// Cross-origin access.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cors {
    /// Exact origins (`https://app.example.com`); `*` is refused.
    pub allowed_origins: Vec<String>,
}

/// One upstream provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Name used by model routes, logs and metrics.
    pub name: String,
    /// Base URL, including the API version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The upstream's API key, sent as `Authorization: Bearer <key>`.
    pub api_key: KeySource,
    /// Extra request headers (not secrets: use `api_key` for credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Timeouts for this upstream, replacing the defaults.
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
    /// Sent as `OpenAI-Organization` (a client's own is never forwarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project` (a client's own is never forwarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// TLS towards this upstream: extra trusted CAs, a client certificate, the name to verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
    /// The API the upstream speaks: `openai` (Chat Completions; the default) or `anthropic`
    /// (Messages). Requests in the other API are translated (see the proxy's README).
    #[serde(default, skip_serializing_if = "UpstreamKind::is_openai")]
    pub kind: UpstreamKind,
}

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// OpenAI's API (`/chat/completions`, `/completions`, `/embeddings`); the key goes in
    /// `Authorization: Bearer`.
    #[default]
    Openai,
    /// Anthropic's Messages API (`/messages`); the key goes in `x-api-key`.
    Anthropic,
}

impl UpstreamKind {
    /// Is this the default kind (left out when the configuration is written)?
    pub fn is_openai(&self) -> bool {
        *self == Self::Openai
    }

    /// The provider's name as the OpenTelemetry GenAI conventions spell it
    /// (`gen_ai.provider.name`): `openai` or `anthropic`.
    pub fn provider_name(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// A model clients may ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRoute {
    /// The model name clients send.
    pub name: String,
    /// Upstream names, tried in this order.
    pub upstreams: Vec<String>,
    /// When a stream breaks after it started: end it with an error event (`error`, the
    /// default), or continue the answer on the next upstream (`continue`; see the proxy's
    /// README for the contract).
    #[serde(default, skip_serializing_if = "OnStreamFailure::is_error")]
    pub on_stream_failure: OnStreamFailure,
}

/// A path forwarded as it is to one upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Passthrough {
    /// Path under `/v1/`, e.g. `/v1/moderations`.
    pub path: String,
    /// Upstream that serves it.
    pub upstream: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            admin_port: 9090,
            endpoints: Endpoints::default(),
            secrets_dir: PathBuf::from("/var/run/secrets/ai-api-proxy"),
            config_maps_dir: PathBuf::from("/var/run/configmaps/ai-api-proxy"),
            max_body_bytes: 10 * 1024 * 1024,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            retry: Retry::default(),
            circuit_breaker: CircuitBreaker::default(),
            shutdown: Shutdown::default(),
            auth: None,
            rate_limit: RateLimit::default(),
            cors: Cors::default(),
            upstreams: Vec::new(),
            models: Vec::new(),
            passthrough: Vec::new(),
            policies: Policies::default(),
            shared_limits: None,
            egress: None,
            telemetry: Telemetry::default(),
        }
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            health: "/health".into(),
            ready: "/ready".into(),
            metrics: "/metrics".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 2048,
            header_read_timeout: Duration::from_secs(10),
            // Longer than ingress-nginx's upstream keep-alive (60 s), so the Ingress, not the
            // proxy, closes idle connections and never sends on one the proxy just closed.
            keep_alive_timeout: Duration::from_secs(75),
            body_read_idle: Duration::from_secs(10),
            body_read_total: Duration::from_secs(60),
            body_budget_bytes: 64 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            http2: Http2Limits::default(),
        }
    }
}

impl Default for Http2Limits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 128,
            stream_window_bytes: 128 * 1024,
            connection_window_bytes: 512 * 1024,
            keep_alive_interval: Duration::from_secs(30),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            grace_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(600),
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_second: 10,
            burst: 20,
            max_in_flight: 32,
        }
    }
}

impl ProxyConfig {
    /// Parses the JSON file `infra` renders into the ConfigMap, then validates it.
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        let config: Self = serde_json::from_str(text).map_err(LoadError::Parse)?;
        config.validate().map_err(LoadError::Invalid)?;
        Ok(config)
    }

    /// The JSON written into the ConfigMap: stable field order, pretty, newline-terminated.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, strings and BTreeMaps to JSON cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Timeouts in force for `upstream`.
    pub fn timeouts_for(&self, upstream: &Upstream) -> Timeouts {
        upstream.timeouts.unwrap_or(self.timeouts)
    }

    /// The longest of one timeout over the defaults and every upstream's own, e.g.
    /// `longest(|t| t.total)`: how long a request can take (a fallback upstream's deadline
    /// also counts from the request's start).
    pub fn longest(&self, timeout: impl Fn(&Timeouts) -> Duration) -> Duration {
        self.upstreams
            .iter()
            .map(|u| timeout(&self.timeouts_for(u)))
            .fold(timeout(&self.timeouts), Ord::max)
    }

    /// Every Secret key the proxy reads, sorted and without duplicates.
    pub fn secret_refs(&self) -> Vec<&SecretRef> {
        let auth = match &self.auth {
            Some(ClientAuth::ApiKeys { keys }) => Some(keys),
            Some(ClientAuth::Anonymous) | None => None,
        };
        let mut refs: Vec<&SecretRef> = auth
            .into_iter()
            .chain(self.upstreams.iter().map(|u| &u.api_key))
            .chain(
                self.shared_limits
                    .iter()
                    .filter_map(|s| s.password.as_ref()),
            )
            .filter_map(|source| match source {
                KeySource::Secret(r) => Some(r),
                KeySource::Env(_) => None,
            })
            .chain(self.egress_secret_refs())
            .collect();
        refs.sort();
        refs.dedup();
        refs
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not valid JSON, or not the expected shape.
    #[error("configuration is not valid: {0}")]
    Parse(#[source] serde_json::Error),
    /// Well-formed but inconsistent.
    #[error("configuration is inconsistent:\n{}", report::list(.0))]
    Invalid(Vec<Problem>),
}
