//! Settings from configuration and environment, and the span tree of a request with a retry,
//! recorded in memory.

use std::collections::HashMap;
use std::sync::Arc;

use ai_api_proxy_config::{Otlp, Telemetry as Config};
use http::{HeaderMap, HeaderValue, Method};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use super::*;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn configured() -> Config {
    Config {
        otlp: Some(Otlp {
            endpoint: "http://collector:4318".into(),
            timeout: ai_api_proxy_config::Duration::from_secs(3),
        }),
        sampling_ratio: 0.5,
        max_queue_size: 100,
    }
}

#[test]
fn off_without_an_endpoint() {
    assert_eq!(
        Settings::resolve(&Config::default(), env(&[])).unwrap(),
        None
    );
    assert_eq!(
        Settings::resolve(&configured(), env(&[("OTEL_SDK_DISABLED", "true")])).unwrap(),
        None
    );
    assert_eq!(
        Settings::resolve(&configured(), env(&[("OTEL_TRACES_EXPORTER", "none")])).unwrap(),
        None
    );
}

#[test]
fn the_configuration_names_the_endpoint_and_the_environment_may() {
    let s = Settings::resolve(&configured(), env(&[])).unwrap().unwrap();
    assert_eq!(s.url.as_deref(), Some("http://collector:4318/v1/traces"));
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!((s.sampling_ratio, s.max_queue_size), (0.5, 100));
    assert_eq!(s.service_name, Some("ai-api-proxy"));

    let from_env = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4318"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_SERVICE_NAME", "gateway"),
    ]);
    let s = Settings::resolve(&Config::default(), from_env)
        .unwrap()
        .unwrap();
    // The SDK reads the endpoint (and headers) from the variables itself.
    assert_eq!(s.url, None);
    assert_eq!(s.timeout, Duration::from_millis(2500));
    assert_eq!(s.service_name, None);
}

#[test]
fn only_http_protobuf_is_spoken() {
    let e = Settings::resolve(
        &configured(),
        env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the proxy exports OTLP over HTTP/protobuf only (`http/protobuf`)"
    );
    let ok = env(&[
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert!(Settings::resolve(&configured(), ok).is_ok());
}

fn recording() -> (Tracer, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = Tracer(Some(provider.tracer(genai::SCOPE)));
    (tracer, exporter, provider)
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn a_retried_request_is_a_server_span_over_two_client_spans() {
    let (tracer, exporter, _provider) = recording();
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let request = tracer.request(&Method::POST, "/v1/chat/completions", &headers);
    assert_eq!(request.trace_id().as_deref(), Some(CLIENT_TRACE));
    let start = |number| AttemptStart {
        operation: Some("chat"),
        provider: "openai",
        model: Some("gpt-4o-mini"),
        upstream: "main",
        server: ("127.0.0.1", 8081),
        url: "http://127.0.0.1:8081/v1/chat/completions",
        method: &Method::POST,
        number,
    };
    let first = request.attempt(&start(1));
    let mut upstream_headers = HeaderMap::new();
    first.inject(&mut upstream_headers);
    let sent = upstream_headers["traceparent"].to_str().unwrap().to_owned();
    first.failed(Some(502), "502");
    let second = request.attempt(&start(2));
    second.answered(200);
    request.answered_by(second);
    let reasons = [Arc::from("stop")];
    request.finish(&RequestEnd {
        status: 200,
        client: Some("team-a"),
        operation: Some("chat"),
        provider: Some("openai"),
        request_model: Some("gpt-4o-mini"),
        response_model: Some("gpt-4o-mini-2024-07-18"),
        usage: Some((12, 5)),
        finish_reasons: &reasons,
        ..RequestEnd::default()
    });

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3);
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(server.span_context.trace_id().to_string(), CLIENT_TRACE);
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(server.name, "POST /v1/chat/completions");
    for c in &clients {
        assert_eq!(c.parent_span_id, server.span_context.span_id());
        assert_eq!(c.name, "chat gpt-4o-mini");
        assert_eq!(
            attr(c, "gen_ai.provider.name"),
            Some(&Value::from("openai"))
        );
        assert_eq!(attr(c, "server.address"), Some(&Value::from("127.0.0.1")));
    }
    // The upstream got the first attempt's span as its parent, in the client's trace.
    let first = clients
        .iter()
        .find(|c| attr(c, "ai_proxy.attempt") == Some(&Value::I64(1)))
        .unwrap();
    assert_eq!(
        sent,
        format!("00-{CLIENT_TRACE}-{}-01", first.span_context.span_id())
    );
    assert_eq!(
        attr(first, "http.response.status_code"),
        Some(&Value::I64(502))
    );
    let second = clients
        .iter()
        .find(|c| attr(c, "ai_proxy.attempt") == Some(&Value::I64(2)))
        .unwrap();
    assert_eq!(
        attr(second, "gen_ai.usage.output_tokens"),
        Some(&Value::I64(5))
    );
    assert_eq!(
        attr(server, "gen_ai.usage.input_tokens"),
        Some(&Value::I64(12))
    );
    assert_eq!(
        attr(server, "gen_ai.response.finish_reasons"),
        Some(&Value::Array(Array::String(vec!["stop".into()])))
    );
    assert_eq!(
        attr(server, "ai_proxy.client.key_id"),
        Some(&Value::from("team-a"))
    );
    assert_eq!(
        attr(server, "gen_ai.response.model"),
        Some(&Value::from("gpt-4o-mini-2024-07-18"))
    );
}

#[test]
fn a_malformed_traceparent_starts_a_new_trace_and_off_is_silent() {
    let (tracer, exporter, _provider) = recording();
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static("00-zz-00-01"));
    let request = tracer.request(&Method::GET, "/anything/the/client/wants", &headers);
    let id = request.trace_id().unwrap();
    assert_ne!(id, "0".repeat(32));
    request.finish(&RequestEnd {
        status: 404,
        ..RequestEnd::default()
    });
    let spans = exporter.get_finished_spans().unwrap();
    // Unknown paths do not name spans.
    assert_eq!(spans[0].name, "GET");

    let off = Tracer::default().request(&Method::POST, "/v1/chat/completions", &headers);
    assert_eq!(off.trace_id(), None);
    let attempt = off.attempt(&AttemptStart {
        operation: None,
        provider: "openai",
        model: None,
        upstream: "main",
        server: ("h", 1),
        url: "http://h:1/x",
        method: &Method::GET,
        number: 1,
    });
    let mut h = HeaderMap::new();
    attempt.inject(&mut h);
    assert!(h.is_empty());
}
