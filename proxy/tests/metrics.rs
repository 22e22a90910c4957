//! The metric catalogue (`ai_api_proxy_config::metrics`) held against the real binary's
//! metrics exposition, both ways: every catalogued family is exported with its type, help,
//! labels and buckets, and every exported family is catalogued. Alerts and dashboards are
//! written from the catalogue, so this is what keeps them naming real series.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a malformed exposition or a failed setup must fail the test"
)]

mod common;

use std::collections::BTreeMap;

use ai_api_proxy_config::metrics::{self as catalogue, Kind};
use common::fake::{Behaviour, Fake};
use common::*;

/// One sample line: name, labels in written order, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// One family as the exposition shows it.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

/// Parses the text exposition into families keyed by name; samples belong to the family of
/// the `# TYPE` line before them.
fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.is_empty() && *l != "# EOF") {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            current = name.to_owned();
            families.entry(current.clone()).or_default().kind = kind.to_owned();
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            families.entry(name.to_owned()).or_default().help = help.to_owned();
        } else {
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let sample = parse_sample(line);
            families
                .get_mut(&current)
                .unwrap_or_else(|| panic!("sample before any # TYPE: {line}"))
                .samples
                .push(sample);
        }
    }
    families
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap();
    let value = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
    let Some((name, labels)) = series.split_once('{') else {
        return Sample {
            name: series.to_owned(),
            labels: vec![],
            value,
        };
    };
    let mut rest = labels.strip_suffix('}').unwrap();
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().unwrap() {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// The `le` label of a bucket sample (exactly one).
fn le(sample: &Sample) -> &str {
    let les: Vec<&str> = sample
        .labels
        .iter()
        .filter(|(k, _)| k == "le")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(les.len(), 1, "{sample:?}");
    les[0]
}

/// Traffic that makes every family show at least one series: a plain and a streamed chat, an
/// upstream that keeps answering 503 (retries, then an open breaker), and a client over its
/// rate limit.
async fn exercised_proxy() -> (Fake, Fake, Proxy) {
    let main = Fake::start().await;
    let bad = Fake::start().await;
    bad.ctl.set_default(Behaviour::Status(503, None));
    let mut c = config(
        &[("main", main.base_url()), ("bad", bad.base_url())],
        &[("m", &["main"]), ("broken", &["bad"])],
    );
    c.retry.max_attempts = 3;
    c.circuit_breaker.failure_threshold = 3;
    c.circuit_breaker.open_for = ai_api_proxy_config::Duration::from_secs(60);
    c.rate_limit.requests_per_second = 1;
    c.rate_limit.burst = 10;
    let proxy = Proxy::start(c);

    let ask = |model: &str, stream: bool| chat(&proxy).json(&chat_body(model, stream)).send();
    assert_eq!(ask("m", false).await.unwrap().status(), 200);
    let streamed = ask("m", true).await.unwrap();
    assert_eq!(streamed.status(), 200);
    let (events, error) = sse_events(streamed).await;
    assert!(error.is_none() && !events.is_empty(), "{error:?}");
    assert_eq!(ask("broken", false).await.unwrap().status(), 503);

    // Another client's own bucket: at most burst + a few requests until the first 429.
    let mut limited = false;
    for _ in 0..20 {
        let r = http()
            .get(proxy.url("/v1/models"))
            .bearer_auth("sk-client-test-2")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the rate limit never answered 429");
    proxy
        .wait_log(|v| v["model"] == "m" && v["complete"] == true && v["status"] == 200)
        .await;
    (main, bad, proxy)
}

#[tokio::test]
async fn the_catalogue_is_exactly_what_the_proxy_exports() {
    let (_main, _bad, proxy) = exercised_proxy().await;
    let text = proxy.metrics_text().await;
    let families = parse(&text);

    for exported in families.keys() {
        assert!(
            catalogue::ALL.iter().any(|m| m.name == exported),
            "`{exported}` is exported but not in the catalogue (proxy-config/src/metrics.rs)"
        );
    }
    for metric in catalogue::ALL {
        let name = metric.name;
        let family = families
            .get(name)
            .unwrap_or_else(|| panic!("`{name}` is catalogued but not exported:\n{text}"));
        assert_eq!(family.kind, metric.type_name(), "type of {name}");
        assert_eq!(family.help, format!("{}.", metric.help), "help of {name}");
        assert!(
            !family.samples.is_empty(),
            "`{name}` has no series after traffic"
        );
        let allowed = metric.sample_names();
        for sample in &family.samples {
            assert!(
                allowed.contains(&sample.name),
                "sample `{}` of `{name}`: expected one of {allowed:?}",
                sample.name
            );
            let mut labels: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
            if let Kind::Histogram(buckets) = metric.kind
                && sample.name.ends_with("_bucket")
            {
                let le = le(sample);
                labels.retain(|l| *l != "le");
                let bounds = buckets.bounds();
                assert!(
                    le == "+Inf" || bounds.contains(&le.parse::<f64>().unwrap()),
                    "bucket `{le}` of {name} is not in the catalogue's {bounds:?}"
                );
            }
            assert_eq!(labels, metric.labels, "labels of {sample:?}");
        }
        if let Kind::Histogram(buckets) = metric.kind {
            let first_series: Vec<&Sample> = family
                .samples
                .iter()
                .filter(|s| s.name.ends_with("_bucket"))
                .take(buckets.bounds().len() + 1)
                .collect();
            assert_eq!(
                first_series.last().map(|s| le(s)),
                Some("+Inf"),
                "{name}: expected {} finite buckets, then +Inf",
                buckets.bounds().len()
            );
        }
    }
}

#[tokio::test]
async fn breaker_and_rate_limit_values_mean_what_the_catalogue_says() {
    let (_main, _bad, proxy) = exercised_proxy().await;
    let state = |upstream: &str| {
        format!(
            r#"{}{{upstream="{upstream}"}}"#,
            catalogue::CIRCUIT_BREAKER_STATE.name
        )
    };
    assert_eq!(
        proxy.metric(&state("bad")).await,
        catalogue::breaker::OPEN as f64
    );
    assert_eq!(
        proxy.metric(&state("main")).await,
        catalogue::breaker::CLOSED as f64
    );
    let rate_limited = &catalogue::RATE_LIMITED.sample_names()[0];
    assert_eq!(proxy.metric(rate_limited).await, 1.0);
    let retries = format!(
        r#"{}{{upstream="bad"}}"#,
        catalogue::UPSTREAM_RETRIES.sample_names()[0]
    );
    assert_eq!(proxy.metric(&retries).await, 2.0, "3 attempts: 2 retries");
    let families = parse(&proxy.metrics_text().await);
    let tokens = &families[catalogue::TOKENS.name].samples;
    assert!(
        tokens.iter().any(|s| s.value > 0.0),
        "no token counted: {tokens:?}"
    );
}
