//! The Grafana dashboard, delivered as a ConfigMap that Grafana's dashboard sidecar loads
//! (label `grafana_dashboard: "1"`): traffic, errors, latency, tokens, in-flight, retries,
//! breakers, rate limiting, the GenAI conventions' time to first token, time per output token
//! and tokens per answer, and trace export; every query written from the metric catalogue.

use std::collections::BTreeMap;

use ai_api_proxy_config::metrics::{
    CIRCUIT_BREAKER_STATE, IN_FLIGHT, RATE_LIMITED, REQUEST_DURATION, REQUESTS, STREAM_ERRORS,
    TOKENS, TRACE_EXPORT_FAILURES, TRACE_SPANS_DROPPED, UPSTREAM_FIRST_BYTE, UPSTREAM_RETRIES,
    breaker, gen_ai,
};
use k8s_openapi::api::core::v1::ConfigMap;

use super::grafana::{
    Dashboard, DataSourceRef, FieldConfig, FieldDefaults, GridPos, MappedValue, Panel, PanelKind,
    Target, Templating, TimeRange, ValueMapping, Variable,
};
use super::promql::Scope;
use crate::config::Environment;
use crate::objects::labels;

/// The label Grafana's sidecar watches for (kube-prometheus-stack's default).
pub const SIDECAR_LABEL: (&str, &str) = ("grafana_dashboard", "1");
/// Grafana's own rate window: at least four scrape intervals.
const WINDOW: &str = "$__rate_interval";
/// Grafana allows at most 40 characters in a uid.
const MAX_UID: usize = 40;

/// The ConfigMap `<name>-dashboard`, or `None` when `metrics.dashboard` is off.
pub fn dashboard_config_map(env: &Environment, env_name: &str) -> Option<ConfigMap> {
    if !env.metrics.dashboard {
        return None;
    }
    let mut metadata = labels::metadata(env, env_name);
    metadata.name = Some(format!("{}-dashboard", env.name.as_str()));
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(SIDECAR_LABEL.0.into(), SIDECAR_LABEL.1.into());
    // Serializing plain structs and strings to JSON cannot fail.
    let mut json = serde_json::to_string_pretty(&dashboard(env, env_name)).unwrap_or_default();
    json.push('\n');
    Some(ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            format!("{}.json", env.name.as_str()),
            json,
        )])),
        ..Default::default()
    })
}

/// The dashboard of one environment.
pub fn dashboard(env: &Environment, env_name: &str) -> Dashboard {
    let namespace = env.namespace.as_str();
    let mut uid = format!("{namespace}-{}", env.name.as_str());
    uid.truncate(MAX_UID);
    Dashboard {
        uid,
        title: format!("{} ({env_name})", env.name.as_str()),
        tags: vec![env.name.as_str().into(), env_name.into()],
        timezone: "browser",
        schema_version: 39,
        editable: false,
        refresh: "30s",
        time: TimeRange {
            from: "now-6h",
            to: "now",
        },
        templating: Templating {
            list: vec![Variable {
                name: "datasource",
                label: "Data source",
                kind: "datasource",
                query: "prometheus",
            }],
        },
        panels: layout(panels(&Scope::new(namespace))),
    }
}

/// A panel before layout: width, kind, title, description, unit, queries (expr, legend).
struct Spec {
    width: u32,
    kind: PanelKind,
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    queries: Vec<(String, &'static str)>,
}

fn panels(s: &Scope) -> Vec<Spec> {
    let series = |width, title, description, unit, queries| Spec {
        width,
        kind: PanelKind::Timeseries,
        title,
        description,
        unit,
        queries,
    };
    let quantiles = |m, by: &[&str], legend: [&'static str; 3]| {
        [0.5, 0.9, 0.99]
            .into_iter()
            .zip(legend)
            .map(|(q, l)| (s.quantile(q, m, by, WINDOW), l))
            .collect()
    };
    vec![
        series(
            12,
            "Requests by model and status",
            "Requests answered per second, by model and HTTP status.",
            "reqps",
            vec![(
                s.sum_rate(&REQUESTS, &["model", "status"], "", WINDOW),
                "{{model}} {{status}}",
            )],
        ),
        series(
            6,
            "Server errors",
            "Share of requests answered 5xx.",
            "percent",
            vec![(
                format!(
                    "{} / {} * 100",
                    s.sum_rate(&REQUESTS, &[], "status=~\"5..\"", WINDOW),
                    s.sum_rate(&REQUESTS, &[], "", WINDOW)
                ),
                "5xx",
            )],
        ),
        series(
            6,
            "In flight",
            "Requests being served, streams included, per pod.",
            "short",
            vec![(
                format!("sum by (pod) ({})", s.gauge(&IN_FLIGHT, "")),
                "{{pod}}",
            )],
        ),
        series(
            12,
            "Request duration",
            "Until the last byte, streams included: p50, p90, p99.",
            "s",
            quantiles(&REQUEST_DURATION, &[], ["p50", "p90", "p99"]),
        ),
        series(
            12,
            "Upstream time to first byte",
            "From sending to an upstream until its first byte: p50, p90, p99 per upstream.",
            "s",
            quantiles(
                &UPSTREAM_FIRST_BYTE,
                &["upstream"],
                ["p50 {{upstream}}", "p90 {{upstream}}", "p99 {{upstream}}"],
            ),
        ),
        series(
            12,
            "Tokens by model",
            "Tokens per second reported by the upstreams, by model and kind.",
            "short",
            vec![(
                s.sum_rate(&TOKENS, &["model", "kind"], "", WINDOW),
                "{{model}} {{kind}}",
            )],
        ),
        series(
            12,
            "Rate-limited requests",
            "Requests refused with 429 by the proxy's rate limit, per second.",
            "reqps",
            vec![(s.sum_rate(&RATE_LIMITED, &[], "", WINDOW), "429")],
        ),
        series(
            8,
            "Retries by upstream",
            "Attempts after the first, per second.",
            "reqps",
            vec![(
                s.sum_rate(&UPSTREAM_RETRIES, &["upstream"], "", WINDOW),
                "{{upstream}}",
            )],
        ),
        Spec {
            width: 8,
            kind: PanelKind::StateTimeline,
            title: "Circuit breakers",
            description: "State per upstream, the worst over all pods.",
            unit: "none",
            queries: vec![(
                format!(
                    "max by (upstream) ({})",
                    s.gauge(&CIRCUIT_BREAKER_STATE, "")
                ),
                "{{upstream}}",
            )],
        },
        series(
            8,
            "Broken streams",
            "Responses cut after their first byte, per second, by upstream and reason.",
            "reqps",
            vec![(
                s.sum_rate(&STREAM_ERRORS, &["upstream", "reason"], "", WINDOW),
                "{{upstream}} {{reason}}",
            )],
        ),
        series(
            12,
            "Time to first token",
            "Streamed answers: request received to the upstream's first chunk, p50, p90, p99 \
             per model (gen_ai.server.time_to_first_token).",
            "s",
            quantiles(
                &gen_ai::TIME_TO_FIRST_TOKEN,
                &["gen_ai_request_model"],
                [
                    "p50 {{gen_ai_request_model}}",
                    "p90 {{gen_ai_request_model}}",
                    "p99 {{gen_ai_request_model}}",
                ],
            ),
        ),
        series(
            12,
            "Time per output token",
            "Streamed answers: time per output token after the first, p50, p90, p99 per model \
             (gen_ai.server.time_per_output_token).",
            "s",
            quantiles(
                &gen_ai::TIME_PER_OUTPUT_TOKEN,
                &["gen_ai_request_model"],
                [
                    "p50 {{gen_ai_request_model}}",
                    "p90 {{gen_ai_request_model}}",
                    "p99 {{gen_ai_request_model}}",
                ],
            ),
        ),
        series(
            12,
            "Tokens per answer",
            "Input and output tokens of one answer, p50, p90, p99 (gen_ai.client.token.usage).",
            "short",
            quantiles(
                &gen_ai::TOKEN_USAGE,
                &["gen_ai_token_type"],
                [
                    "p50 {{gen_ai_token_type}}",
                    "p90 {{gen_ai_token_type}}",
                    "p99 {{gen_ai_token_type}}",
                ],
            ),
        ),
        series(
            12,
            "Trace export",
            "Spans dropped because the export queue was full, and batches the collector did \
             not take, per second.",
            "short",
            vec![
                (
                    s.sum_rate(&TRACE_SPANS_DROPPED, &[], "", WINDOW),
                    "spans dropped",
                ),
                (
                    s.sum_rate(&TRACE_EXPORT_FAILURES, &[], "", WINDOW),
                    "failed exports",
                ),
            ],
        ),
    ]
}

/// Places panels left to right, wrapping at 24 columns, 8 rows high.
fn layout(specs: Vec<Spec>) -> Vec<Panel> {
    const HEIGHT: u32 = 8;
    let (mut x, mut y) = (0, 0);
    let mut panels = Vec::with_capacity(specs.len());
    for (id, spec) in (1..).zip(specs) {
        if x + spec.width > 24 {
            x = 0;
            y += HEIGHT;
        }
        let mappings = match spec.kind {
            PanelKind::StateTimeline => vec![breaker_states()],
            PanelKind::Timeseries => vec![],
        };
        panels.push(Panel {
            id,
            kind: spec.kind,
            title: spec.title.into(),
            description: spec.description.into(),
            grid_pos: GridPos {
                h: HEIGHT,
                w: spec.width,
                x,
                y,
            },
            datasource: DataSourceRef {
                kind: "prometheus",
                uid: "${datasource}",
            },
            targets: (b'A'..)
                .zip(spec.queries)
                .map(|(ref_id, (expr, legend))| Target {
                    ref_id: char::from(ref_id).into(),
                    expr,
                    legend_format: legend.into(),
                })
                .collect(),
            field_config: FieldConfig {
                defaults: FieldDefaults {
                    unit: spec.unit,
                    mappings,
                },
                overrides: vec![],
            },
        });
        x += spec.width;
    }
    panels
}

/// The breaker gauge's values as words and colours.
fn breaker_states() -> ValueMapping {
    let state = |text, color, index| MappedValue { text, color, index };
    ValueMapping {
        kind: "value",
        options: BTreeMap::from([
            (breaker::CLOSED.to_string(), state("closed", "green", 0)),
            (breaker::OPEN.to_string(), state("open", "red", 1)),
            (
                breaker::HALF_OPEN.to_string(),
                state("half-open", "yellow", 2),
            ),
        ]),
    }
}
