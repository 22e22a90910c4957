//! The answer body: upstream chunks passed to the client as they arrive, never buffered.
//!
//! It enforces the idle and total timeouts after the first byte, keeps the answer's tail to
//! count token usage, passes server-sent events on whole ([`Framer`]) and turns a broken stream
//! (upstream reset, timeout, or the drain deadline at shutdown) into an error event OpenAI
//! clients raise as an API error. Dropping it (the client went away) drops the upstream body,
//! which cancels that request.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::sse::Framer;
use super::usage::Tail;
use crate::observability::exchange::Exchange;
use crate::observability::metrics::{Metrics, StreamErrorLabels, TokenLabels};

/// Cancelled at the drain deadline: every answer still being relayed ends then.
static CUT: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Ends every answer still being relayed: streams get their error event, other bodies are
/// aborted (the drain deadline has passed).
pub fn cut_open_answers() {
    CUT.cancel();
}

/// A streaming relay body.
pub struct Relay {
    first: Option<Bytes>,
    inner: Option<Incoming>,
    /// Set for server-sent events.
    framer: Option<Framer>,
    idle: Duration,
    deadline: Instant,
    /// Made on the first wait only: most non-streamed answers never need one.
    timer: Option<Pin<Box<Sleep>>>,
    /// The drain deadline, watched from the first wait on.
    cut: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    tail: Tail,
    exchange: Arc<Exchange>,
    metrics: Arc<Metrics>,
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
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            first,
            inner: Some(inner),
            framer: sse.then(Framer::default),
            idle,
            deadline,
            timer: None,
            cut: None,
            tail: Tail::default(),
            exchange,
            metrics,
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
            let m = &self.metrics;
            let model = &self.exchange.model;
            for (kind, n) in [
                ("prompt", usage.prompt_tokens),
                ("completion", usage.completion_tokens),
            ] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        client: self.exchange.client.clone(),
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
        self.metrics
            .stream_errors
            .get_or_create(&StreamErrorLabels {
                upstream: self.exchange.upstream.clone(),
                reason,
            })
            .inc();
        let Some(framer) = self.framer.as_mut() else {
            return Poll::Ready(Some(Err(BoxError::from(reason))));
        };
        let (message, code) = match reason {
            "idle_timeout" => (
                "The upstream stream stalled (idle timeout).",
                "upstream_timeout",
            ),
            "total_timeout" => (
                "The upstream stream took too long (total timeout).",
                "upstream_timeout",
            ),
            "shutdown" => (
                "The proxy is shutting down and its drain deadline has passed; please retry.",
                "server_shutting_down",
            ),
            _ => (
                "The upstream stream was interrupted.",
                "upstream_stream_error",
            ),
        };
        let event = framer.error_event(message, code);
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    /// A chunk of the answer: what of it can go to the client now (SSE: whole events only).
    fn take(&mut self, data: Bytes) -> Option<Bytes> {
        self.tail.push(&data);
        let ended = self.inner.as_ref().is_none_or(Body::is_end_stream);
        let mut out = match self.framer.as_mut() {
            Some(framer) => framer.push(data),
            None => Some(data),
        };
        if ended {
            // A sized body may never be polled to its end: finish on the last byte.
            self.finish();
            if let Some(rest) = self.framer.as_mut().and_then(Framer::finish) {
                out = Some(match out {
                    Some(head) => [head, rest].concat().into(),
                    None => rest,
                });
            }
        } else {
            self.rearm();
        }
        out
    }

    /// Waits for the drain deadline or the idle/total timer; `Ready` with the reason to cut.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let cut = self
            .cut
            .get_or_insert_with(|| Box::pin(CUT.clone().cancelled_owned()));
        if cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready("shutdown");
        }
        let (deadline, idle) = (self.deadline, self.idle);
        let timer = self.timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(
                deadline.min(Instant::now() + idle),
            ))
        });
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(if Instant::now() >= self.deadline {
            "total_timeout"
        } else {
            "idle_timeout"
        })
    }
}

use axum::BoxError;

impl Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take()
            && let Some(out) = this.take(first)
        {
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not passed on.
                    if let Ok(data) = frame.into_data()
                        && let Some(out) = this.take(data)
                    {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(Some(Err(_))) => return this.fail("reset"),
                Poll::Ready(None) => {
                    this.finish();
                    let rest = this.framer.as_mut().and_then(Framer::finish);
                    return Poll::Ready(rest.map(|b| Ok(Frame::data(b))));
                }
                Poll::Pending => {
                    return match this.poll_wait(cx) {
                        Poll::Ready(reason) => this.fail(reason),
                        Poll::Pending => Poll::Pending,
                    };
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
