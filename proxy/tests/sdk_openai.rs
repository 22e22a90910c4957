//! Acceptance with the official OpenAI SDKs (Python and Node, pinned in proxy/tests/sdk/): a
//! plain and a streamed chat completion through the real proxy, and the errors they must tell
//! apart. Skips without the SDKs unless `SDK_REQUIRED` is set (CI).

mod common;

use common::fake::Fake;
use common::sdk::{self, Run};
use common::*;
use serde_json::json;

async fn setup() -> (Fake, Proxy) {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    (fake, proxy)
}

/// What both SDKs must have seen (the stand-in streams "tok0 tok1 tok2 " and usage 7 + 3).
fn check(run: &Run) {
    assert!(
        run.ok,
        "the SDK script failed: {}\n{}",
        run.stdout, run.stderr
    );
    let out = run.json();
    assert_eq!(out["plain_text"], "Hello!");
    assert_eq!(out["plain_finish"], "stop");
    assert_eq!(out["plain_usage"], 15);
    assert_eq!(out["stream_text"], "tok0 tok1 tok2 ");
    assert_eq!(out["stream_finishes"], json!(["stop"]));
    assert_eq!(out["stream_usage"], 10);
    assert_eq!(out["bad_key"]["status"], 401, "{out}");
    assert_eq!(out["bad_key"]["class"], "AuthenticationError");
    assert_eq!(out["bad_key"]["code"], "invalid_api_key");
    assert_eq!(out["unknown_model"]["status"], 404, "{out}");
    assert_eq!(out["unknown_model"]["class"], "NotFoundError");
    assert_eq!(out["unknown_model"]["code"], "model_not_found");
}

#[tokio::test]
async fn python_sdk_plain_streamed_and_errors() {
    let Some(python) = sdk::python() else { return };
    let (_fake, proxy) = setup().await;
    let url = proxy.url("");
    let run = tokio::task::spawn_blocking(move || {
        sdk::run_python(
            &python,
            "openai_chat.py",
            &[("PROXY_URL", &url), ("CLIENT_KEY", CLIENT_KEY)],
        )
    })
    .await
    .unwrap();
    check(&run);
}

#[tokio::test]
async fn node_sdk_plain_streamed_and_errors() {
    let Some(node_path) = sdk::node_path() else {
        return;
    };
    let (_fake, proxy) = setup().await;
    let url = proxy.url("");
    let run = tokio::task::spawn_blocking(move || {
        sdk::run_node(
            &node_path,
            "openai_chat.mjs",
            &[("PROXY_URL", &url), ("CLIENT_KEY", CLIENT_KEY)],
        )
    })
    .await
    .unwrap();
    check(&run);
}
