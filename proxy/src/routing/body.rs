//! Reading a request body under three limits: its size (413), time (408 when the client stalls
//! between reads or takes too long in total), and the process-wide budget of bytes held in
//! request bodies (503 at once when taking this body would exceed it), so no mix of slow or
//! large bodies can grow memory past a known bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error_answer::{ProxyError, Result};
use crate::observability::metrics::{Metrics, PhaseLabels};

/// Size and time limits of one body, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Largest body.
    pub max: u64,
    /// Longest pause between two reads.
    pub idle: Duration,
    /// Longest time for the whole body.
    pub total: Duration,
}

/// The bytes of request bodies held at once, all requests together.
pub struct Budget {
    held: AtomicU64,
    cap: u64,
    metrics: Arc<Metrics>,
}

impl Budget {
    /// A budget of `cap` bytes.
    pub fn new(cap: u64, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicU64::new(0),
            cap,
            metrics,
        })
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

/// Bytes taken from the budget, given back on drop (when the request is done with its body).
pub struct Reserved {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reserved {
    /// Nothing taken yet.
    pub fn none(budget: &Arc<Budget>) -> Self {
        Self {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Takes `n` more bytes, or refuses if the budget would be exceeded.
    pub fn grow(&mut self, n: u64) -> Result<()> {
        let b = &self.budget;
        let mut held = b.held.load(Ordering::Relaxed);
        loop {
            let next = held.saturating_add(n);
            if next > b.cap {
                b.metrics.body_budget_rejected.inc();
                return Err(ProxyError::Overloaded);
            }
            match b
                .held
                .compare_exchange_weak(held, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => held = now,
            }
        }
        self.bytes += n;
        Ok(())
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// Reads the body. The returned reservation covers its bytes; keep it while they are held.
///
/// A refused body (too large, over budget) is answered at once; what the client still sends
/// is read and discarded in the background (bounded in bytes and time), so an HTTP/1 client
/// that is still sending sees the answer rather than a broken pipe.
pub async fn read(
    mut body: Body,
    headers: &http::HeaderMap,
    limits: BodyLimits,
    budget: &Arc<Budget>,
) -> Result<(Bytes, Reserved)> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut reserved = Reserved::none(budget);
    if declared.is_some_and(|n| n > limits.max) {
        discard(body, limits.max);
        return Err(ProxyError::PayloadTooLarge(limits.max));
    }
    if let Some(n) = declared
        && let Err(e) = reserved.grow(n)
    {
        discard(body, limits.max);
        return Err(e);
    }
    // Most bodies arrive as one chunk: keep it as it is, copy only when there are more.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0u64;
    let end = Instant::now() + limits.total;
    loop {
        let frame = match frame_before(&mut body, || end.min(Instant::now() + limits.idle)).await {
            Err(_elapsed) => {
                budget
                    .metrics
                    .client_timeouts
                    .get_or_create(&PhaseLabels { phase: "body" })
                    .inc();
                return Err(ProxyError::RequestTimeout);
            }
            Ok(None) => break,
            // The client stopped sending; whoever still listens gets a 400.
            Ok(Some(Err(_))) => return Err(ProxyError::InvalidJson { line: 0, column: 0 }),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > limits.max {
            discard(body, limits.max);
            return Err(ProxyError::PayloadTooLarge(limits.max));
        }
        if total > reserved.bytes
            && let Err(e) = reserved.grow(total - reserved.bytes)
        {
            discard(body, limits.max);
            return Err(e);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            None => rest.extend_from_slice(&data),
            Some(head) => {
                rest.reserve(declared.map_or(head.len() + data.len(), |n| n as usize));
                rest.extend_from_slice(&head);
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok((first.unwrap_or_else(|| rest.freeze()), reserved))
}

/// The next frame of `body`, or `Err` if it does not come by `deadline()`. A frame that is
/// already there (most bodies arrive with their headers) is taken without arming a timer.
async fn frame_before(
    body: &mut Body,
    deadline: impl FnOnce() -> Instant,
) -> Result<Option<Result<http_body::Frame<Bytes>, axum::Error>>, tokio::time::error::Elapsed> {
    let mut next = std::pin::pin!(body.frame());
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(next.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(frame) => Ok(frame),
        std::task::Poll::Pending => tokio::time::timeout_at(deadline(), next).await,
    }
}

/// How long a refused body is still read (and thrown away).
const DISCARD_FOR: Duration = Duration::from_secs(2);

/// Reads and drops what is left of a refused body, at most `4 × max` bytes for `DISCARD_FOR`.
fn discard(mut body: Body, max: u64) {
    tokio::spawn(async move {
        let cap = max.saturating_mul(4);
        let mut total = 0u64;
        let _ = tokio::time::timeout(DISCARD_FOR, async {
            while total <= cap {
                match body.frame().await {
                    Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_cap_and_is_given_back() {
        let budget = Budget::new(100, Arc::new(Metrics::new(&[])));
        let mut a = Reserved::none(&budget);
        a.grow(60).unwrap();
        let mut b = Reserved::none(&budget);
        assert!(matches!(b.grow(41), Err(ProxyError::Overloaded)));
        b.grow(40).unwrap();
        assert_eq!(budget.held(), 100);
        drop(a);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
