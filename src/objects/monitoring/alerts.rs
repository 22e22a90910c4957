//! The proxy's alerts, each with the action its runbook entry (README: Alerts) describes.

use ai_api_proxy_config::metrics::{
    CIRCUIT_BREAKER_STATE, KEY_RELOAD_FAILURES, RATE_LIMITED, REQUESTS, TRACE_SPANS_DROPPED,
    UPSTREAM_AUTH_FAILURES, UPSTREAM_FIRST_BYTE, breaker,
};

use super::promql::Scope;
use crate::config::Environment;

/// Window of the rates alerts compare.
const WINDOW: &str = "5m";

/// How urgent an alert is (the `severity` label Alertmanager routes on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Page someone.
    Critical,
    /// Look at it during working hours.
    Warning,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
        }
    }
}

/// One alerting rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// `alert:` name, also the README heading of its runbook entry.
    pub name: &'static str,
    /// The `severity` label.
    pub severity: Severity,
    /// How long the condition must hold.
    pub for_: &'static str,
    /// The PromQL condition.
    pub expr: String,
    /// One line for the notification (may use `{{ $labels.x }}` and `{{ $value }}`).
    pub summary: String,
    /// What to do, in one paragraph (the runbook entry in short).
    pub action: &'static str,
}

/// Every alert of the environment, in the order of the README.
pub fn alerts(env: &Environment) -> Vec<Alert> {
    let s = Scope::new(env.namespace.as_str());
    let t = &env.metrics.thresholds;
    let name = env.name.as_str();
    let requests = s.sum_rate(&REQUESTS, &[], "", WINDOW);
    vec![
        Alert {
            name: "AiProxyUpstreamDown",
            severity: Severity::Critical,
            for_: "1m",
            expr: format!(
                "max by (upstream) ({}) != {}",
                s.gauge(&CIRCUIT_BREAKER_STATE, ""),
                breaker::CLOSED
            ),
            summary: "The circuit breaker of upstream {{ $labels.upstream }} has not been \
                      closed for a minute: the proxy is not sending it requests."
                .into(),
            action: "Look at the access log of the upstream's last requests (status, error). \
                     401/403: see AiProxyUpstreamAuthFailures. 5xx or timeouts: a provider \
                     outage; check its status page. Models with a fallback upstream keep \
                     working; for the others, add a fallback in proxy.models or wait.",
        },
        Alert {
            name: "AiProxyUpstreamAuthFailures",
            severity: Severity::Critical,
            for_: "5m",
            expr: format!(
                "{} > 0",
                s.sum_rate(&UPSTREAM_AUTH_FAILURES, &["upstream"], "", WINDOW)
            ),
            summary: "Upstream {{ $labels.upstream }} refuses the proxy's API key (401/403)."
                .into(),
            action: "The upstream's key was revoked, rotated or mistyped. Put the valid key into \
                     the Secret named in proxy.upstreams[].api_key (kubectl create secret \
                     generic … --dry-run=client -o yaml | kubectl apply -f -); the proxy \
                     reloads it without a restart (AiProxyKeyReloadFailed fires if it cannot).",
        },
        Alert {
            name: "AiProxyServerErrors",
            severity: Severity::Critical,
            for_: "5m",
            expr: format!(
                "{} / {requests} * 100 > {}",
                s.sum_rate(&REQUESTS, &[], "status=~\"5..\"", WINDOW),
                t.server_error_percent
            ),
            summary: format!(
                "{{{{ $value | humanize }}}}% of requests answered 5xx over 5 minutes \
                 (threshold {}%).",
                t.server_error_percent
            ),
            action: "Break the errors down by upstream and status on the dashboard. 502/504 \
                     from one upstream: that provider (see AiProxyUpstreamDown). 503 with \
                     every breaker open: no upstream is left for those models. 500 without an \
                     upstream: read the proxy's logs and roll back the last change.",
        },
        Alert {
            name: "AiProxySlowFirstByte",
            severity: Severity::Warning,
            for_: "15m",
            expr: format!(
                "{} > {}",
                s.quantile(0.99, &UPSTREAM_FIRST_BYTE, &["upstream"], WINDOW),
                t.first_byte_p99.get().as_secs_f64()
            ),
            summary: format!(
                "Upstream {{{{ $labels.upstream }}}} takes {{{{ $value | humanizeDuration }}}} \
                 to its first byte at the 99th percentile (threshold {}).",
                t.first_byte_p99
            ),
            action: "The provider is slow, or a model behind it is overloaded. Check its status \
                     page; move latency-sensitive models to a faster upstream in proxy.models. \
                     If it keeps growing towards proxy.timeouts.first_byte, requests start to \
                     fail with 504.",
        },
        Alert {
            name: "AiProxyRateLimitedSurge",
            severity: Severity::Warning,
            for_: "10m",
            expr: format!(
                "{} / {requests} * 100 > {}",
                s.sum_rate(&RATE_LIMITED, &[], "", WINDOW),
                t.rate_limited_percent
            ),
            summary: format!(
                "{{{{ $value | humanize }}}}% of requests refused by the rate limit over 5 \
                 minutes (threshold {}%).",
                t.rate_limited_percent
            ),
            action: "Find the clients answered 429 in the access log (their key id). One client: \
                     ask it to back off or give it its own, higher limit. Many clients: the \
                     limit is below real traffic; raise proxy.rate_limit and render.",
        },
        Alert {
            name: "AiProxyKeyReloadFailed",
            severity: Severity::Warning,
            for_: "0m",
            expr: format!(
                "{} > 0",
                s.sum_increase(&KEY_RELOAD_FAILURES, &["file"], "15m")
            ),
            summary: "The proxy could not use the changed secret file {{ $labels.file }}; the \
                      previous keys stay in force."
                .into(),
            action: "The proxy's log names the file and why (empty, unreadable, a malformed \
                     line). Fix the Secret: client keys are `<id>:<sha256 hex>` lines, an \
                     upstream key is the key alone. The kubelet updates the mounted file within \
                     a minute or two and the proxy reloads it; the alert clears 15 minutes after \
                     the last failure.",
        },
        Alert {
            name: "AiProxyTraceSpansDropped",
            severity: Severity::Warning,
            for_: "15m",
            expr: format!("{} > 0", s.sum_increase(&TRACE_SPANS_DROPPED, &[], "15m")),
            summary: "The proxy drops spans: {{ $value | humanize }} in 15 minutes did not fit \
                      its trace export queue."
                .into(),
            action: "The OpenTelemetry collector at proxy.telemetry.otlp.endpoint is down, \
                     unreachable (NetworkPolicy: network_policy.otlp_collector) or too slow; \
                     ai_proxy_trace_export_failures_total grows with it. Requests are not \
                     affected, only their traces. Fix the collector, or lower \
                     proxy.telemetry.sampling_ratio if it cannot keep up.",
        },
        Alert {
            name: "AiProxyPodsNotReady",
            severity: Severity::Warning,
            for_: "10m",
            expr: format!(
                "{} > 0",
                s.deployment("kube_deployment_status_replicas_unavailable", name)
            ),
            summary: "{{ $value }} pod(s) of the proxy have not been ready for 10 minutes.".into(),
            action: "`kubectl -n <namespace> describe pods -l app.kubernetes.io/name=<name>`: \
                     Pending (no node fits the requests or the topology spread), \
                     CrashLoopBackOff (the proxy's log says which config or Secret is wrong), \
                     or failing /ready (still starting, or draining). `infra apply` preflight \
                     names missing Secrets.",
        },
        Alert {
            name: "AiProxyDown",
            severity: Severity::Critical,
            for_: "2m",
            expr: format!(
                "{} == 0",
                s.deployment("kube_deployment_status_replicas_available", name)
            ),
            summary: "No pod of the proxy is available: the API is down.".into(),
            action: "Same checks as AiProxyPodsNotReady, now urgent. If a rollout caused it, \
                     `kubectl -n <namespace> rollout undo deployment/<name>`, then fix the \
                     environment and render.",
        },
    ]
}
