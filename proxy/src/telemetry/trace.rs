//! The spans of one request: a server span, child of the client's `traceparent` when it sent
//! one, and a client span per upstream attempt, whose context goes to the upstream as
//! `traceparent`. With tracing off every call here is a no-op on an empty context.
//!
//! Prompts and completions are never recorded: only names, ids, numbers and finish reasons.

use std::sync::{Arc, Mutex};

use http::{HeaderMap, Method};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

use super::genai::attr;

/// Starts server spans; `None` inside when tracing is off.
#[derive(Clone, Debug, Default)]
pub struct Tracer(pub(super) Option<SdkTracer>);

impl Tracer {
    /// The server span of a request: a child of the client's `traceparent` (and `tracestate`)
    /// when they are valid, else a new trace (sampled by `telemetry.sampling_ratio`). Named by
    /// the method until the request is routed ([`RequestTrace::finish`]): a hostile client's
    /// paths never name spans.
    pub fn request(&self, method: &Method, path: &str, headers: &HeaderMap) -> RequestTrace {
        let Some(tracer) = &self.0 else {
            return RequestTrace::default();
        };
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let mut attributes = vec![
            KeyValue::new(attr::HTTP_REQUEST_METHOD, method.to_string()),
            KeyValue::new(attr::URL_PATH, truncate(path)),
        ];
        if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
            attributes.push(KeyValue::new(attr::REQUEST_ID, truncate(id)));
        }
        let span = tracer
            .span_builder(method.to_string())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        RequestTrace(Some(Arc::new(Inner {
            tracer: tracer.clone(),
            cx: parent.with_span(span),
            winner: Mutex::new(None),
            route: (method.to_string(), truncate(path)),
        })))
    }
}

/// One request's trace: its server span and the attempt that answered. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RequestTrace(Option<Arc<Inner>>);

#[derive(Debug)]
struct Inner {
    tracer: SdkTracer,
    /// Holds the server span.
    cx: Context,
    /// The client span of the attempt whose answer the client gets, ended with the request.
    winner: Mutex<Option<Context>>,
    /// Method and path: the span's name and `http.route` once the request was routed.
    route: (String, String),
}

/// What an upstream attempt is.
#[derive(Clone, Copy, Debug)]
pub struct AttemptStart<'a> {
    /// GenAI operation (`chat`, …), if the route is one.
    pub operation: Option<&'a str>,
    /// Who serves it (`openai`, `anthropic`).
    pub provider: &'a str,
    /// The model asked for (`None` on pass-through paths).
    pub model: Option<&'a str>,
    /// Configured upstream name.
    pub upstream: &'a str,
    /// Host and port of the upstream.
    pub server: (&'a str, u16),
    /// The URL sent to (base URL and path; the configuration's, no client input but the path).
    pub url: &'a str,
    /// HTTP method.
    pub method: &'a Method,
    /// 1 for the first attempt of the request, across upstreams.
    pub number: u32,
}

/// How a request ended, for its spans.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestEnd<'a> {
    /// HTTP status sent to the client (499: the client left first).
    pub status: u16,
    /// The proxy's error code, or why a stream was cut.
    pub error: Option<&'a str>,
    /// The client key's id (`anonymous` without authentication).
    pub client: Option<&'a str>,
    /// The route's GenAI operation; set, the request was routed (the path names the span).
    pub operation: Option<&'a str>,
    /// Who served the answer.
    pub provider: Option<&'a str>,
    /// Configured model name asked for.
    pub request_model: Option<&'a str>,
    /// The model the upstream says answered.
    pub response_model: Option<&'a str>,
    /// Input and output tokens the upstream reported.
    pub usage: Option<(u64, u64)>,
    /// Why each choice stopped.
    pub finish_reasons: &'a [Arc<str>],
}

impl RequestTrace {
    /// The trace id (32 hex digits), when this request is traced (recorded or not).
    pub fn trace_id(&self) -> Option<String> {
        let inner = self.0.as_ref()?;
        let span = inner.cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// Starts the client span of one upstream attempt, a child of the server span.
    pub fn attempt(&self, a: &AttemptStart<'_>) -> Attempt {
        let Some(inner) = &self.0 else {
            return Attempt(None);
        };
        let name = match (a.operation, a.model) {
            (Some(op), Some(model)) => format!("{op} {model}"),
            _ => a.method.to_string(),
        };
        let mut attributes = vec![
            KeyValue::new(attr::PROVIDER_NAME, a.provider.to_owned()),
            KeyValue::new(attr::SERVER_ADDRESS, a.server.0.to_owned()),
            KeyValue::new(attr::SERVER_PORT, i64::from(a.server.1)),
            KeyValue::new(attr::HTTP_REQUEST_METHOD, a.method.to_string()),
            KeyValue::new(attr::URL_FULL, truncate(a.url)),
            KeyValue::new(attr::UPSTREAM, a.upstream.to_owned()),
            KeyValue::new(attr::ATTEMPT, i64::from(a.number)),
        ];
        if let Some(op) = a.operation {
            attributes.push(KeyValue::new(attr::OPERATION_NAME, op.to_owned()));
        }
        if let Some(model) = a.model {
            attributes.push(KeyValue::new(attr::REQUEST_MODEL, model.to_owned()));
        }
        let span = inner
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&inner.tracer, &inner.cx);
        Attempt(Some(inner.cx.with_span(span)))
    }

    /// Keeps `attempt` open until the request ends: its answer is the one the client gets.
    pub fn answered_by(&self, attempt: Attempt) {
        if let (Some(inner), Some(cx)) = (&self.0, attempt.0)
            && let Ok(mut w) = inner.winner.lock()
        {
            *w = Some(cx);
        }
    }

    /// Ends the answering attempt's span and the server span, with what the answer said.
    pub fn finish(&self, end: &RequestEnd<'_>) {
        let Some(inner) = &self.0 else { return };
        let mut gen_ai = Vec::new();
        if let Some(model) = end.response_model {
            gen_ai.push(KeyValue::new(attr::RESPONSE_MODEL, model.to_owned()));
        }
        if let Some((input, output)) = end.usage {
            gen_ai.push(KeyValue::new(attr::USAGE_INPUT_TOKENS, saturate(input)));
            gen_ai.push(KeyValue::new(attr::USAGE_OUTPUT_TOKENS, saturate(output)));
        }
        if !end.finish_reasons.is_empty() {
            let reasons: Vec<StringValue> = end
                .finish_reasons
                .iter()
                .map(|r| StringValue::from(r.to_string()))
                .collect();
            gen_ai.push(KeyValue::new(
                attr::RESPONSE_FINISH_REASONS,
                Value::Array(Array::String(reasons)),
            ));
        }
        let winner = inner.winner.lock().ok().and_then(|mut w| w.take());
        if let Some(cx) = winner {
            let span = cx.span();
            span.set_attributes(gen_ai.iter().cloned());
            if let Some(error) = end.error {
                // Cut after its first byte: the upstream's part failed.
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error.to_owned()));
                span.set_status(Status::error(error.to_owned()));
            }
            span.end();
        }
        let span = inner.cx.span();
        span.set_attributes(gen_ai);
        span.set_attribute(KeyValue::new(
            attr::HTTP_RESPONSE_STATUS_CODE,
            i64::from(end.status),
        ));
        if let Some(client) = end.client {
            span.set_attribute(KeyValue::new(attr::CLIENT_KEY_ID, client.to_owned()));
        }
        if let Some(p) = end.provider {
            span.set_attribute(KeyValue::new(attr::PROVIDER_NAME, p.to_owned()));
        }
        if let Some(op) = end.operation {
            let (method, path) = &inner.route;
            span.update_name(format!("{method} {path}"));
            span.set_attribute(KeyValue::new(attr::HTTP_ROUTE, path.clone()));
            span.set_attribute(KeyValue::new(attr::OPERATION_NAME, op.to_owned()));
        }
        if let Some(model) = end.request_model {
            span.set_attribute(KeyValue::new(attr::REQUEST_MODEL, model.to_owned()));
        }
        let error = end
            .error
            .map(str::to_owned)
            .or_else(|| (end.status >= 500).then(|| end.status.to_string()));
        if let Some(error) = error {
            span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error.clone()));
            span.set_status(Status::error(error));
        }
        span.end();
    }
}

/// The client span of one upstream attempt.
#[derive(Debug)]
#[must_use = "an attempt's span ends with `failed`, `answered` or `RequestTrace::answered_by`"]
pub struct Attempt(Option<Context>);

impl Attempt {
    /// Writes this attempt's `traceparent` (and the client's `tracestate`) into the upstream
    /// request's headers, replacing any there.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(cx) = &self.0 {
            TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
        }
    }

    /// Ends the span of an attempt that failed: `status` when the upstream answered (a 502
    /// that is retried, say), `error` the proxy's reason (`connect`, `timeout`, …).
    pub fn failed(self, status: Option<u16>, error: &str) {
        let Some(cx) = self.0 else { return };
        let span = cx.span();
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
        }
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error.to_owned()));
        span.set_status(Status::error(error.to_owned()));
        span.end();
    }

    /// Records the status of an answer that goes to the client (the span stays open until
    /// [`RequestTrace::answered_by`] and the request's end).
    pub fn answered(&self, status: u16) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                attr::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
            if status >= 400 {
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, status.to_string()));
                span.set_status(Status::error(status.to_string()));
            }
        }
    }
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Client-supplied text in attributes is bounded.
fn truncate(s: &str) -> String {
    s.chars().take(256).collect()
}
