//! Every PromQL expression of the alerts and the dashboard parses (promql-parser), and reads
//! only series and labels the proxy exports (the catalogue) or kube-state-metrics has.

use std::collections::BTreeSet;

use ai_api_proxy_config::metrics::{self as catalogue, Kind};
use promql_parser::parser::{self, Expr, LabelModifier, VectorSelector};

use super::promql::{KUBE_STATE_METRICS, TARGET_LABELS};
use super::{alerts, dashboard, pod_monitor, prometheus_rule};
use crate::config::Environment;
use crate::objects::tests::load;

/// Series and label names an expression reads.
#[derive(Default, Debug)]
struct Reads {
    series: BTreeSet<String>,
    labels: BTreeSet<String>,
}

fn walk(e: &Expr, r: &mut Reads) {
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, r);
            if let Some(p) = &a.param {
                walk(p, r);
            }
            grouping(a.modifier.as_ref(), r);
        }
        Expr::Unary(u) => walk(&u.expr, r),
        Expr::Binary(b) => {
            walk(&b.lhs, r);
            walk(&b.rhs, r);
            grouping(b.modifier.as_ref().and_then(|m| m.matching.as_ref()), r);
        }
        Expr::Paren(p) => walk(&p.expr, r),
        Expr::Subquery(s) => walk(&s.expr, r),
        Expr::VectorSelector(v) => selector(v, r),
        Expr::MatrixSelector(m) => selector(&m.vs, r),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, r)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector(v: &VectorSelector, r: &mut Reads) {
    r.series.extend(v.name.clone());
    for m in v
        .matchers
        .matchers
        .iter()
        .chain(v.matchers.or_matchers.iter().flatten())
    {
        if m.name == "__name__" {
            r.series.insert(m.value.clone());
        } else {
            r.labels.insert(m.name.clone());
        }
    }
}

fn grouping(m: Option<&LabelModifier>, r: &mut Reads) {
    if let Some(LabelModifier::Include(l) | LabelModifier::Exclude(l)) = m {
        r.labels.extend(l.labels.iter().cloned());
    }
}

/// Parses `expr` and checks every series and label it reads; the error says which.
fn check(expr: &str) -> Result<(), String> {
    // Grafana's own variable, not PromQL.
    let promql = expr.replace("$__rate_interval", "5m");
    let ast = parser::parse(&promql).map_err(|e| format!("`{expr}` does not parse: {e}"))?;
    let mut reads = Reads::default();
    walk(&ast, &mut reads);
    if reads.series.is_empty() {
        return Err(format!("`{expr}` reads no series"));
    }
    let mut allowed: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    for series in &reads.series {
        match catalogue::by_sample_name(series) {
            Some(m) => {
                allowed.extend(m.labels.iter().copied());
                if matches!(m.kind, Kind::Histogram(_)) {
                    allowed.insert("le");
                }
            }
            None if KUBE_STATE_METRICS.contains(&series.as_str()) => {
                allowed.insert("deployment");
            }
            None => {
                return Err(format!(
                    "`{expr}` reads `{series}`, which the proxy does not export \
                     (proxy-config/src/metrics.rs)"
                ));
            }
        }
    }
    match reads.labels.iter().find(|l| !allowed.contains(l.as_str())) {
        Some(l) => Err(format!(
            "`{expr}` uses label `{l}`, which none of its series has"
        )),
        None => Ok(()),
    }
}

fn expressions(env: &Environment, env_name: &str) -> Vec<String> {
    let mut exprs: Vec<String> = prometheus_rule::prometheus_rule(env, env_name)
        .and_then(|r| r.spec.groups)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|g| g.rules.unwrap_or_default())
        .map(|r| match r.expr {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        })
        .collect();
    exprs.extend(
        dashboard::dashboard(env, env_name)
            .panels
            .into_iter()
            .flat_map(|p| p.targets)
            .map(|t| t.expr),
    );
    exprs
}

#[test]
fn every_expression_parses_and_reads_only_exported_series() {
    for name in ["staging", "production"] {
        let env = load(name);
        let exprs = expressions(&env, name);
        assert!(exprs.len() >= 15, "{}", exprs.len());
        for expr in exprs {
            if let Err(e) = check(&expr) {
                panic!("{name}: {e}");
            }
        }
    }
}

#[test]
fn the_check_refuses_unknown_series_labels_and_syntax() {
    assert!(check("sum(rate(ai_proxy_requests_total{namespace=\"a\"}[5m]))").is_ok());
    for bad in [
        "rate(ai_proxy_requests_count[5m])",
        "ai_proxy_in_flight_requests_total",
        "sum by (le) (rate(ai_proxy_requests_total[5m]))",
        "ai_proxy_requests_total{model=\"a\",colour=\"b\"}",
        "sum by (upstream) (ai_proxy_in_flight_requests)",
        "rate(ai_proxy_requests_total[5m]",
        "1 + 1",
    ] {
        assert!(check(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_alert_has_a_runbook_entry_in_the_readme() {
    let readme = include_str!("../../../README.md");
    for alert in alerts::alerts(&load("production")) {
        let heading = format!("#### {}\n", alert.name);
        assert!(
            readme.contains(&heading),
            "README.md has no `{}`",
            heading.trim()
        );
    }
}

#[test]
fn alerts_carry_severity_action_and_runbook_link() {
    let mut env = load("production");
    env.metrics.runbook_url = Some("https://git.example.com/infra#readme".into());
    let rules = prometheus_rule::prometheus_rule(&env, "production")
        .and_then(|r| r.spec.groups)
        .unwrap_or_default()
        .remove(0)
        .rules
        .unwrap_or_default();
    let names: Vec<_> = rules.iter().filter_map(|r| r.alert.clone()).collect();
    assert_eq!(
        names,
        [
            "AiProxyUpstreamDown",
            "AiProxyUpstreamAuthFailures",
            "AiProxyServerErrors",
            "AiProxySlowFirstByte",
            "AiProxyRateLimitedSurge",
            "AiProxyKeyReloadFailed",
            "AiProxyTraceSpansDropped",
            "AiProxyPodsNotReady",
            "AiProxyDown"
        ]
    );
    for r in &rules {
        let annotations = r.annotations.clone().unwrap_or_default();
        assert!(annotations["runbook"].len() > 40, "{r:?}");
        assert!(annotations["runbook_url"].ends_with(&format!(
            "#{}",
            r.alert.clone().unwrap_or_default().to_ascii_lowercase()
        )));
        let severity = &r.labels.clone().unwrap_or_default()["severity"];
        assert!(severity == "critical" || severity == "warning");
    }
}

#[test]
fn the_dashboard_shows_what_operators_look_at() {
    let d = dashboard::dashboard(&load("production"), "production");
    let titles: Vec<_> = d.panels.iter().map(|p| p.title.as_str()).collect();
    for wanted in [
        "Requests by model and status",
        "Request duration",
        "Upstream time to first byte",
        "Tokens by model",
        "In flight",
        "Retries by upstream",
        "Circuit breakers",
        "Rate-limited requests",
    ] {
        assert!(titles.contains(&wanted), "{wanted} missing from {titles:?}");
    }
    let ids: BTreeSet<_> = d.panels.iter().map(|p| p.id).collect();
    assert_eq!(ids.len(), d.panels.len());
    for p in &d.panels {
        assert!(p.grid_pos.x + p.grid_pos.w <= 24, "{}", p.title);
    }
    assert!(d.uid.len() <= 40);
}

#[test]
fn each_object_follows_its_switch() {
    let mut env = load("production");
    assert!(pod_monitor::pod_monitor(&env, "production").is_some());
    assert!(prometheus_rule::prometheus_rule(&env, "production").is_some());
    let cm = dashboard::dashboard_config_map(&env, "production").unwrap_or_default();
    let labels = cm.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("grafana_dashboard").map(String::as_str),
        Some("1")
    );
    env.metrics.pod_monitor = false;
    env.metrics.alerts = false;
    env.metrics.dashboard = false;
    assert!(pod_monitor::pod_monitor(&env, "production").is_none());
    assert!(prometheus_rule::prometheus_rule(&env, "production").is_none());
    assert!(dashboard::dashboard_config_map(&env, "production").is_none());
}

#[test]
fn the_pod_monitor_scrapes_the_metrics_endpoint_of_our_pods_only() {
    let env = load("production");
    let spec = pod_monitor::pod_monitor(&env, "production")
        .map(|m| m.spec)
        .unwrap_or_default();
    assert_eq!(
        spec.selector.match_labels,
        Some(crate::objects::labels::selector(&env, "production"))
    );
    let endpoint = &spec.pod_metrics_endpoints.unwrap_or_default()[0];
    assert_eq!(
        endpoint.port.as_deref(),
        Some(pod_monitor::METRICS_PORT_NAME)
    );
    assert_eq!(endpoint.path.as_deref(), Some("/metrics"));
}
