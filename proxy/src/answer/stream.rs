//! An upstream's answer on its way to the client: chunks passed on as they arrive, never
//! buffered beyond one incomplete event.
//!
//! For server-sent events only whole events go out ([`Splitter`]); each is parsed once and
//! seen by the stream's [`Hooks`] (metering's usage filter, and whatever else plugs in) and by
//! the usage reader; a run of events no hook changed goes out as the very bytes that came in.
//! The idle and total timeouts after the first byte and the drain deadline are watched here; a
//! broken stream (reset, timeout, shutdown) ends with an error event OpenAI clients raise as an
//! API error, any other body is aborted. Dropping the stream (the client went away) drops the
//! upstream body, which cancels that request.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::hook::{End, Hooks};
use crate::observability::facts::{Facts, Usage};

use super::reply::Reply;
use super::usage::{Tail, find_usage};
use crate::observability::metrics::{Metrics, StreamErrorLabels, TokenLabels};
use crate::sse::{self, Splitter};

/// Cancelled at the drain deadline: every answer still being relayed ends then.
static CUT: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Ends every answer still being relayed: streams get their error event, other bodies are
/// aborted (the drain deadline has passed).
pub fn cut_open_answers() {
    CUT.cancel();
}

/// Everything a [`Stream`] starts from.
pub struct StreamSetup {
    /// The chunk already read to confirm the answer.
    pub first: Option<Bytes>,
    /// The rest of the upstream's body.
    pub body: Incoming,
    /// The answer is `text/event-stream`.
    pub sse: bool,
    /// Hooks on each event (SSE only).
    pub hooks: Hooks,
    /// Longest pause between chunks.
    pub idle: Duration,
    /// End of the whole exchange.
    pub deadline: Instant,
    /// Metrics (stream errors, tokens).
    pub metrics: Arc<Metrics>,
}

/// An upstream's body being relayed.
pub struct Stream {
    first: Option<Bytes>,
    inner: Option<Incoming>,
    /// Set for server-sent events.
    events: Option<Events>,
    idle: Duration,
    deadline: Instant,
    /// Made on the first wait only: most non-streamed answers never need one.
    timer: Option<Pin<Box<Sleep>>>,
    /// The drain deadline, watched from the first wait on.
    cut: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// The end of a non-SSE answer, where its usage is.
    tail: Tail,
    /// A non-SSE answer's head has been read (its `model`).
    head_read: bool,
    metrics: Arc<Metrics>,
}

/// What a stream of events keeps: its splitter, hooks, and the usage, model and finish
/// reasons seen.
struct Events {
    splitter: Splitter,
    hooks: Hooks,
    usage: Option<Usage>,
    reply: Reply,
}

static USAGE_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));

impl Events {
    /// A run of whole events: usage read, hooks applied.
    fn run(&mut self, run: Bytes) -> Bytes {
        let usage = &mut self.usage;
        let reply = &mut self.reply;
        let mut read = |e: &sse::Event<'_>| {
            let raw = e.raw();
            reply.read_event(raw);
            if USAGE_KEY.find(raw).is_some()
                && let Some(data) = e.data()
                && let Some(u) = find_usage(&data)
            {
                *usage = Some(u);
            }
        };
        if self.hooks.is_empty() {
            sse::events(&run).for_each(|e| read(&e));
            return run;
        }
        self.hooks.run(&run, read).unwrap_or(run)
    }
}

impl Stream {
    /// Relays `setup.body`, starting with `setup.first`.
    pub fn new(setup: StreamSetup) -> Self {
        Self {
            first: setup.first,
            inner: Some(setup.body),
            events: setup.sse.then(|| Events {
                splitter: Splitter::default(),
                hooks: setup.hooks,
                usage: None,
                reply: Reply::default(),
            }),
            idle: setup.idle,
            deadline: setup.deadline,
            timer: None,
            cut: None,
            tail: Tail::default(),
            head_read: false,
            metrics: setup.metrics,
        }
    }

    /// Adds a hook on each event; `false` if this is not a stream of events.
    pub fn add_hook(&mut self, hook: impl super::hook::EventHook + 'static) -> bool {
        match self.events.as_mut() {
            Some(events) => {
                events.hooks.push(hook);
                true
            }
            None => false,
        }
    }

    fn rearm(&mut self) {
        if let Some(timer) = self.timer.as_mut() {
            let next = self.deadline.min(Instant::now() + self.idle);
            timer.as_mut().reset(next);
        }
    }

    /// The answer is complete: usage counted, and what is left to send.
    fn finish(&mut self, facts: &mut Facts) -> Option<Bytes> {
        self.inner = None;
        let (usage, rest) = match self.events.as_mut() {
            Some(events) => {
                let added = events.hooks.end(End::Complete);
                let held = events.splitter.finish();
                (events.hooks.usage().or(events.usage), concat(added, held))
            }
            None => {
                let mut reply = Reply::default();
                reply.read_finish(self.tail.bytes());
                facts.gen_ai.finish_reasons = reply.finish_reasons;
                (self.tail.usage(), None)
            }
        };
        self.said(facts);
        if let Some(usage) = usage {
            let labels = |kind| TokenLabels {
                client: facts
                    .client
                    .clone()
                    .unwrap_or_else(crate::observability::facts::anonymous),
                model: facts.model.clone().unwrap_or_else(|| Arc::from("-")),
                kind,
            };
            let tokens = &self.metrics.tokens;
            tokens
                .get_or_create(&labels("prompt"))
                .inc_by(usage.prompt_tokens);
            tokens
                .get_or_create(&labels("completion"))
                .inc_by(usage.completion_tokens);
            facts.usage = Some(usage);
        }
        rest
    }

    /// The stream broke after its first byte: an SSE stream ends with an error event, any
    /// other body is aborted (the client sees a truncated answer, never a wrong one).
    fn fail(
        &mut self,
        reason: &'static str,
        facts: &mut Facts,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.inner = None;
        facts.error = Some(reason);
        self.said(facts);
        self.metrics
            .stream_errors
            .get_or_create(&StreamErrorLabels {
                upstream: facts.upstream.clone().unwrap_or_else(|| Arc::from("-")),
                reason,
            })
            .inc();
        let Some(events) = self.events.as_mut() else {
            return Poll::Ready(Some(Err(BoxError::from(reason))));
        };
        events.splitter.clear();
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
        let added = events.hooks.end(End::Broken(reason));
        // Through the hooks like any event: a translating hook puts it in its dialect.
        let event = sse::error_event(message, code);
        let event = events.hooks.run(&event, |_| {}).unwrap_or(event);
        let out = concat(added, Some(event)).unwrap_or_default();
        Poll::Ready(Some(Ok(Frame::data(out))))
    }

    /// What the answer said about itself so far (model, finish reasons) goes to `facts`.
    fn said(&mut self, facts: &mut Facts) {
        if let Some(events) = self.events.as_mut() {
            let reply = std::mem::take(&mut events.reply);
            facts.gen_ai.finish_reasons = reply.finish_reasons;
            facts.gen_ai.response_model = reply.model;
        }
    }

    /// A chunk of the answer: what of it can go to the client now (SSE: whole events only).
    fn take(&mut self, data: Bytes, facts: &mut Facts) -> Option<Bytes> {
        let out = match self.events.as_mut() {
            Some(events) => events.splitter.push(data).map(|run| events.run(run)),
            None => {
                if !std::mem::replace(&mut self.head_read, true) {
                    let mut reply = Reply::default();
                    reply.read_model(&data);
                    facts.gen_ai.response_model = reply.model;
                }
                self.tail.push(&data);
                Some(data)
            }
        };
        let out = out.filter(|b| !b.is_empty());
        if self.events.is_some() && out.is_some() {
            // Time to first token and per output token are measured on events sent on.
            let now = std::time::Instant::now();
            let first = facts.gen_ai.stream.map_or(now, |(first, _)| first);
            facts.gen_ai.stream = Some((first, now));
        }
        if self.inner.as_ref().is_none_or(Body::is_end_stream) {
            // A sized body may never be polled to its end: finish on the last byte.
            let rest = self.finish(facts);
            return concat(out, rest);
        }
        self.rearm();
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

    /// The next frame for the client; `facts` learns the usage and how the stream ended.
    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
        facts: &mut Facts,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take()
            && let Some(out) = self.take(first, facts)
        {
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
        loop {
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not passed on.
                    if let Ok(data) = frame.into_data()
                        && let Some(out) = self.take(data, facts)
                    {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(Some(Err(_))) => return self.fail("reset", facts),
                Poll::Ready(None) => {
                    let rest = self.finish(facts);
                    return Poll::Ready(rest.map(|b| Ok(Frame::data(b))));
                }
                Poll::Pending => {
                    return match self.poll_wait(cx) {
                        Poll::Ready(reason) => self.fail(reason, facts),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    /// Only after `finish` ran, so usage is always read from a complete answer.
    pub fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_none()
    }

    /// The upstream's length, when no hook can change it.
    pub fn size_hint(&self) -> SizeHint {
        if self.events.as_ref().is_some_and(|e| !e.hooks.is_empty()) {
            return SizeHint::default();
        }
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

/// `a` then `b`, copied only when both are there.
fn concat(a: Option<Bytes>, b: Option<Bytes>) -> Option<Bytes> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let mut all = BytesMut::with_capacity(a.len() + b.len());
            all.extend_from_slice(&a);
            all.extend_from_slice(&b);
            Some(all.freeze())
        }
        (a, b) => a.or(b).filter(|x| !x.is_empty()),
    }
}
