//! The proxy's own error answers (instead of an upstream's): each variant owns its HTTP status
//! and renders OpenAI's error JSON. (Start-up errors are `start_error`'s.)

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Response, StatusCode};
use serde::Serialize;

use crate::anthropic::TranslateError;
use crate::limits::Refusal;

/// Everything the proxy itself can answer with instead of an upstream response.
///
/// Messages never contain a key, a prompt or a completion: only names the operator configured
/// (model, path) and numbers.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No `Authorization: Bearer …` or `x-api-key` header.
    #[error(
        "Missing bearer authentication in header. Send your proxy key as `Authorization: Bearer <key>` (or `x-api-key: <key>`)."
    )]
    MissingKey,
    /// A bearer key that is not in the key file.
    #[error("Incorrect API key provided.")]
    InvalidKey,
    /// The model is not configured.
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    /// No such API path.
    #[error("Invalid URL ({method} {path})")]
    UnknownUrl {
        /// Request method.
        method: Method,
        /// Request path (without query).
        path: String,
    },
    /// The path exists but not for this method.
    #[error("Method {method} is not allowed for {path}.")]
    MethodNotAllowed {
        /// Request method.
        method: Method,
        /// Request path (without query).
        path: String,
        /// The method the path answers (the `Allow` header), from the route table.
        allow: &'static str,
    },
    /// Body larger than `max_body_bytes`.
    #[error("Request body is larger than the limit of {0} bytes.")]
    PayloadTooLarge(u64),
    /// Body is not JSON (the position only: the body itself is never echoed).
    #[error("We could not parse the JSON body of your request (line {line}, column {column}).")]
    InvalidJson {
        /// Line of the first syntax error.
        line: usize,
        /// Column of the first syntax error.
        column: usize,
    },
    /// JSON without a usable `model` string.
    #[error("You must provide a model parameter (a string).")]
    MissingModel,
    /// The client's token bucket is empty.
    #[error("Rate limit reached for requests. Please retry after {}s.", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The client already has this many requests in flight.
    #[error("Too many concurrent requests: at most {0} at once per client.")]
    TooManyInFlight(u32),
    /// The client stopped sending its request body (between reads or in total).
    #[error("The request body was not received in time.")]
    RequestTimeout,
    /// Taking this body would exceed the bytes of request bodies the proxy holds at once.
    #[error("The server is overloaded with request bodies. Please retry shortly.")]
    Overloaded,
    /// Every connection slot of the proxy is taken (answered by the listener).
    #[error("The server has too many open connections. Please retry shortly.")]
    TooManyConnections,
    /// No upstream could be reached (connect error, reset before the answer).
    #[error("The upstream service could not be reached.")]
    BadGateway,
    /// The upstream refused our key (401/403): a configuration fault on our side; the
    /// provider's message is never shown.
    #[error("The upstream service refused the proxy's credentials.")]
    UpstreamAuth,
    /// TLS with the upstream failed (an untrusted certificate, a refused client certificate):
    /// a configuration fault, named so the operator finds it.
    #[error("The TLS connection to upstream `{upstream}` failed: {reason}.")]
    UpstreamTls {
        /// The upstream's configured name.
        upstream: std::sync::Arc<str>,
        /// A fixed phrase: what kind of failure (see `upstream::tls::client_reason`).
        reason: &'static str,
    },
    /// The egress proxy answered 401 or 407: the proxy's credentials for it are missing or
    /// wrong.
    #[error(
        "The egress proxy refused the proxy's credentials ({status}) while connecting to upstream `{upstream}`."
    )]
    EgressProxyAuth {
        /// The upstream's configured name.
        upstream: std::sync::Arc<str>,
        /// The proxy's status.
        status: u16,
    },
    /// The egress proxy would not open a tunnel (a refused destination or port, its own
    /// failure to reach the upstream, or an answer that is not HTTP).
    #[error("The egress proxy would not open a tunnel to upstream `{upstream}`{}.", .status.map(|s| format!(" (it answered {s})")).unwrap_or_default())]
    EgressProxy {
        /// The upstream's configured name.
        upstream: std::sync::Arc<str>,
        /// The proxy's status, if it answered in HTTP.
        status: Option<u16>,
    },
    /// The upstream did not answer in time.
    #[error("The upstream service did not answer in time.")]
    GatewayTimeout,
    /// Every upstream for this model has its circuit breaker open.
    #[error("The upstream service is temporarily unavailable. Please retry after {}s.", .0.as_secs().max(1))]
    Unavailable(Duration),
    /// The client's policy refuses this request (model, rate, budget; see `limits`).
    #[error(transparent)]
    Policy(#[from] Refusal),
    /// The request cannot be carried to the upstream's API, or its answer back.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// A bug or an impossible request to build; details go to the log, not to the client.
    #[error("The proxy had an internal error.")]
    Internal,
}

/// Convenience alias.
pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

/// The error's message, put in the response extensions so that an answer on Anthropic's
/// routes can be given Anthropic's shape (`anthropic::dialect`).
#[derive(Clone, Debug)]
pub struct ErrorMessage(pub String);

impl ProxyError {
    /// The HTTP status. Exhaustive on purpose: a new variant must pick its status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey => StatusCode::UNAUTHORIZED,
            Self::ModelNotFound(_) | Self::UnknownUrl { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidJson { .. } | Self::MissingModel => StatusCode::BAD_REQUEST,
            Self::RateLimited(_) | Self::TooManyInFlight(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded | Self::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway
            | Self::UpstreamAuth
            | Self::UpstreamTls { .. }
            | Self::EgressProxyAuth { .. }
            | Self::EgressProxy { .. } => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Policy(r) => r.status(),
            Self::Translate(TranslateError::Request(_)) => StatusCode::BAD_REQUEST,
            Self::Translate(TranslateError::Answer(_)) => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingKey
            | Self::InvalidKey
            | Self::ModelNotFound(_)
            | Self::UnknownUrl { .. }
            | Self::MethodNotAllowed { .. }
            | Self::PayloadTooLarge(_)
            | Self::InvalidJson { .. }
            | Self::MissingModel
            | Self::RequestTimeout
            | Self::Translate(TranslateError::Request(_)) => "invalid_request_error",
            Self::RateLimited(_) | Self::TooManyInFlight(_) => "requests",
            Self::BadGateway
            | Self::UpstreamAuth
            | Self::UpstreamTls { .. }
            | Self::EgressProxyAuth { .. }
            | Self::EgressProxy { .. }
            | Self::GatewayTimeout
            | Self::Unavailable(_)
            | Self::Overloaded
            | Self::TooManyConnections
            | Self::Translate(TranslateError::Answer(_))
            | Self::Internal => "server_error",
            Self::Policy(r) => r.kind(),
        }
    }

    /// OpenAI's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_api_key",
            Self::InvalidKey => "invalid_api_key",
            Self::ModelNotFound(_) => "model_not_found",
            Self::UnknownUrl { .. } => "unknown_url",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge(_) => "request_too_large",
            Self::InvalidJson { .. } => "invalid_json",
            Self::MissingModel => "missing_required_parameter",
            Self::RateLimited(_) => "rate_limit_exceeded",
            Self::TooManyInFlight(_) => "too_many_concurrent_requests",
            Self::RequestTimeout => "request_timeout",
            Self::Overloaded => "server_overloaded",
            Self::TooManyConnections => "too_many_connections",
            Self::BadGateway => "bad_gateway",
            Self::UpstreamAuth => "upstream_auth_failed",
            Self::UpstreamTls { .. } => "upstream_tls_failed",
            Self::EgressProxyAuth { .. } => "egress_proxy_auth_failed",
            Self::EgressProxy { .. } => "egress_proxy_failed",
            Self::GatewayTimeout => "upstream_timeout",
            Self::Unavailable(_) => "upstream_unavailable",
            Self::Policy(r) => r.code(),
            Self::Translate(TranslateError::Request(_)) => "untranslatable_request",
            Self::Translate(TranslateError::Answer(_)) => "untranslatable_answer",
            Self::Internal => "internal_error",
        }
    }

    /// OpenAI's `error.param`: the request field at fault, if any.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::ModelNotFound(_) | Self::MissingModel => Some("model"),
            Self::Policy(r) => r.param(),
            Self::MissingKey
            | Self::InvalidKey
            | Self::UnknownUrl { .. }
            | Self::MethodNotAllowed { .. }
            | Self::PayloadTooLarge(_)
            | Self::InvalidJson { .. }
            | Self::RateLimited(_)
            | Self::TooManyInFlight(_)
            | Self::RequestTimeout
            | Self::Overloaded
            | Self::TooManyConnections
            | Self::UpstreamAuth
            | Self::UpstreamTls { .. }
            | Self::EgressProxyAuth { .. }
            | Self::EgressProxy { .. }
            | Self::BadGateway
            | Self::GatewayTimeout
            | Self::Unavailable(_)
            | Self::Translate(_)
            | Self::Internal => None,
        }
    }

    /// Seconds a client should wait before retrying, for `Retry-After`.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited(d) | Self::Unavailable(d) => Some(ceil_secs(*d)),
            Self::Policy(r) => r.retry_after().map(ceil_secs),
            Self::Overloaded | Self::TooManyConnections | Self::TooManyInFlight(_) => Some(1),
            _ => None,
        }
    }

    /// OpenAI's error body as JSON text.
    pub fn body(&self) -> String {
        error_json(&self.to_string(), self.kind(), self.param(), self.code())
    }
}

/// `{"error":{"message":…,"type":…,"param":…,"code":…}}`, the shape every OpenAI SDK parses.
pub fn error_json(message: &str, kind: &str, param: Option<&str>, code: &str) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        param: Option<&'a str>,
        code: &'a str,
    }
    let body = Body {
        error: Inner {
            message,
            kind,
            param,
            code,
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// Whole seconds, rounded up, at least 1 (`Retry-After: 0` makes clients spin).
pub fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl ProxyError {
    /// The answer: status, OpenAI's error JSON and the headers that go with it.
    pub fn into_http(self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.body()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Self::RequestTimeout) {
            // The rest of the body will not come: this connection is done.
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Self::Policy(r) = &self {
            for (name, value) in r.headers().pairs() {
                headers.insert(name, value);
            }
        }
        if let Self::MethodNotAllowed { allow, .. } = &self {
            headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        let extensions = response.extensions_mut();
        if let Self::Policy(r) = &self {
            extensions.insert(r.headers());
        }
        extensions.insert(ErrorMessage(self.to_string()));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape() {
        let body = ProxyError::ModelNotFound("gpt-x".into()).body();
        assert_eq!(
            body,
            r#"{"error":{"message":"The model `gpt-x` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
        );
    }

    #[test]
    fn rate_limit_has_retry_after() {
        let r = ProxyError::RateLimited(Duration::from_millis(200)).into_http();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
    }
}
