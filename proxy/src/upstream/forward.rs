//! Sending a request to the model's upstreams: retries before the first byte reaches the
//! client, with exponential backoff, jitter and the upstream's `Retry-After`; then the next
//! upstream; circuit breakers skip upstreams that keep failing.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::relay::Relay;
use super::{SendError, Upstream, headers};
use crate::api_error::ProxyError;
use crate::observability::exchange::Exchange;
use crate::observability::metrics::{Metrics, UpstreamLabels};

/// Sends requests to upstreams: the retry policy and where outcomes are counted.
pub struct Forwarder {
    /// Retries per upstream.
    pub retry: RetryPolicy,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Retry policy, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per upstream, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based): doubling, capped, with "equal jitter"
    /// (half fixed, half random) so clients that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// One client request, ready to be sent to any upstream.
pub struct Outgoing<'a> {
    /// Method.
    pub method: &'a Method,
    /// Path after `/v1`, with the query.
    pub suffix: &'a str,
    /// The client's headers (filtered when building each upstream request).
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// Model label for logs and metrics.
    pub model: Arc<str>,
    /// Client key id label for metrics (`anonymous` without authentication).
    pub client: Arc<str>,
}

/// The last reason an upstream gave no usable answer.
enum Failure {
    Connect,
    Broken,
    Timeout,
    Open(Duration),
    /// The upstream refused our key: never shown to the client.
    Auth,
    /// The connection cannot be made (TLS, egress proxy): the answer if no upstream works.
    Unusable(ProxyError),
    Answer(Arc<Upstream>, Response<Incoming>, Duration),
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Forwarder {
    /// Sends `out` to `upstreams` in order, and answers with the first usable response (relayed
    /// as a stream) or the error that best describes why there is none.
    pub async fn forward(&self, upstreams: &[Arc<Upstream>], out: Outgoing<'_>) -> Response {
        let state = self;
        let start = Instant::now();
        let policy = state.retry;
        let mut last = None;
        let mut attempts = 0u32;
        'upstreams: for up in upstreams {
            let deadline = start + up.timeouts.total;
            for attempt in 1..=policy.max_attempts {
                if let Err(wait) = up.breaker.try_acquire() {
                    // A real answer from an earlier attempt says more than "open".
                    if last.is_none() {
                        last = Some(Failure::Open(wait));
                    }
                    continue 'upstreams;
                }
                if attempt > 1 {
                    state
                        .metrics
                        .retries
                        .get_or_create(&UpstreamLabels {
                            upstream: up.name.clone(),
                        })
                        .inc();
                }
                attempts += 1;
                let sent = Instant::now();
                let first_byte_deadline = deadline.min(sent + up.timeouts.first_byte);
                let request =
                    match up.build_request(out.method, out.suffix, out.headers, out.body.clone()) {
                        Ok(r) => r,
                        Err(e) => return e.into_response(),
                    };
                let result = tokio::time::timeout_at(first_byte_deadline, async {
                    let response = up.send(request).await?;
                    if !response.status().is_success() {
                        return Ok((response, None));
                    }
                    // Wait for the first chunk too: until it arrives nothing has reached the
                    // client, so a failure here can still be retried or answered with a status.
                    let (parts, mut body) = response.into_parts();
                    let first = loop {
                        match body.frame().await {
                            Some(Ok(frame)) => match frame.into_data() {
                                Ok(data) if data.is_empty() => {}
                                Ok(data) => break Some(data),
                                Err(_) => {}
                            },
                            Some(Err(_)) => return Err(SendError::Broken),
                            None => break None,
                        }
                        if body.is_end_stream() {
                            break None;
                        }
                    };
                    Ok((Response::from_parts(parts, body), first))
                })
                .await;
                let ttfb = sent.elapsed();
                let failure = match result {
                    Ok(Ok((response, _))) if is_auth_failure(response.status()) => {
                        // Our key is wrong or revoked: an operator's problem, said loudly; the
                        // client learns only that the gateway failed. Another upstream may work.
                        state
                            .metrics
                            .upstream_auth_failures
                            .get_or_create(&UpstreamLabels {
                                upstream: up.name.clone(),
                            })
                            .inc();
                        tracing::error!(
                            upstream = %up.name,
                            status = response.status().as_u16(),
                            "upstream refused the proxy's API key: check the upstream key Secret"
                        );
                        last = Some(Failure::Auth);
                        continue 'upstreams;
                    }
                    Ok(Ok((response, first))) => {
                        let status = response.status();
                        if !retryable(status) {
                            if status.is_server_error() {
                                note_breaker(state, up, up.breaker.on_failure());
                            } else {
                                note_breaker(state, up, up.breaker.on_success());
                            }
                            observe_ttfb(state, up, ttfb);
                            return relay(
                                state, up, response, first, ttfb, attempts, deadline, out.model,
                                out.client,
                            );
                        }
                        // A 429 is an answer from a working upstream, not a failure.
                        let change = if status == StatusCode::TOO_MANY_REQUESTS {
                            up.breaker.on_success()
                        } else {
                            up.breaker.on_failure()
                        };
                        note_breaker(state, up, change);
                        Failure::Answer(up.clone(), response, ttfb)
                    }
                    Ok(Err(SendError::Connect)) => {
                        note_breaker(state, up, up.breaker.on_failure());
                        Failure::Connect
                    }
                    Ok(Err(SendError::Broken)) => {
                        note_breaker(state, up, up.breaker.on_failure());
                        last = Some(Failure::Broken);
                        continue 'upstreams;
                    }
                    Ok(Err(SendError::Unusable(e))) => {
                        // Retrying the same certificate or proxy gets the same refusal.
                        note_breaker(state, up, up.breaker.on_failure());
                        last = Some(Failure::Unusable(e));
                        continue 'upstreams;
                    }
                    Err(_elapsed) => {
                        // Not retried: the upstream may still be working (and billing) on it.
                        note_breaker(state, up, up.breaker.on_failure());
                        last = Some(Failure::Timeout);
                        continue 'upstreams;
                    }
                };
                let hint = match &failure {
                    Failure::Answer(_, r, _) => retry_after(r.headers()),
                    _ => None,
                };
                last = Some(failure);
                if attempt == policy.max_attempts {
                    break;
                }
                let backoff = policy.backoff(attempt);
                let wait = match hint {
                    // A longer wait than we would ever back off ends the attempts on this upstream.
                    Some(h) if h > policy.max_backoff => continue 'upstreams,
                    Some(h) => h.max(backoff),
                    None => backoff,
                };
                if Instant::now() + wait >= deadline {
                    continue 'upstreams;
                }
                tokio::time::sleep(wait).await;
            }
        }
        match last {
            Some(Failure::Answer(up, response, ttfb)) => {
                let deadline = start + up.timeouts.total;
                observe_ttfb(state, &up, ttfb);
                relay(
                    state, &up, response, None, ttfb, attempts, deadline, out.model, out.client,
                )
            }
            Some(Failure::Timeout) => ProxyError::GatewayTimeout.into_response(),
            Some(Failure::Auth) => ProxyError::UpstreamAuth.into_response(),
            Some(Failure::Unusable(e)) => e.into_response(),
            Some(Failure::Open(wait)) => ProxyError::Unavailable(wait).into_response(),
            Some(Failure::Connect | Failure::Broken) | None => {
                ProxyError::BadGateway.into_response()
            }
        }
    }
}

/// 401 and 403 from an upstream are about the proxy's key, not the client's request.
fn is_auth_failure(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403)
}

fn note_breaker(state: &Forwarder, up: &Upstream, change: Option<super::breaker::State>) {
    if let Some(s) = change {
        state.metrics.breaker(&up.name, s.code());
        tracing::warn!(upstream = %up.name, state = s.code(), "circuit breaker changed state");
    }
}

fn observe_ttfb(state: &Forwarder, up: &Upstream, ttfb: Duration) {
    state
        .metrics
        .upstream_ttfb
        .get_or_create(&UpstreamLabels {
            upstream: up.name.clone(),
        })
        .observe(ttfb.as_secs_f64());
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site each, all values distinct"
)]
fn relay(
    state: &Forwarder,
    up: &Upstream,
    response: Response<Incoming>,
    first: Option<Bytes>,
    ttfb: Duration,
    attempts: u32,
    deadline: Instant,
    model: Arc<str>,
    client: Arc<str>,
) -> Response {
    let (mut parts, body) = response.into_parts();
    headers::clean_response(&mut parts.headers);
    let sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if sse {
        // Tell a buffering reverse proxy in front (e.g. an NGINX Ingress) to pass chunks on.
        parts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let exchange = Arc::new(Exchange {
        model,
        client,
        upstream: up.name.clone(),
        attempts,
        ttfb,
        usage: OnceLock::new(),
        stream_error: OnceLock::new(),
    });
    parts.extensions.clear();
    parts.extensions.insert(exchange.clone());
    let body = Relay::new(
        first,
        body,
        sse,
        up.timeouts.idle,
        deadline,
        exchange,
        state.metrics.clone(),
    );
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b2 = p.backoff(2);
            assert!(b2 >= Duration::from_millis(100) && b2 <= Duration::from_millis(200));
            let b9 = p.backoff(9);
            assert!(b9 >= Duration::from_millis(150) && b9 <= Duration::from_millis(300));
        }
    }
}
