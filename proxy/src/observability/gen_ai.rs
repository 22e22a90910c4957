//! The GenAI semantic conventions' metrics, in their Prometheus form: time to first token and
//! time per output token of streamed answers, and tokens per answer by type. Recorded once per
//! request, from what its answer reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_api_proxy_config::metrics::{Kind, Metric, gen_ai as catalogue};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::facts::Facts;
use crate::telemetry::{RequestEnd, RequestTrace};

/// Labels of the timing histograms: the conventions' required attributes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenAiLabels {
    /// `chat`, `text_completion`, `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// `openai`, ….
    pub gen_ai_provider_name: &'static str,
    /// The configured model asked for (configured names only: bounded).
    pub gen_ai_request_model: Arc<str>,
}

/// Labels of token usage: the above and the token type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenUsageLabels {
    /// `chat`, `text_completion`, `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// `openai`, ….
    pub gen_ai_provider_name: &'static str,
    /// The configured model asked for.
    pub gen_ai_request_model: Arc<str>,
    /// `input` or `output`.
    pub gen_ai_token_type: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The three histograms.
pub struct GenAiMetrics {
    time_to_first_token: Histograms<GenAiLabels>,
    time_per_output_token: Histograms<GenAiLabels>,
    token_usage: Histograms<TokenUsageLabels>,
}

fn bounds(m: &Metric) -> Vec<f64> {
    match m.kind {
        Kind::Histogram(b) => b.bounds(),
        Kind::Counter | Kind::Gauge => Vec::new(),
    }
}

/// What one answer tells these metrics.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The operation of the route (`chat`, …).
    pub operation: &'static str,
    /// Who served it (`openai`, `anthropic`).
    pub provider: &'static str,
    /// The configured model asked for.
    pub model: Arc<str>,
    /// For a streamed answer: request received → first and last chunk from the upstream.
    pub stream: Option<(Duration, Duration)>,
    /// Input and output tokens reported.
    pub usage: Option<(u64, u64)>,
}

impl GenAiMetrics {
    /// Registers the three families with their catalogue names, help and buckets.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            time_to_first_token: Family::new_with_constructor(|| {
                Histogram::new(bounds(&catalogue::TIME_TO_FIRST_TOKEN))
            }),
            time_per_output_token: Family::new_with_constructor(|| {
                Histogram::new(bounds(&catalogue::TIME_PER_OUTPUT_TOKEN))
            }),
            token_usage: Family::new_with_constructor(|| {
                Histogram::new(bounds(&catalogue::TOKEN_USAGE))
            }),
        };
        for (metric, family) in [
            (catalogue::TIME_TO_FIRST_TOKEN, &m.time_to_first_token),
            (catalogue::TIME_PER_OUTPUT_TOKEN, &m.time_per_output_token),
        ] {
            registry.register(metric.name, metric.help, family.clone());
        }
        let usage = catalogue::TOKEN_USAGE;
        registry.register(usage.name, usage.help, m.token_usage.clone());
        m
    }

    /// Records one answer: timings of a stream (time per output token needs two tokens or
    /// more), tokens when reported.
    pub fn record(&self, a: &Answer) {
        let labels = GenAiLabels {
            gen_ai_operation_name: a.operation,
            gen_ai_provider_name: a.provider,
            gen_ai_request_model: a.model.clone(),
        };
        if let Some((first, last)) = a.stream {
            self.time_to_first_token
                .get_or_create(&labels)
                .observe(first.as_secs_f64());
            if let Some((_, output)) = a.usage.filter(|(_, output)| *output > 1) {
                let per_token = last.saturating_sub(first).as_secs_f64() / (output - 1) as f64;
                self.time_per_output_token
                    .get_or_create(&labels)
                    .observe(per_token);
            }
        }
        if let Some((input, output)) = a.usage {
            for (kind, count) in catalogue::TOKEN_TYPES.into_iter().zip([input, output]) {
                self.token_usage
                    .get_or_create(&TokenUsageLabels {
                        gen_ai_operation_name: labels.gen_ai_operation_name,
                        gen_ai_provider_name: labels.gen_ai_provider_name,
                        gen_ai_request_model: labels.gen_ai_request_model.clone(),
                        gen_ai_token_type: kind,
                    })
                    .observe(count as f64);
            }
        }
    }
}

/// A request has ended (its access-log line is being written): its spans end with what the
/// answer said, and a GenAI answer is recorded in these metrics (timings only for a complete
/// stream answered 2xx).
pub fn request_ended(
    trace: &RequestTrace,
    metrics: &GenAiMetrics,
    f: &Facts,
    status: u16,
    start: Instant,
) {
    let g = &f.gen_ai;
    let usage = f.usage.map(|u| (u.prompt_tokens, u.completion_tokens));
    let model = f.model.as_deref().filter(|m| *m != "-");
    trace.finish(&RequestEnd {
        status,
        error: f.error,
        client: f.client.as_deref(),
        operation: f.operation,
        provider: f.provider,
        request_model: model,
        response_model: g.response_model.as_deref(),
        usage,
        finish_reasons: &g.finish_reasons,
    });
    let (Some(operation), Some(provider), Some(model)) = (f.operation, f.provider, &f.model) else {
        return;
    };
    let ok = (200..300).contains(&status) && f.error.is_none();
    metrics.record(&Answer {
        operation,
        provider,
        model: model.clone(),
        stream: g.stream.filter(|_| ok).map(|(first, last)| {
            (
                first.saturating_duration_since(start),
                last.saturating_duration_since(start),
            )
        }),
        usage,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_gives_all_three() {
        let mut registry = Registry::default();
        let m = GenAiMetrics::new(&mut registry);
        m.record(&Answer {
            operation: "chat",
            provider: "openai",
            model: Arc::from("gpt"),
            stream: Some((Duration::from_millis(200), Duration::from_millis(1200))),
            usage: Some((10, 11)),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let labels = r#"gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt""#;
        // 200 ms to the first token; (1200 - 200) ms / 10 tokens = 100 ms per token.
        assert!(
            text.contains(&format!(
                "gen_ai_server_time_to_first_token_seconds_sum{{{labels}}} 0.2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gen_ai_server_time_per_output_token_seconds_sum{{{labels}}} 0.1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type=\"output\"}} 11.0"
            )),
            "{text}"
        );
    }

    #[test]
    fn an_answer_not_streamed_has_tokens_only() {
        let mut registry = Registry::default();
        let m = GenAiMetrics::new(&mut registry);
        m.record(&Answer {
            operation: "embeddings",
            provider: "openai",
            model: Arc::from("e"),
            stream: None,
            usage: Some((7, 0)),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            !text.contains("time_to_first_token_seconds_count{"),
            "{text}"
        );
        assert!(text.contains("gen_ai_token_type=\"input\"} 7.0"), "{text}");
    }
}
