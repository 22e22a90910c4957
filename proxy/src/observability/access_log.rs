//! One JSON access-log line per request, written when its body has been sent (or abandoned),
//! plus the request metrics that need the same facts: status, model, upstream, duration.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::Method;
use http_body::{Body as _, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde::Serialize;
use tower::{Layer, Service};

pub use super::exchange::X_REQUEST_ID;
use super::exchange::{ClientId, Exchange};
use super::logsink;
use super::metrics::{Metrics, ModelLabels, RequestLabels};
use crate::api_error::ErrorCode;
use axum::BoxError;

/// The facts of one request, logged when dropped.
pub struct Record {
    metrics: Arc<Metrics>,
    start: Instant,
    method: Method,
    path: String,
    request_id: String,
    /// 499 until a response exists: the client left before we answered.
    status: u16,
    client: Option<ClientId>,
    exchange: Option<Arc<Exchange>>,
    error: Option<&'static str>,
    bytes: u64,
    complete: bool,
}

impl Drop for Record {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let m = &self.metrics;
        m.in_flight.dec();
        static DASH: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("-"));
        let dash = DASH.clone();
        let (model, upstream) = self.exchange.as_ref().map_or((dash.clone(), dash), |e| {
            (e.model.clone(), e.upstream.clone())
        });
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
        let e = self.exchange.as_deref();
        let usage = e.and_then(|e| e.usage.get());
        let line = Line {
            timestamp: logsink::timestamp(),
            level: "INFO",
            target: "access",
            request_id: &self.request_id,
            client: self.client.as_ref().map_or("-", |c| &c.0),
            method: self.method.as_str(),
            path: &self.path,
            model: &model,
            upstream: &upstream,
            status: self.status,
            error: self
                .error
                .or_else(|| e.and_then(|e| e.stream_error.get().copied())),
            attempts: e.map_or(0, |e| e.attempts),
            upstream_first_byte_ms: e.map(|e| e.ttfb.as_secs_f64() * 1000.0),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            bytes_sent: self.bytes,
            complete: self.complete,
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
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
}

/// Layer (inside request-id, outside everything else, so it sees every answer, refusals
/// included).
#[derive(Clone)]
pub struct AccessLogLayer(pub Arc<Metrics>);

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The access-log service.
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Logging<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.metrics.in_flight.inc();
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
            client: None,
            exchange: None,
            error: None,
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
    /// The inner answer; when it is ready, its body is wrapped to log on completion. If this
    /// future is dropped first (client gone), the record logs status 499 on drop.
    pub struct Logging<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F> Future for Logging<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        let Some(mut record) = this.record.take() else {
            return Poll::Ready(Ok(response));
        };
        let (mut parts, body) = response.into_parts();
        record.status = parts.status.as_u16();
        record.client = parts.extensions.remove::<ClientId>();
        record.exchange = parts.extensions.remove::<Arc<Exchange>>();
        record.error = parts.extensions.remove::<ErrorCode>().map(|c| c.0);
        Poll::Ready(Ok(Response::from_parts(
            parts,
            Body::new(Logged {
                inner: body,
                record,
            }),
        )))
    }
}

/// The response body, counting bytes; its drop writes the log line.
struct Logged {
    inner: Body,
    record: Record,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.record.bytes += d.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.record.complete = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // hyper may stop polling a body that says it has ended; that is completion too.
        if self.inner.is_end_stream() {
            self.record.complete = true;
        }
    }
}
