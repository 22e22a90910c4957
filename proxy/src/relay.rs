//! The answer body: upstream chunks passed to the client as they arrive, never buffered.
//!
//! It enforces the idle and total timeouts after the first byte, keeps the answer's tail to
//! count token usage, and turns a broken stream into an error event OpenAI clients raise on.
//! Dropping it (the client went away) drops the upstream body, which cancels that request.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::error::error_json;
use crate::metrics::{StreamErrorLabels, TokenLabels};
use crate::state::AppState;
use crate::usage::{Tail, Usage};

/// What the access log and metrics learn about one proxied exchange.
#[derive(Debug)]
pub struct Exchange {
    /// Configured model name (`-` for pass-through paths).
    pub model: Arc<str>,
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

/// A streaming relay body.
pub struct Relay {
    first: Option<Bytes>,
    inner: Option<Incoming>,
    sse: bool,
    idle: Duration,
    deadline: Instant,
    /// Made on the first wait only: most non-streamed answers never need one.
    timer: Option<Pin<Box<Sleep>>>,
    tail: Tail,
    exchange: Arc<Exchange>,
    state: Arc<AppState>,
}

impl Relay {
    /// Relays `inner`, starting with `first` (the chunk already read to confirm the answer).
    pub fn new(
        first: Option<Bytes>,
        inner: Incoming,
        sse: bool,
        idle: Duration,
        deadline: Instant,
        exchange: Arc<Exchange>,
        state: Arc<AppState>,
    ) -> Self {
        Self {
            first,
            inner: Some(inner),
            sse,
            idle,
            deadline,
            timer: None,
            tail: Tail::default(),
            exchange,
            state,
        }
    }

    fn rearm(&mut self) {
        if let Some(timer) = self.timer.as_mut() {
            let next = self.deadline.min(Instant::now() + self.idle);
            timer.as_mut().reset(next);
        }
    }

    fn finish(&mut self) {
        self.inner = None;
        if let Some(usage) = self.tail.usage() {
            let m = &self.state.metrics;
            let model = &self.exchange.model;
            for (kind, n) in [
                ("prompt", usage.prompt_tokens),
                ("completion", usage.completion_tokens),
            ] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        model: model.clone(),
                        kind,
                    })
                    .inc_by(n);
            }
            let _ = self.exchange.usage.set(usage);
        }
    }

    /// The stream broke after its first byte: an SSE stream ends with an error event, any
    /// other body is aborted (the client sees a truncated answer, never a wrong one).
    fn fail(&mut self, reason: &'static str) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.inner = None;
        let _ = self.exchange.stream_error.set(reason);
        self.state
            .metrics
            .stream_errors
            .get_or_create(&StreamErrorLabels {
                upstream: self.exchange.upstream.clone(),
                reason,
            })
            .inc();
        if self.sse {
            let message = match reason {
                "idle_timeout" => "The upstream stream stalled (idle timeout).",
                "total_timeout" => "The upstream stream took too long (total timeout).",
                _ => "The upstream stream was interrupted.",
            };
            let code = match reason {
                "idle_timeout" | "total_timeout" => "upstream_timeout",
                _ => "upstream_stream_error",
            };
            let event = format!(
                "\ndata: {}\n\n",
                error_json(message, "server_error", None, code)
            );
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
        } else {
            Poll::Ready(Some(Err(BoxError::from(reason))))
        }
    }
}

fn inner_ended(inner: &Option<Incoming>) -> bool {
    inner.as_ref().is_some_and(|b| b.is_end_stream())
}

/// The body error type axum accepts.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            this.tail.push(&first);
            if inner_ended(&this.inner) {
                this.finish();
            } else {
                this.rearm();
            }
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.tail.push(data);
                }
                if inner_ended(&this.inner) {
                    // A sized body may never be polled to its end: finish on the last byte.
                    this.finish();
                } else {
                    this.rearm();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => this.fail("reset"),
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let (deadline, idle) = (this.deadline, this.idle);
                let timer = this.timer.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(
                        deadline.min(Instant::now() + idle),
                    ))
                });
                ready!(timer.as_mut().poll(cx));
                if Instant::now() >= this.deadline {
                    this.fail("total_timeout")
                } else {
                    this.fail("idle_timeout")
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Only after `finish` ran, so usage is always read from a complete answer.
        self.first.is_none() && self.inner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |b| b.len() as u64);
        match &self.inner {
            Some(inner) => {
                let h = inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(h.lower() + first);
                if let Some(upper) = h.upper() {
                    hint.set_upper(upper + first);
                }
                hint
            }
            None => SizeHint::with_exact(first),
        }
    }
}
