//! Scraping, alerts and dashboard: one way of scraping, a scraper the NetworkPolicy admits, and
//! thresholds an alert can reach.

use ai_api_proxy_config::metrics::{Kind, UPSTREAM_FIRST_BYTE};

use super::Report;
use super::traffic::{label_value_ok, qualified_name_ok};
use crate::config::Environment;

/// Longest scrape interval: rates over 5-minute windows need several samples.
const MAX_SCRAPE_INTERVAL_SECS: u64 = 60;

pub(super) fn metrics(r: &mut Report, env: &Environment) {
    let m = &env.metrics;
    r.check(
        !(m.pod_monitor && m.scrape_annotations),
        "metrics.scrape_annotations",
        || {
            "true together with metrics.pod_monitor, so Prometheus would scrape every pod twice \
             and dashboards would count everything double: expected `false`"
                .into()
        },
    );
    r.check(
        !m.pod_monitor || env.network_policy.metrics_namespace.is_some(),
        "network_policy.metrics_namespace",
        || {
            "unset while metrics.pod_monitor is on, so the NetworkPolicy would refuse Prometheus: \
             expected the namespace Prometheus runs in, like `monitoring`"
                .into()
        },
    );
    for (key, value) in &m.prometheus_labels {
        let path = super::key_path("metrics.prometheus_labels", key);
        r.check(qualified_name_ok(key), &path, || {
            format!("invalid label key `{key}`: expected `name` or `prefix/name`, like `release`")
        });
        r.check(label_value_ok(value), &path, || {
            format!("invalid label value `{value}`: expected up to 63 letters, digits, `-`, `_` and `.`, starting and ending alphanumeric")
        });
    }
    let interval = m.scrape_interval.get();
    r.check(
        interval.as_secs() >= 1
            && interval.as_secs() <= MAX_SCRAPE_INTERVAL_SECS
            && interval.subsec_nanos() == 0,
        "metrics.scrape_interval",
        || {
            format!(
                "got `{}`: expected whole seconds from 1s to {MAX_SCRAPE_INTERVAL_SECS}s (the \
                 alerts' 5-minute rates need several samples)",
                m.scrape_interval
            )
        },
    );
    let t = &m.thresholds;
    for (key, value) in [
        ("server_error_percent", t.server_error_percent),
        ("rate_limited_percent", t.rate_limited_percent),
    ] {
        r.check(
            (1..=100).contains(&value),
            format!("metrics.thresholds.{key}"),
            || format!("got {value}: expected a percentage from 1 to 100"),
        );
    }
    first_byte_p99(r, env);
    if let Some(url) = &m.runbook_url {
        r.check(
            (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace)
                && !url.contains('#'),
            "metrics.runbook_url",
            || format!("got `{url}`: expected an http(s) URL without `#` (infra appends the alert's anchor)"),
        );
    }
}

/// The first-byte alert can fire: its threshold is below the proxy's first-byte timeout (no
/// first byte arrives later) and within the histogram's buckets (beyond the last one, the
/// quantile is that bound).
fn first_byte_p99(r: &mut Report, env: &Environment) {
    let threshold = env.metrics.thresholds.first_byte_p99;
    let proxy = &env.proxy;
    let longest = proxy.longest(|t| t.first_byte);
    let top = match UPSTREAM_FIRST_BYTE.kind {
        Kind::Histogram(b) => b.bounds().last().copied().unwrap_or(0.0),
        Kind::Counter | Kind::Gauge => 0.0,
    };
    let secs = threshold.get().as_secs_f64();
    r.check(
        secs > 0.0 && threshold < longest && secs <= top,
        "metrics.thresholds.first_byte_p99",
        || {
            format!(
                "got `{threshold}`: expected more than 0, less than the proxy's first-byte \
                 timeout `{longest}` (proxy.timeouts.first_byte) and at most the metric's largest \
                 bucket, {top}s, or the alert could never fire"
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::Duration;

    use crate::config::validate::check;
    use crate::objects::tests::load;

    fn paths(env: &crate::config::Environment) -> Vec<String> {
        check(env).into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn one_way_of_scraping_and_a_scraper_the_policy_admits() {
        let mut env = load("production");
        env.metrics.scrape_annotations = true;
        env.network_policy.metrics_namespace = None;
        assert_eq!(
            paths(&env),
            [
                "metrics.scrape_annotations",
                "network_policy.metrics_namespace"
            ]
        );
        env.metrics.pod_monitor = false;
        assert_eq!(paths(&env), Vec::<String>::new());
    }

    #[test]
    fn thresholds_an_alert_can_reach() {
        let mut env = load("production");
        env.metrics.thresholds.first_byte_p99 = Duration::from_secs(120);
        env.metrics.thresholds.server_error_percent = 0;
        env.metrics.thresholds.rate_limited_percent = 101;
        env.metrics.scrape_interval = Duration::from_secs(300);
        env.metrics.runbook_url = Some("https://example.com/runbook#alerts".into());
        let problems = check(&env);
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metrics.scrape_interval",
                "metrics.thresholds.server_error_percent",
                "metrics.thresholds.rate_limited_percent",
                "metrics.thresholds.first_byte_p99",
                "metrics.runbook_url",
            ]
        );
        assert!(
            problems[3].message.contains("proxy.timeouts.first_byte"),
            "{problems:#?}"
        );
    }
}
