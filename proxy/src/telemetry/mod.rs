//! OpenTelemetry traces (`telemetry` in the configuration): the tracer provider, its OTLP/HTTP
//! exporter and bounded queue, sampling, and the standard `OTEL_*` variables. Off unless an
//! endpoint is configured or given by `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`.

mod export;
pub mod genai;
mod queue;
pub mod trace;

use std::time::Duration;

use ai_api_proxy_config::Telemetry as Config;
use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};

pub use queue::TraceMetrics;
pub use trace::{Attempt, AttemptStart, RequestEnd, RequestTrace, Tracer};

/// Why tracing cannot start. Messages name variables and settings, never header values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The exporter refused its settings (an endpoint that is not a URL, …).
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// The export thread or its runtime could not start.
    #[error("cannot start the OTLP export thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A protocol other than OTLP/HTTP protobuf was asked for.
    #[error("{var}={value}: the proxy exports OTLP over HTTP/protobuf only (`http/protobuf`)")]
    Protocol {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
}

/// What tracing runs with, resolved from the configuration and the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The traces URL from the configuration; `None`: the standard variables'.
    pub url: Option<String>,
    /// Export timeout.
    pub timeout: Duration,
    /// Fraction of new traces recorded.
    pub sampling_ratio: f64,
    /// Queue bound.
    pub max_queue_size: usize,
    /// `service.name` to set, unless the environment names it.
    pub service_name: Option<&'static str>,
}

/// Default `service.name`.
const SERVICE_NAME: &str = "ai-api-proxy";

impl Settings {
    /// Tracing's settings, or `None` when it is off: no endpoint in `config` nor in
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`, or
    /// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`. `env` reads a variable.
    pub fn resolve(
        config: &Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        let set = |var: &str| env(var).filter(|v| !v.trim().is_empty());
        let endpoint_in_env = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if disabled || (config.otlp.is_none() && !endpoint_in_env) {
            return Ok(None);
        }
        for var in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = set(var) {
                if value != "http/protobuf" {
                    return Err(Error::Protocol { var, value });
                }
                break;
            }
        }
        let env_timeout = set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        let named = set("OTEL_SERVICE_NAME").is_some()
            || set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
                a.split(',')
                    .any(|kv| kv.split('=').next().map(str::trim) == Some("service.name"))
            });
        Ok(Some(Self {
            url: config.otlp.as_ref().map(|o| o.traces_url()),
            timeout: config
                .otlp
                .as_ref()
                .map(|o| o.timeout.get())
                .or(env_timeout)
                .unwrap_or(Duration::from_secs(10)),
            sampling_ratio: config.sampling_ratio,
            max_queue_size: config.max_queue_size.max(1) as usize,
            service_name: (!named).then_some(SERVICE_NAME),
        }))
    }
}

/// The tracer provider (when tracing is on) and the handle that starts request spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    tracer: Tracer,
    /// How long shutdown may spend sending what is queued.
    timeout: Duration,
}

impl Telemetry {
    /// Tracing off.
    pub fn off() -> Self {
        Self {
            provider: None,
            tracer: Tracer::default(),
            timeout: Duration::ZERO,
        }
    }

    /// Starts tracing with `settings` (`None`: off); drops and failures count in `metrics`.
    pub fn start(settings: Option<Settings>, metrics: &TraceMetrics) -> Result<Self, Error> {
        let Some(s) = settings else {
            return Ok(Self::off());
        };
        let transport = export::Transport::start(s.timeout)?;
        let exporter = export::exporter(
            &export::Target {
                url: s.url.clone(),
                timeout: s.timeout,
            },
            transport,
        )?;
        let pending = queue::Pending::default();
        let batch = BatchSpanProcessor::builder(queue::Counted {
            inner: exporter,
            pending: pending.clone(),
            metrics: metrics.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(s.max_queue_size)
                .with_max_export_batch_size(s.max_queue_size.min(512))
                .build(),
        )
        .build();
        let mut resource = Resource::builder()
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        if let Some(name) = s.service_name {
            resource = resource.with_service_name(name);
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue::Bounded {
                inner: batch,
                pending,
                max: s.max_queue_size,
                metrics: metrics.clone(),
            })
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                s.sampling_ratio,
            ))))
            .with_resource(resource.build())
            .build();
        let scope = InstrumentationScope::builder(genai::SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_schema_url(genai::SCHEMA_URL)
            .build();
        let tracer = Tracer(Some(provider.tracer_with_scope(scope)));
        tracing::info!(
            endpoint = s
                .url
                .as_deref()
                .unwrap_or("(from OTEL_EXPORTER_OTLP_* variables)"),
            sampling_ratio = s.sampling_ratio,
            semantic_conventions = genai::SEMCONV_VERSION,
            "exporting traces over OTLP/HTTP"
        );
        Ok(Self {
            provider: Some(provider),
            tracer,
            timeout: s.timeout,
        })
    }

    /// Starts request spans.
    pub fn tracer(&self) -> Tracer {
        self.tracer.clone()
    }

    /// Exports what is queued (within the export timeout) and stops. Blocks: call it where
    /// blocking is allowed.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(self.timeout)
        {
            tracing::warn!(error = %e, "trace export did not finish at shutdown");
        }
    }
}

#[cfg(test)]
mod tests;
