//! Anthropic's error shape (`{"type":"error","error":{"type":…,"message":…}}`) with its type
//! names chosen by status, the conversion of an upstream's error body from one API's shape to
//! the other's, and Anthropic's rate-limit headers.

use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error_answer::error_json as openai_error_json;
use crate::limits::RateHeaders;

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's error body.
pub fn error_json(kind: &str, message: &str) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
    }
    serde_json::to_string(&Body {
        kind: "error",
        error: Inner { kind, message },
    })
    .unwrap_or_default()
}

/// An error's message from a body of either shape (`error.message`); `None` if it has none.
fn message_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    serde_json::from_slice::<Body>(body)
        .ok()
        .map(|b| b.error.message)
}

/// An OpenAI-compatible upstream's error answer, for an Anthropic client.
pub fn from_openai(status: StatusCode, body: &[u8]) -> String {
    let message =
        message_of(body).unwrap_or_else(|| format!("The upstream answered {}.", status.as_u16()));
    error_json(error_type(status), &message)
}

/// An Anthropic upstream's error answer, for an OpenAI client: Anthropic's type as `type`.
pub fn to_openai(status: StatusCode, body: &[u8]) -> String {
    let message =
        message_of(body).unwrap_or_else(|| format!("The upstream answered {}.", status.as_u16()));
    openai_error_json(&message, error_type(status), None, "upstream_error")
}

/// Every `anthropic-ratelimit-*` header the proxy sets.
pub const RATE_HEADERS: [&str; 6] = [
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
];

/// Anthropic's names and values for the client's limits: `reset` is the time (RFC 3339, UTC)
/// at which the limit is whole again, counted from `now`.
pub fn rate_headers(h: &RateHeaders, now: SystemTime) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(6);
    for (name, gauge) in [("requests", h.requests), ("tokens", h.tokens)] {
        let Some(g) = gauge else { continue };
        let reset =
            now + Duration::from_secs(g.reset.as_secs() + u64::from(g.reset.subsec_nanos() > 0));
        let reset = humantime::format_rfc3339_seconds(reset).to_string();
        for (what, value) in [
            ("limit", HeaderValue::from(g.limit)),
            ("remaining", HeaderValue::from(g.remaining)),
            (
                "reset",
                HeaderValue::from_str(&reset).unwrap_or(HeaderValue::from_static("")),
            ),
        ] {
            if let Ok(header) = HeaderName::try_from(format!("anthropic-ratelimit-{name}-{what}")) {
                out.push((header, value));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::RateGauge as Gauge;

    #[test]
    fn types_follow_the_status() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (405, "invalid_request_error"),
            (408, "invalid_request_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "api_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(
                error_type(StatusCode::from_u16(status).unwrap()),
                kind,
                "{status}"
            );
        }
        assert_eq!(
            error_json("rate_limit_error", "slow \"down\""),
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow \"down\""}}"#
        );
    }

    #[test]
    fn upstream_errors_change_shape() {
        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":null}}"#;
        assert_eq!(
            from_openai(StatusCode::NOT_FOUND, openai),
            r#"{"type":"error","error":{"type":"not_found_error","message":"bad model"}}"#
        );
        assert_eq!(
            from_openai(StatusCode::BAD_GATEWAY, b"<html>"),
            r#"{"type":"error","error":{"type":"api_error","message":"The upstream answered 502."}}"#
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            to_openai(StatusCode::from_u16(529).unwrap(), anthropic),
            r#"{"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":"upstream_error"}}"#
        );
    }

    #[test]
    fn rate_headers_name_a_reset_time() {
        let h = RateHeaders {
            requests: Some(Gauge {
                limit: 60,
                remaining: 59,
                reset: Duration::from_millis(1500),
            }),
            tokens: None,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let pairs: Vec<_> = rate_headers(&h, now)
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                "anthropic-ratelimit-requests-limit: 60",
                "anthropic-ratelimit-requests-remaining: 59",
                "anthropic-ratelimit-requests-reset: 2023-11-14T22:13:22Z"
            ]
        );
    }
}
