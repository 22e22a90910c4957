//! The one body of the way back. Every answer the API port sends, an upstream's relayed or the
//! proxy's own, is an [`Answer`]; what rides along with it is plain fields, not wrappers: the
//! facts for the access log, its record, the metering permit, the client's in-flight slot and
//! the connection's busy mark. Layers see `Response<Answer>` and attach what they hold
//! ([`Answer::hold`], [`Answer::meter`], [`Attach`]); an upstream's body is a [`Stream`].

pub mod hook;
mod reply;
mod stream;
mod usage;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::BoxError;
use bytes::Bytes;
use http::Response;
use http_body::{Frame, SizeHint};

use crate::error_answer::ProxyError;
use crate::limits::Permit;
use crate::observability::access_log::{Attach, Record};
use crate::observability::facts::Facts;
pub use stream::{Stream, StreamSetup, cut_open_answers};

/// The body of every answer on the API port.
pub struct Answer {
    body: Source,
    /// What the access log and the metrics learn about this request (boxed, like the record:
    /// an answer is moved through every layer on its way out, and a small one moves fast).
    pub facts: Box<Facts>,
    /// Settled with the real usage when the answer ends (dropped unsettled: the estimate).
    permit: Option<Permit>,
    record: Option<Box<Record>>,
    /// Guards kept until the answer has been sent or abandoned (in-flight slot, busy mark).
    held: Vec<Box<dyn Send>>,
    bytes: u64,
    ended: bool,
}

enum Source {
    /// Bytes in memory (the proxy's own answers); empty once sent.
    Full(Bytes),
    /// An upstream's answer, relayed (boxed: an answer is moved through every layer on its
    /// way out, and a small one moves in a few words).
    Stream(Box<Stream>),
}

impl Default for Answer {
    fn default() -> Self {
        Self::full(Bytes::new())
    }
}

impl Answer {
    /// An answer of bytes in memory.
    pub fn full(bytes: Bytes) -> Self {
        Self::with(Source::Full(bytes))
    }

    /// An upstream's answer, relayed.
    pub fn stream(stream: Stream) -> Self {
        Self::with(Source::Stream(Box::new(stream)))
    }

    fn with(body: Source) -> Self {
        Self {
            body,
            facts: Box::default(),
            permit: None,
            record: None,
            held: Vec::new(),
            bytes: 0,
            ended: false,
        }
    }

    /// The proxy's own error answer.
    pub fn error(e: ProxyError) -> Response<Self> {
        let code = e.code();
        let mut response = e.into_http().map(Self::full);
        response.body_mut().facts.error = Some(code);
        response
    }

    /// Replaces the body with `bytes` in memory (an answer restyled, or translated whole after
    /// it was read to its end); what rides along (facts, permit, guards) stays, and the bytes
    /// sent are counted afresh.
    pub fn set_full(&mut self, bytes: Bytes) {
        self.body = Source::Full(bytes);
        self.bytes = 0;
    }

    /// Keeps `guard` until the answer has been sent or abandoned.
    pub fn hold(&mut self, guard: impl Send + 'static) {
        self.held.push(Box::new(guard));
    }

    /// Adds an event hook to an upstream's stream of events (see [`hook`]); `false` (and
    /// nothing done) for any other body. The caller drops a `content-length` it had.
    pub fn add_hook(&mut self, hook: impl hook::EventHook + 'static) -> bool {
        match &mut self.body {
            Source::Stream(stream) => stream.add_hook(hook),
            Source::Full(_) => false,
        }
    }

    /// Settles `permit` with the answer's usage when it ends.
    pub fn meter(&mut self, permit: Permit) {
        self.permit = Some(permit);
    }

    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Some(permit) = self.permit.take() {
            permit.settle(self.facts.usage.map(|u| u.total()));
        }
    }
}

impl Attach for Answer {
    fn attach(&mut self, record: Record) {
        self.record = Some(Box::new(record));
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.body {
            Source::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            Source::Full(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Source::Stream(stream) => stream.poll_frame(cx, &mut this.facts),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                // A sized body may never be polled to its end: end on its last byte.
                if http_body::Body::is_end_stream(this) {
                    this.end();
                }
            }
            Poll::Ready(None) => this.end(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Source::Full(bytes) => bytes.is_empty(),
            Source::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Source::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Source::Stream(stream) => stream.size_hint(),
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        let complete = self.ended || http_body::Body::is_end_stream(self);
        if let Some(mut record) = self.record.take() {
            record.facts = *std::mem::take(&mut self.facts);
            record.bytes = self.bytes;
            record.complete = complete;
        }
    }
}
