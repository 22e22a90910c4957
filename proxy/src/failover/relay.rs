//! What the relay asks of a failover while a stream of a continuing model is relayed: each run
//! of whole events goes through [`Failover::filter`] (the splice: looked at on the first
//! attempt, rewritten after a continuation; an upstream error event is a break); on a break,
//! [`Failover::broke`] decides and hands back the next upstream's answer to wait for, or
//! refuses; [`Failover::resumed`] learns how that went. Every decision is counted
//! (`ai_proxy_stream_failovers_total`) and written into the answer's facts for the access log.
//! Sending the continuation is the upstream layer's ([`Next`]); nothing here does I/O.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;

use super::splice::{Out, Splice};
use super::{Refusal, request};
use crate::observability::facts::Hop;
use crate::observability::metrics::{FailoverLabels, Metrics};
use crate::sse;

/// The next upstream's answer, once its first byte came: `None` when none answered with a
/// stream.
pub type Resume = Pin<Box<dyn Future<Output = Option<Resumed>> + Send>>;

/// A continuing upstream's stream, ready to relay.
pub struct Resumed {
    /// Its name.
    pub upstream: Arc<str>,
    /// The rest of its body.
    pub body: Incoming,
    /// Its first chunk.
    pub first: Option<Bytes>,
    /// Its idle timeout.
    pub idle: Duration,
}

/// Sends a continuation to the upstreams after the one streaming now (the upstream layer's).
pub trait Next: Send {
    /// The name of the next upstream and its answer to `body` (with retries, and the ones after
    /// it when it cannot answer), or `None` when there is no upstream left.
    fn next(&mut self, body: Bytes) -> Option<(Arc<str>, Resume)>;
}

/// The failover state of one stream.
pub struct Failover {
    splice: Splice,
    /// The body the upstreams were sent.
    sent: Bytes,
    model: Arc<str>,
    /// The upstream streaming now.
    from: Arc<str>,
    /// The one asked to continue, while its answer is awaited.
    asked: Option<Arc<str>>,
    next: Box<dyn Next>,
    metrics: Arc<Metrics>,
}

impl Failover {
    /// The failover of a stream of `model` from `from`, whose request body was `sent`.
    pub fn new(
        model: Arc<str>,
        from: Arc<str>,
        sent: Bytes,
        next: Box<dyn Next>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            splice: Splice::default(),
            sent,
            model,
            from,
            asked: None,
            next,
            metrics,
        }
    }

    /// A run of whole events: what the client gets of it, and, when an event of it was the
    /// upstream's error event and the stream is continued, the continuation to wait for (the
    /// events after it are dropped with the broken upstream) and that error event (sent if the
    /// continuation fails). A refused error event goes out as it came.
    pub fn filter(&mut self, run: Bytes, hops: &mut Vec<Hop>) -> (Bytes, Option<(Resume, Bytes)>) {
        let mut out: Option<Vec<u8>> = None;
        let mut at = 0;
        for event in sse::events(&run) {
            let raw = event.raw();
            let start = at;
            at += raw.len();
            let verdict = match event.data() {
                Some(data) => self.splice.event(&data),
                None => Out::Same,
            };
            let replacement = match verdict {
                Out::Same => {
                    if let Some(out) = out.as_mut() {
                        out.extend_from_slice(raw);
                    }
                    continue;
                }
                Out::Send(bytes) => bytes,
                Out::Failed => match self.broke(hops) {
                    Some(resume) => {
                        let before = out.map_or_else(|| run.slice(..start), Bytes::from);
                        return (before, Some((resume, run.slice_ref(raw))));
                    }
                    None => Bytes::copy_from_slice(raw),
                },
            };
            out.get_or_insert_with(|| run[..start].to_vec())
                .extend_from_slice(&replacement);
        }
        (out.map_or(run, Bytes::from), None)
    }

    /// The stream broke (reset, stall or error event): the next upstream's answer to wait for,
    /// or `None` when continuing is refused (recorded with its reason).
    pub fn broke(&mut self, hops: &mut Vec<Hop>) -> Option<Resume> {
        let decided = request::refusal(&self.sent)
            .map_or_else(|| self.continuation(), Err)
            .and_then(|body| self.next.next(body).ok_or(Refusal::NoUpstream));
        match decided {
            Ok((to, resume)) => {
                self.asked = Some(to);
                Some(resume)
            }
            Err(refusal) => {
                let dash = Arc::from("-");
                self.record(hops, dash, "refused", Some(refusal.as_str()));
                None
            }
        }
    }

    fn continuation(&mut self) -> Result<Bytes, Refusal> {
        let handover = self.splice.fail()?;
        request::continuation(&self.sent, handover.delivered, handover.used)
            .map(Bytes::from)
            .ok_or(Refusal::NotChat)
    }

    /// The continuation's answer came (`Some`: its stream follows) or none did.
    pub fn resumed(&mut self, resumed: Option<&Resumed>, hops: &mut Vec<Hop>) {
        let asked = self.asked.take().unwrap_or_else(|| Arc::from("-"));
        match resumed {
            Some(r) => {
                self.record(hops, r.upstream.clone(), "continued", None);
                self.from = r.upstream.clone();
            }
            None => self.record(hops, asked, "failed", None),
        }
    }

    fn record(
        &self,
        hops: &mut Vec<Hop>,
        to: Arc<str>,
        outcome: &'static str,
        reason: Option<&'static str>,
    ) {
        self.metrics
            .stream_failovers
            .get_or_create(&FailoverLabels {
                model: self.model.clone(),
                from: self.from.clone(),
                to: to.clone(),
                outcome,
            })
            .inc();
        hops.push(Hop {
            from: self.from.clone(),
            to,
            outcome,
            reason,
        });
    }
}
