//! The official SDKs against the real proxy binary and Anthropic's Messages API: the
//! `anthropic` Python SDK (`tests/sdk/anthropic_messages.py`: plain, streamed, tools, a tool
//! result, count_tokens, errors) to an Anthropic upstream (relayed as it is) and to an
//! OpenAI-compatible one (translated), and the `openai` Python SDK's chat completions
//! translated to an Anthropic upstream (`tests/sdk/openai_to_anthropic.py`). The upstreams
//! are stand-ins speaking each provider's wire format on 127.0.0.1. Without the SDKs
//! (`SDK_PYTHON`) these tests skip, unless `SDK_REQUIRED=1`.

mod common;

use std::path::Path;

use ai_api_proxy_config::UpstreamKind;
use common::fake::Fake;
use common::fake::anthropic::{CACHE_READ, INPUT_TOKENS};
use common::*;

/// Runs an SDK script with `env` (off the async runtime: the stand-ins live on it); fails
/// the test with its output unless it exits 0 and reports that it passed.
async fn run_script(python: &Path, script: &'static str, env: Vec<(&'static str, String)>) {
    let python = python.to_owned();
    let run = match tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sdk::run_python(&python, script, &env)
    })
    .await
    {
        Ok(run) => run,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    assert!(run.ok, "{script} failed:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["passed"], true, "{}", run.stdout);
}

/// The scripts' environment: the proxy (the Anthropic SDK adds `/v1` itself), a client key,
/// the model, and the kind of upstream behind it.
fn env(proxy: &Proxy, kind: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PROXY_URL", proxy.url("")),
        ("CLIENT_KEY", CLIENT_KEY.into()),
        ("MODEL", "model-a".into()),
        ("UPSTREAM_KIND", kind.into()),
    ]
}

fn proxy_for(kind: UpstreamKind, base_url: String) -> Proxy {
    let mut c = config(&[("up", base_url)], &[("model-a", &["up"])]);
    c.upstreams[0].kind = kind;
    Proxy::start(c)
}

#[tokio::test]
async fn the_anthropic_sdk_through_to_an_anthropic_upstream() {
    let Some(python) = sdk::python() else { return };
    let up = Fake::start_anthropic().await;
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url());
    run_script(&python, "anthropic_messages.py", env(&proxy, "anthropic")).await;
    // Relayed as it is, with the proxy's key in x-api-key and the SDK's version.
    let seen = up.ctl.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.uri.starts_with("/v1/messages")));
    for s in &seen {
        assert_eq!(s.headers["x-api-key"], UPSTREAM_KEY);
        assert!(s.headers.get("authorization").is_none());
        assert!(!s.headers["anthropic-version"].is_empty());
    }
    // Metered from the answers' usage: input (with cache reads) and output tokens.
    let prompt = proxy
        .metric(r#"ai_proxy_tokens_total{client="team-a",model="model-a",kind="prompt"}"#)
        .await;
    assert!(
        prompt > 0.0 && prompt % (INPUT_TOKENS + CACHE_READ) as f64 == 0.0,
        "{prompt}"
    );
}

#[tokio::test]
async fn the_anthropic_sdk_translated_to_an_openai_upstream() {
    let Some(python) = sdk::python() else { return };
    let up = Fake::start().await;
    let proxy = proxy_for(UpstreamKind::Openai, up.base_url());
    run_script(&python, "anthropic_messages.py", env(&proxy, "openai")).await;
    let seen = up.ctl.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|s| s.uri == "/v1/chat/completions"),
        "{seen:?}"
    );
    for s in &seen {
        assert_eq!(
            s.headers["authorization"],
            format!("Bearer {UPSTREAM_KEY}").as_str()
        );
        assert!(s.headers.get("x-api-key").is_none());
        assert!(s.headers.get("anthropic-version").is_none());
    }
}

#[tokio::test]
async fn the_openai_sdk_translated_to_an_anthropic_upstream() {
    let Some(python) = sdk::python() else { return };
    let up = Fake::start_anthropic().await;
    let proxy = proxy_for(UpstreamKind::Anthropic, up.base_url());
    let mut env = env(&proxy, "anthropic");
    env[0].1 = proxy.url("/v1");
    run_script(&python, "openai_to_anthropic.py", env).await;
    let seen = up.ctl.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.uri == "/v1/messages"), "{seen:?}");
    let first: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        first["system"],
        serde_json::json!([{"type": "text", "text": "Be brief."}])
    );
    assert_eq!(first["max_tokens"], 4096);
}
