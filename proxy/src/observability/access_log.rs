//! One JSON access-log line per request, written when its answer has been sent (or abandoned),
//! plus the request metrics that need the same facts: status, model, upstream, duration. The
//! layer wraps nothing: it hands its [`Record`] to the answer's body ([`Attach`]), which fills
//! in the facts and drops it when the answer ends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use serde::Serialize;
use tower::{Layer, Service};

use super::facts::Facts;
pub use super::facts::X_REQUEST_ID;
use super::metrics::{Metrics, ModelLabels, RequestLabels};
use super::{gen_ai, logsink};
use crate::telemetry::{RequestTrace, Tracer};

/// The facts of one request, logged when dropped.
pub struct Record {
    metrics: Arc<Metrics>,
    start: Instant,
    method: Method,
    path: String,
    request_id: String,
    /// 499 until a response exists: the client left before we answered.
    status: u16,
    /// The request's server span (and the attempt that answered), ended with the record.
    trace: RequestTrace,
    /// What the layers below learned.
    pub facts: Facts,
    /// Body bytes sent.
    pub bytes: u64,
    /// The answer was sent to its end.
    pub complete: bool,
}

/// An answer body that takes the record and drops it when the answer ends.
pub trait Attach {
    /// Keeps `record` until the answer has been sent or abandoned.
    fn attach(&mut self, record: Record);
}

impl Drop for Record {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let m = &self.metrics;
        m.in_flight.dec();
        static DASH: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("-"));
        let f = &self.facts;
        let model = f.model.clone().unwrap_or_else(|| DASH.clone());
        let upstream = f.upstream.clone().unwrap_or_else(|| DASH.clone());
        m.requests
            .get_or_create(&RequestLabels {
                model: model.clone(),
                upstream: upstream.clone(),
                status: self.status,
            })
            .inc();
        m.duration
            .get_or_create(&ModelLabels {
                model: model.clone(),
            })
            .observe(elapsed.as_secs_f64());
        gen_ai::request_ended(&self.trace, &m.gen_ai, f, self.status, self.start);
        let trace_id = self.trace.trace_id();
        let line = Line {
            timestamp: logsink::timestamp(),
            level: "INFO",
            target: "access",
            request_id: &self.request_id,
            client: f.client.as_deref().unwrap_or("-"),
            method: self.method.as_str(),
            path: &self.path,
            model: &model,
            upstream: &upstream,
            status: self.status,
            error: f.error,
            attempts: f.attempts,
            upstream_first_byte_ms: f.ttfb.map(|t| t.as_secs_f64() * 1000.0),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            bytes_sent: self.bytes,
            complete: self.complete,
            prompt_tokens: f.usage.map(|u| u.prompt_tokens),
            completion_tokens: f.usage.map(|u| u.completion_tokens),
            trace_id: trace_id.as_deref(),
        };
        logsink::write_line(|buf| {
            let _ = serde_json::to_writer(buf, &line);
        });
    }
}

/// One access-log line. Never a key, a prompt or a completion: ids, names, numbers.
#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    level: &'static str,
    target: &'static str,
    request_id: &'a str,
    client: &'a str,
    method: &'a str,
    path: &'a str,
    model: &'a str,
    upstream: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_first_byte_ms: Option<f64>,
    duration_ms: f64,
    bytes_sent: u64,
    complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

/// Layer (inside request-id, outside everything else, so it sees every answer, refusals
/// included). It also starts each request's server span, which ends with the log line.
#[derive(Clone)]
pub struct AccessLogLayer(pub Arc<Metrics>, pub Tracer);

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            metrics: self.0.clone(),
            tracer: self.1.clone(),
        }
    }
}

/// The access-log service.
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    metrics: Arc<Metrics>,
    tracer: Tracer,
}

impl<S, Q, B> Service<Request<Q>> for AccessLog<S>
where
    S: Service<Request<Q>, Response = Response<B>, Error = Infallible>,
    B: Attach,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = Logging<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Q>) -> Self::Future {
        self.metrics.in_flight.inc();
        let trace = self
            .tracer
            .request(request.method(), request.uri().path(), request.headers());
        // For the forwarder: each upstream attempt is a child of this request's span.
        request.extensions_mut().insert(trace.clone());
        let record = Record {
            start: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            request_id: request
                .headers()
                .get(X_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned(),
            status: 499,
            trace,
            facts: Facts::default(),
            bytes: 0,
            complete: false,
            metrics: self.metrics.clone(),
        };
        Logging {
            inner: self.inner.call(request),
            record: Some(record),
        }
    }
}

pin_project! {
    /// The inner answer; when it is ready, the record goes to its body. If this future is
    /// dropped first (client gone), the record logs status 499 on drop.
    pub struct Logging<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, B> Future for Logging<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Attach,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if let Some(mut record) = this.record.take() {
            record.status = response.status().as_u16();
            response.body_mut().attach(record);
        }
        Poll::Ready(Ok(response))
    }
}
