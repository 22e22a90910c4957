//! The OpenAI API handlers: read the body (bounded), read `model`, route, forward.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::error::{ProxyError, Result};
use crate::forward::{Outgoing, forward};
use crate::state::AppState;

/// The only fields the proxy reads; everything else passes through untouched, unparsed into
/// values (serde still checks that the whole body is well-formed JSON).
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

/// Reads the body, refusing more than `max` bytes (by header first, then while reading).
///
/// An oversized body is still read (and discarded, up to a bound) before the 413 goes out:
/// HTTP/1 clients that are still sending would otherwise see a broken pipe, not the answer.
async fn read_body(mut body: Body, headers: &http::HeaderMap, max: u64) -> Result<Bytes> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Most bodies arrive as one chunk: keep it as it is, copy only when there are more.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0u64;
    if declared.is_none_or(|n| n <= max) {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                // The client stopped sending; whoever still listens gets a 400.
                return Err(ProxyError::InvalidJson { line: 0, column: 0 });
            };
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > max {
                    break;
                }
                match first.take() {
                    None if rest.is_empty() => first = Some(data),
                    None => rest.extend_from_slice(&data),
                    Some(head) => {
                        rest.reserve(head.len() + data.len());
                        rest.extend_from_slice(&head);
                        rest.extend_from_slice(&data);
                    }
                }
            }
        }
        if total <= max {
            return Ok(first.unwrap_or_else(|| rest.freeze()));
        }
    }
    let cap = max.saturating_mul(4);
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while total <= cap {
            match body.frame().await {
                Some(Ok(frame)) => {
                    total += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    })
    .await;
    Err(ProxyError::PayloadTooLarge(max))
}

/// How long an oversized body is drained before the 413.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads `model` from a JSON body.
fn model_of(body: &[u8]) -> Result<Cow<'_, str>> {
    match serde_json::from_slice::<Peek<'_>>(body) {
        Ok(Peek { model: Some(m) }) => Ok(m),
        Ok(Peek { model: None }) => Err(ProxyError::MissingModel),
        Err(e) if e.is_data() => Err(ProxyError::MissingModel),
        Err(e) => Err(ProxyError::InvalidJson {
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// The path after `/v1`, with the query: what is appended to an upstream's base URL.
fn suffix(uri: &http::Uri) -> &str {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    pq.strip_prefix("/v1").unwrap_or(pq)
}

/// `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`: routed by model.
pub async fn by_model(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match by_model_inner(&state, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn by_model_inner(state: &Arc<AppState>, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, &parts.headers, state.max_body).await?;
    let model = model_of(&body)?;
    let route = state
        .models
        .get(model.as_ref())
        .ok_or_else(|| ProxyError::ModelNotFound(truncate(&model)))?;
    let out = Outgoing {
        method: &parts.method,
        suffix: suffix(&parts.uri),
        headers: &parts.headers,
        model: route.name.clone(),
        body: body.clone(),
    };
    Ok(forward(state, &route.upstreams, out).await)
}

/// Configured pass-through paths: forwarded as they are to their upstream.
pub async fn passthrough(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(up) = state.passthrough.get(request.uri().path()).cloned() else {
        return unknown(request).into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match read_body(body, &parts.headers, state.max_body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let out = Outgoing {
        method: &parts.method,
        suffix: suffix(&parts.uri),
        headers: &parts.headers,
        model: Arc::from("-"),
        body,
    };
    forward(&state, std::slice::from_ref(&up), out).await
}

/// `GET /v1/models`, answered from configuration.
pub async fn models(State(state): State<Arc<AppState>>) -> Response {
    let mut r = Response::new(Body::from(state.models_body.clone()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Everything else: 404 in OpenAI's shape.
pub fn unknown(request: Request) -> ProxyError {
    ProxyError::UnknownUrl {
        method: request.method().clone(),
        path: truncate(request.uri().path()),
    }
}

/// Wrong method on a known path: 405 in OpenAI's shape.
pub async fn method_not_allowed(request: Request) -> ProxyError {
    ProxyError::MethodNotAllowed {
        method: request.method().clone(),
        path: truncate(request.uri().path()),
    }
}

/// Client-supplied text echoed in errors is bounded.
fn truncate(s: &str) -> String {
    s.chars().take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_or_says_why_not() {
        assert_eq!(model_of(br#"{"model":"a","messages":[]}"#).unwrap(), "a");
        assert_eq!(model_of(br#"{"model":"a\u0062"}"#).unwrap(), "ab");
        assert!(matches!(model_of(b"{}"), Err(ProxyError::MissingModel)));
        assert!(matches!(
            model_of(br#"{"model":5}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            model_of(b"{\"model\":"),
            Err(ProxyError::InvalidJson { line: 1, .. })
        ));
        assert!(matches!(
            model_of(br#"{"model":"a"} x"#),
            Err(ProxyError::InvalidJson { .. })
        ));
    }

    #[test]
    fn suffix_keeps_query() {
        let uri: http::Uri = "/v1/chat/completions?chunks=3".parse().unwrap();
        assert_eq!(suffix(&uri), "/chat/completions?chunks=3");
    }
}
