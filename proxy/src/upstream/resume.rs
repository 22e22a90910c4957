//! The upstream side of mid-stream failover: the continuation of a broken stream is sent to
//! the upstreams after the one that broke exactly as a first request is sent (each breaker,
//! retries, the next upstream when one cannot answer; deadlines from the request's start), and
//! only an answer that is a stream of events is taken. One that breaks in turn goes on after
//! the upstream that took over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::time::Instant;

use super::Upstream;
use super::forward::{Forwarder, Outgoing, is_event_stream};
use crate::failover::relay::{Next, Resume, Resumed};
use crate::telemetry::RequestTrace;

/// The continuations of one stream: what its request was, and which upstreams are left.
pub struct Continue {
    forwarder: Forwarder,
    upstreams: Arc<[Arc<Upstream>]>,
    /// How many of `upstreams` have taken over or failed already.
    used: Arc<AtomicUsize>,
    method: Method,
    suffix: Arc<str>,
    headers: Arc<HeaderMap>,
    model: Arc<str>,
    client: Arc<str>,
    operation: Option<&'static str>,
    /// The request's trace: a continuation's attempts are client spans of it too.
    trace: RequestTrace,
    start: Instant,
}

impl Continue {
    /// Continuations of `out` on `rest`, the upstreams after the one streaming.
    pub fn new(
        forwarder: &Forwarder,
        rest: &[Arc<Upstream>],
        out: &Outgoing<'_>,
        start: Instant,
    ) -> Self {
        Self {
            forwarder: forwarder.clone(),
            upstreams: rest.into(),
            used: Arc::default(),
            method: out.method.clone(),
            suffix: Arc::from(out.suffix),
            headers: Arc::new(out.headers.clone()),
            model: out.model.clone(),
            client: out.client.clone(),
            operation: out.operation,
            trace: out.trace.clone(),
            start,
        }
    }
}

impl Next for Continue {
    fn next(&mut self, body: Bytes) -> Option<(Arc<str>, Resume)> {
        let from = self.used.load(Ordering::Relaxed);
        let to = self.upstreams.get(from)?.name.clone();
        let (forwarder, upstreams, used) = (
            self.forwarder.clone(),
            self.upstreams.clone(),
            self.used.clone(),
        );
        let (method, suffix, headers) = (
            self.method.clone(),
            self.suffix.clone(),
            self.headers.clone(),
        );
        let (model, client, start) = (self.model.clone(), self.client.clone(), self.start);
        let (operation, trace) = (self.operation, self.trace.clone());
        let resume = async move {
            let out = Outgoing {
                method: &method,
                suffix: &suffix,
                headers: &headers,
                body,
                model,
                client,
                continues: false,
                operation,
                trace,
            };
            let rest = upstreams.get(from..).unwrap_or_default();
            let mut attempts = 0;
            let chosen = forwarder.choose(rest, &out, start, &mut attempts).await;
            used.store(
                chosen
                    .as_ref()
                    .map_or(upstreams.len(), |c| from + c.index + 1),
                Ordering::Relaxed,
            );
            let chosen = chosen.ok()?;
            let stream =
                chosen.response.status().is_success() && is_event_stream(chosen.response.headers());
            if !stream {
                return None;
            }
            forwarder.observe_ttfb(&chosen.up, chosen.ttfb);
            Some(Resumed {
                upstream: chosen.up.name.clone(),
                body: chosen.response.into_body(),
                first: chosen.first,
                idle: chosen.up.timeouts.idle,
            })
        };
        Some((to, Box::pin(resume)))
    }
}
