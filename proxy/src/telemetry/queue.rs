//! The export queue's bound, counted. The SDK's batch processor holds at most
//! `max_queue_size` finished spans and drops the rest, but keeps its count of drops to itself;
//! [`Bounded`] sits in front of it with the same bound and counts what it turns away in
//! `ai_proxy_trace_spans_dropped_total`, and [`Counted`] (around the exporter) frees the slots
//! of each batch as it leaves and counts the batches the collector did not take. A collector
//! that is down costs a bounded queue and a counter, never memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::metrics::counter::Counter;

/// The counters of the span export, registered with the proxy's metrics.
#[derive(Clone, Debug, Default)]
pub struct TraceMetrics {
    /// Spans turned away because the queue was full.
    pub dropped: Counter,
    /// Batches the exporter could not deliver.
    pub export_failures: Counter,
}

/// Spans finished and not yet handed to the exporter, shared by [`Bounded`] and [`Counted`].
#[derive(Clone, Debug, Default)]
pub struct Pending(Arc<AtomicUsize>);

impl Pending {
    /// Takes a slot unless `max` are taken.
    fn take(&self, max: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Frees `n` slots.
    fn free(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(n))
            });
    }
}

/// A span processor admitting at most `max` pending spans into `inner`.
#[derive(Debug)]
pub struct Bounded<P> {
    /// The processor that batches and exports (its own queue is at least `max`).
    pub inner: P,
    /// Slots in use.
    pub pending: Pending,
    /// The bound.
    pub max: usize,
    /// Where drops are counted.
    pub metrics: TraceMetrics,
}

impl<P: SpanProcessor> SpanProcessor for Bounded<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.pending.take(self.max) {
            self.inner.on_end(span);
        } else {
            self.metrics.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An exporter freeing the queue slots of each batch it is given and counting failures.
#[derive(Debug)]
pub struct Counted<E> {
    /// The real exporter.
    pub inner: E,
    /// Slots to free.
    pub pending: Pending,
    /// Where failures are counted.
    pub metrics: TraceMetrics,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // The batch has left the queue: its slots are free while it is being sent.
        self.pending.free(batch.len());
        let result = self.inner.export(batch).await;
        if result.is_err() {
            self.metrics.export_failures.inc();
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::{Tracer, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkError;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

    use super::*;

    /// An exporter that blocks until released, like a collector that does not answer, then
    /// fails: what a down collector looks like from the processor.
    #[derive(Debug, Clone, Default)]
    struct Stuck {
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
        seen: Arc<AtomicUsize>,
    }

    impl Stuck {
        fn release(&self) {
            let (open, cv) = &*self.gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
    }

    impl SpanExporter for Stuck {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.seen.fetch_add(batch.len(), Ordering::SeqCst);
            let (open, cv) = &*self.gate;
            let mut g = open.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    #[test]
    fn a_stuck_collector_drops_and_counts_beyond_the_bound() {
        let metrics = TraceMetrics::default();
        let pending = Pending::default();
        let stuck = Stuck::default();
        let max = 8;
        let batch = BatchSpanProcessor::builder(Counted {
            inner: stuck.clone(),
            pending: pending.clone(),
            metrics: metrics.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(max)
                .with_max_export_batch_size(2)
                .with_scheduled_delay(Duration::from_millis(10))
                .build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Bounded {
                inner: batch,
                pending: pending.clone(),
                max,
                metrics: metrics.clone(),
            })
            .build();
        let tracer = provider.tracer("test");
        // The first batch reaches the exporter and sticks there; wait until it has.
        tracer.in_span("first", |_| {});
        tracer.in_span("second", |_| {});
        for _ in 0..500 {
            if stuck.seen.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let in_flight = stuck.seen.load(Ordering::SeqCst);
        assert!((1..=2).contains(&in_flight), "{in_flight}");
        for i in 0..100 {
            tracer.in_span(format!("span {i}"), |_| {});
        }
        // Exactly `max` wait in the queue; the rest were dropped and counted.
        assert_eq!(metrics.dropped.get(), (102 - in_flight - max) as u64);
        stuck.release();
        let _ = provider.shutdown();
        assert!(metrics.export_failures.get() >= 1);
    }
}
