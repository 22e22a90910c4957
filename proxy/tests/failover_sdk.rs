//! Acceptance of mid-stream failover with the official OpenAI SDKs (Python `openai`, Node
//! `openai`): for each failure kind (reset, stall, error event) the SDK reads one
//! uninterrupted answer whose text is what the first upstream delivered followed by what the
//! next one wrote, under one id, with one finish reason; a refused failover reaches the SDK
//! as the API error it raises without failover. The client scripts are `tests/sdk/failover.py`
//! and `tests/sdk/failover.mjs`; the pinned SDKs come from `.ci/tools.sh` (`sdk_python`,
//! `sdk_node_path`; skipped, with the reason printed, when not installed, unless
//! `SDK_REQUIRED` is set).
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed setup must abort the test"
)]

mod common;

use std::path::PathBuf;

use ai_api_proxy_config::OnStreamFailure;
use common::fake::{Behaviour, Fake};
use common::sdk;
use common::*;
use serde_json::Value;

/// One SDK: runs `failover.py` or `failover.mjs` against the proxy's `model`.
#[derive(Clone)]
enum Client {
    Python(PathBuf),
    Node(PathBuf),
}

fn clients() -> Vec<Client> {
    let python = sdk::python().map(Client::Python);
    let node = sdk::node_path().map(Client::Node);
    python.into_iter().chain(node).collect()
}

impl Client {
    fn name(&self) -> &'static str {
        match self {
            Self::Python(_) => "python",
            Self::Node(_) => "node",
        }
    }

    /// Runs the script; returns the line it printed.
    async fn run(&self, proxy: &Proxy, model: &str, extra: &str) -> Value {
        let (url, model, extra) = (proxy.url(""), model.to_owned(), extra.to_owned());
        let client = self.clone();
        let run = tokio::task::spawn_blocking(move || {
            let env = [
                ("PROXY_URL", url.as_str()),
                ("CLIENT_KEY", CLIENT_KEY),
                ("MODEL", model.as_str()),
                ("EXTRA", extra.as_str()),
            ];
            match &client {
                Client::Python(python) => sdk::run_python(python, "failover.py", &env),
                Client::Node(node_path) => sdk::run_node(node_path, "failover.mjs", &env),
            }
        })
        .await
        .unwrap();
        assert!(run.ok, "{}: {}\n{}", self.name(), run.stdout, run.stderr);
        run.json()
    }
}

#[tokio::test]
async fn sdks_read_one_uninterrupted_answer_for_each_failure_kind() {
    let clients = clients();
    if clients.is_empty() {
        return;
    }
    let alpha = Fake::start_as("alpha").await;
    let bravo = Fake::start_as("bravo").await;
    let mut c = config(
        &[("a", alpha.base_url()), ("b", bravo.base_url())],
        &[("m", &["a", "b"])],
    );
    c.models[0].on_stream_failure = OnStreamFailure::Continue;
    let proxy = Proxy::start(c);

    for client in &clients {
        for (kind, behaviour) in [
            ("reset", Behaviour::ResetAfter(2)),
            ("stall", Behaviour::StallAfter(2)),
            ("error", Behaviour::ErrorAfter(2)),
        ] {
            alpha.ctl.script([behaviour]);
            let seen = client.run(&proxy, "m", "{}").await;
            let at = format!("{} {kind}: {seen}", client.name());
            assert!(seen.get("error").is_none(), "{at}");
            let text = "alpha0 alpha1 bravo0 bravo1 bravo2 ";
            assert_eq!(seen["text"], text, "{at}");
            assert_eq!(seen["final"]["content"], text, "{at}");
            assert_eq!(seen["final"]["id"], "chatcmpl-alpha", "{at}");
            assert_eq!(seen["final"]["model"], "alpha-model", "{at}");
            assert_eq!(seen["final"]["finish_reason"], "stop", "{at}");
            assert_eq!(seen["roles"], 1, "{at}");
            assert_eq!(seen["finish_reasons"].as_array().unwrap().len(), 1, "{at}");
            for key in ["ids", "created", "models"] {
                let values = seen[key].as_array().unwrap();
                assert!(values.iter().all(|v| *v == values[0]), "{key} of {at}");
            }
            let usage = &seen["final"]["usage"];
            assert_eq!(
                usage["completion_tokens"],
                3 + 4,
                "bravo's 3 and alpha's 4: {at}"
            );
        }
        // A refused failover: the SDK raises the API error it raises without failover.
        alpha.ctl.script([Behaviour::ResetAfter(2)]);
        let seen = client.run(&proxy, "m", r#"{"logprobs": true}"#).await;
        assert_eq!(
            seen["error"]["type"],
            "APIError",
            "{}: {seen}",
            client.name()
        );
        assert_eq!(seen["text"], Value::Null, "{}: {seen}", client.name());
    }
    assert_eq!(
        proxy
            .metric(
                r#"ai_proxy_stream_failovers_total{model="m",from="a",to="b",outcome="continued"}"#
            )
            .await,
        3.0 * clients.len() as f64
    );
}
