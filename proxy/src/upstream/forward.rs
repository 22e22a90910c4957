//! Sending a request to the model's upstreams, one way: for each upstream in order, its
//! breaker admits or skips it; each [`attempt`] yields an [`Outcome`]; [`judge`] (one table)
//! says what the outcome means for the breaker and what comes next: serve it, retry the same
//! upstream (exponential backoff, jitter, the upstream's `Retry-After`), or go on to the next.
//! Nothing flows back: the breaker is told once per attempt, and the answer, once chosen, is
//! handed to the relay ([`crate::answer::Stream`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

use super::attempt::{Outcome, attempt};
use super::breaker::Health;
use super::resume::Continue;
use super::{Upstream, headers};
use crate::answer::hook::Hooks;
use crate::answer::{Answer, Stream, StreamSetup};
use crate::error_answer::ProxyError;
use crate::failover::relay::Failover;
use crate::observability::metrics::{Metrics, UpstreamLabels};
use crate::telemetry::{Attempt, AttemptStart, RequestTrace};

/// Sends requests to upstreams: the retry policy and where outcomes are counted.
#[derive(Clone)]
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
    /// A stream that breaks after its first byte is continued on the next upstream
    /// (`on_stream_failure = "continue"`).
    pub continues: bool,
    /// The GenAI operation of the route (`chat`, …; `None` on pass-through paths).
    pub operation: Option<&'static str>,
    /// The request's trace: each attempt is a client span of it.
    pub trace: RequestTrace,
}

/// An answer to relay: a success (with its first chunk), or a status not worth retrying.
pub(super) struct Chosen {
    pub(super) up: Arc<Upstream>,
    pub(super) response: Response<Incoming>,
    pub(super) first: Option<Bytes>,
    pub(super) ttfb: Duration,
    /// Where `up` is in the list tried.
    pub(super) index: usize,
}

/// What comes after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Relay this answer to the client.
    Serve,
    /// Try the same upstream again (after a backoff), if attempts and time are left.
    Retry,
    /// Give up on this upstream; the next one is tried.
    Fallback,
}

/// The one table of what an attempt's outcome means: for the upstream's breaker, and for
/// what comes next.
fn judge(outcome: &Outcome) -> (Health, Next) {
    match outcome {
        Outcome::Answer(..) => (Health::Good, Next::Serve),
        // Our key is wrong or revoked: not the upstream's health; another upstream may work.
        Outcome::Status(r) if is_auth_failure(r.status()) => (Health::Unknown, Next::Fallback),
        // A 429 is an answer from a working upstream, not a failure.
        Outcome::Status(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
            (Health::Good, Next::Retry)
        }
        Outcome::Status(r) if retryable(r.status()) => (Health::Bad, Next::Retry),
        Outcome::Status(r) if r.status().is_server_error() => (Health::Bad, Next::Serve),
        Outcome::Status(_) => (Health::Good, Next::Serve),
        // The upstream saw nothing: safe to send again.
        Outcome::Connect => (Health::Bad, Next::Retry),
        // Not retried: the upstream may still be working (and billing) on it.
        Outcome::Broken | Outcome::Timeout => (Health::Bad, Next::Fallback),
        // Retrying the same certificate or proxy gets the same refusal.
        Outcome::Refused(_) => (Health::Bad, Next::Fallback),
    }
}

/// Why no upstream answer was served: the answer the client gets instead.
pub(super) enum Failure {
    /// The request could not be built for an upstream.
    Invalid(ProxyError),
    Connect,
    Broken,
    Timeout,
    Open(Duration),
    /// The upstream refused our key: never shown to the client.
    Auth,
    /// The connection cannot be made (TLS, egress proxy): the answer if no upstream works.
    Unusable(ProxyError),
    /// A retryable status that stayed: relayed as it is when nothing better came.
    Status(Arc<Upstream>, Response<Incoming>, Duration),
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// 401 and 403 from an upstream are about the proxy's key, not the client's request.
fn is_auth_failure(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403)
}

impl Forwarder {
    /// Sends `out` to `upstreams` in order, and answers with the first usable response (relayed
    /// as a stream) or the error that best describes why there is none.
    pub async fn forward(
        &self,
        upstreams: &[Arc<Upstream>],
        out: Outgoing<'_>,
    ) -> Response<Answer> {
        let start = Instant::now();
        let mut attempts = 0u32;
        let chosen = match self.choose(upstreams, &out, start, &mut attempts).await {
            Ok(chosen) => chosen,
            Err(Some(Failure::Status(up, response, ttfb))) => Chosen {
                up,
                response,
                first: None,
                ttfb,
                index: upstreams.len(),
            },
            Err(Some(Failure::Invalid(e) | Failure::Unusable(e))) => return Answer::error(e),
            Err(Some(Failure::Timeout)) => return Answer::error(ProxyError::GatewayTimeout),
            Err(Some(Failure::Auth)) => return Answer::error(ProxyError::UpstreamAuth),
            Err(Some(Failure::Open(wait))) => {
                return Answer::error(ProxyError::Unavailable(wait));
            }
            Err(Some(Failure::Connect | Failure::Broken) | None) => {
                return Answer::error(ProxyError::BadGateway);
            }
        };
        let rest = upstreams.get(chosen.index + 1..).unwrap_or_default();
        self.relay(chosen, rest, attempts, start, &out)
    }

    /// Tries `upstreams` in order, each while its breaker admits it and with retries, until
    /// one gives an answer to serve; else the failure that says most about why none did.
    /// `attempts` counts every attempt made; deadlines count from `start`.
    pub(super) async fn choose(
        &self,
        upstreams: &[Arc<Upstream>],
        out: &Outgoing<'_>,
        start: Instant,
        attempts: &mut u32,
    ) -> Result<Chosen, Option<Failure>> {
        let policy = self.retry;
        let mut last = None;
        for (index, up) in upstreams.iter().enumerate() {
            let deadline = start + up.timeouts.total;
            for n in 1..=policy.max_attempts {
                if let Err(wait) = up.breaker.try_acquire() {
                    // A real answer from an earlier attempt says more than "open".
                    last.get_or_insert(Failure::Open(wait));
                    break;
                }
                if n > 1 {
                    self.count(&self.metrics.retries, up);
                }
                *attempts += 1;
                let mut request =
                    match up.build_request(out.method, out.suffix, out.headers, out.body.clone()) {
                        Ok(r) => r,
                        Err(e) => return Err(Some(Failure::Invalid(e))),
                    };
                let span = out.trace.attempt(&AttemptStart {
                    operation: out.operation,
                    provider: up.kind.provider_name(),
                    model: out.operation.map(|_| &*out.model),
                    upstream: &up.name,
                    server: (&up.server.0, up.server.1),
                    url: &without_query(request.uri()),
                    method: out.method,
                    number: *attempts,
                });
                // The upstream's parent is this attempt, in the client's trace.
                span.inject(request.headers_mut());
                let sent = Instant::now();
                let outcome =
                    attempt(up, request, deadline.min(sent + up.timeouts.first_byte)).await;
                let ttfb = sent.elapsed();
                let (health, next) = judge(&outcome);
                self.note(up, health);
                let chosen = |response, first| Chosen {
                    up: up.clone(),
                    response,
                    first,
                    ttfb,
                    index,
                };
                end_span(span, &outcome, next, &out.trace);
                let failure = match outcome {
                    Outcome::Answer(response, first) => return Ok(chosen(response, first)),
                    Outcome::Status(r) if next == Next::Serve => return Ok(chosen(r, None)),
                    Outcome::Status(r) if is_auth_failure(r.status()) => {
                        // An operator's problem, said loudly; the client learns only that the
                        // gateway failed.
                        self.count(&self.metrics.upstream_auth_failures, up);
                        tracing::error!(
                            upstream = %up.name,
                            status = r.status().as_u16(),
                            "upstream refused the proxy's API key: check the upstream key Secret"
                        );
                        Failure::Auth
                    }
                    Outcome::Status(r) => Failure::Status(up.clone(), r, ttfb),
                    Outcome::Connect => Failure::Connect,
                    Outcome::Broken => Failure::Broken,
                    Outcome::Timeout => Failure::Timeout,
                    Outcome::Refused(e) => Failure::Unusable(e),
                };
                let hint = match &failure {
                    Failure::Status(_, r, _) => retry_after(r.headers()),
                    _ => None,
                };
                last = Some(failure);
                if next != Next::Retry || n == policy.max_attempts {
                    break;
                }
                let backoff = policy.backoff(n);
                let wait = match hint {
                    // A longer wait than we would ever back off ends the attempts here.
                    Some(h) if h > policy.max_backoff => break,
                    Some(h) => h.max(backoff),
                    None => backoff,
                };
                if Instant::now() + wait >= deadline {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        }
        Err(last)
    }

    /// Tells `up`'s breaker how the attempt went; a change of state is counted and logged.
    fn note(&self, up: &Upstream, health: Health) {
        if let Some(s) = up.breaker.record(health) {
            self.metrics.breaker(&up.name, s.code());
            tracing::warn!(upstream = %up.name, state = s.code(), "circuit breaker changed state");
        }
    }

    fn count(&self, family: &Family<UpstreamLabels, Counter>, up: &Upstream) {
        family
            .get_or_create(&UpstreamLabels {
                upstream: up.name.clone(),
            })
            .inc();
    }

    /// The chosen answer, on its way to the client; `rest` are the upstreams after its own,
    /// where a broken stream of a continuing model goes on.
    fn relay(
        &self,
        chosen: Chosen,
        rest: &[Arc<Upstream>],
        attempts: u32,
        start: Instant,
        out: &Outgoing<'_>,
    ) -> Response<Answer> {
        let Chosen {
            up,
            response,
            first,
            ttfb,
            ..
        } = chosen;
        self.observe_ttfb(&up, ttfb);
        let (mut parts, body) = response.into_parts();
        headers::clean_response(&mut parts.headers);
        let sse = is_event_stream(&parts.headers);
        if sse {
            // Tell a buffering reverse proxy in front (e.g. an NGINX Ingress) to pass chunks on.
            parts
                .headers
                .insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        let failover = (sse && out.continues && parts.status.is_success()).then(|| {
            let next = Continue::new(self, rest, out, start);
            let (model, from) = (out.model.clone(), up.name.clone());
            Failover::new(
                model,
                from,
                out.body.clone(),
                Box::new(next),
                self.metrics.clone(),
            )
        });
        parts.extensions.clear();
        let mut answer = Answer::stream(Stream::new(StreamSetup {
            first,
            body,
            sse,
            hooks: Hooks::default(),
            failover,
            idle: up.timeouts.idle,
            deadline: start + up.timeouts.total,
            metrics: self.metrics.clone(),
        }));
        let facts = &mut answer.facts;
        facts.model = Some(out.model.clone());
        facts.client = Some(out.client.clone());
        facts.upstream = Some(up.name.clone());
        facts.provider = Some(up.kind.provider_name());
        facts.attempts = attempts;
        facts.ttfb = Some(ttfb);
        Response::from_parts(parts, answer)
    }

    /// Time to `up`'s first byte, for the answer that is relayed.
    pub(super) fn observe_ttfb(&self, up: &Upstream, ttfb: Duration) {
        self.metrics
            .upstream_ttfb
            .get_or_create(&UpstreamLabels {
                upstream: up.name.clone(),
            })
            .observe(ttfb.as_secs_f64());
    }
}

/// `Content-Type: text/event-stream`.
pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Ends the span of an attempt that failed; the one served stays open with the request.
fn end_span(span: Attempt, outcome: &Outcome, next: Next, trace: &RequestTrace) {
    match outcome {
        Outcome::Answer(r, _) => {
            span.answered(r.status().as_u16());
            trace.answered_by(span);
        }
        Outcome::Status(r) if next == Next::Serve => {
            span.answered(r.status().as_u16());
            trace.answered_by(span);
        }
        Outcome::Status(r) => {
            let status = r.status().as_u16();
            span.failed(Some(status), &status.to_string());
        }
        Outcome::Connect => span.failed(None, "connect"),
        Outcome::Broken => span.failed(None, "broken"),
        Outcome::Timeout => span.failed(None, "timeout"),
        // Its error code: `upstream_tls_failed`, `egress_proxy_auth_failed`, ...
        Outcome::Refused(e) => span.failed(None, e.code()),
    }
}

/// Scheme, authority and path of `uri`: a span's `url.full` without the client's query.
fn without_query(uri: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str()),
        uri.path()
    )
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
