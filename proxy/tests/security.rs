//! What a security reviewer checks, through the real binary: no implicit open proxy, the
//! bearer scheme in any case, the header policy both ways, an upstream refusing our key, and
//! keys rotated by rewriting their mounted files while the proxy runs.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup must fail the test"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::fake::{Behaviour, Fake};
use common::*;

#[tokio::test]
async fn a_config_without_auth_does_not_start() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.auth = None;
    let dir = TempDir::new();
    let path = dir.0.join("proxy.json");
    std::fs::write(&path, c.to_json()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ai-api-proxy"))
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("auth: is required"), "{text}");
    assert!(text.contains("anonymous"), "{text}");
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_in_any_case() {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = http()
            .get(proxy.url("/v1/models"))
            .header("authorization", format!("{scheme} {CLIENT_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn only_allowed_headers_cross_the_proxy() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.upstreams[0].organization = Some("org-ours".into());
    c.upstreams[0].project = Some("proj_ours".into());
    let proxy = Proxy::start(c);
    let r = chat(&proxy)
        .header("x-api-key", "sk-client-extra")
        .header("api-key", "sk-client-azure")
        .header("cookie", "session=client")
        .header("openai-organization", "org-theirs")
        .header("openai-project", "proj_theirs")
        .header("x-forwarded-for", "203.0.113.9")
        .header("openai-beta", "assistants=v2")
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Towards the upstream: the allowlist, our key, our organization and project.
    let seen = fake.ctl.last().headers;
    for name in ["x-api-key", "api-key", "cookie", "x-forwarded-for"] {
        assert!(seen.get(name).is_none(), "{name} reached the upstream");
    }
    assert_eq!(seen["authorization"], format!("Bearer {UPSTREAM_KEY}"));
    assert_eq!(seen["openai-organization"], "org-ours");
    assert_eq!(seen["openai-project"], "proj_ours");
    assert_eq!(seen["openai-beta"], "assistants=v2");

    // Back to the client: no upstream cookie or organization; our request id, theirs renamed.
    let h = r.headers();
    assert!(h.get("set-cookie").is_none());
    assert!(h.get("openai-organization").is_none());
    assert_eq!(h["x-request-id"].len(), 32, "the proxy's id");
    assert_eq!(h["x-upstream-request-id"], "req_upstream_1");
}

#[tokio::test]
async fn an_upstream_refusing_our_key_is_a_502_of_our_own() {
    let bad = Fake::start().await;
    let good = Fake::start().await;
    bad.ctl.set_default(Behaviour::Status(401, None));
    let proxy = Proxy::start(config(
        &[("bad", bad.base_url()), ("good", good.base_url())],
        &[("only-bad", &["bad"]), ("fallback", &["bad", "good"])],
    ));
    let (status, body, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body("only-bad", false).to_string(),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "upstream_auth_failed");
    assert!(
        !body.contains("upstream says"),
        "the provider's message leaked: {body}"
    );
    assert_eq!(bad.ctl.count(), 1, "a refused key is not retried");
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_upstream_auth_failures_total{upstream="bad"}"#)
            .await,
        1.0
    );
    assert!(
        proxy
            .all_output()
            .contains("upstream refused the proxy's API key"),
        "logged loudly"
    );
    // Another upstream of the model is tried.
    let (status, _, _) = post_raw(
        &proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body("fallback", false).to_string(),
    )
    .await;
    assert_eq!(status, 200);
}

/// Replaces a mounted Secret key the way the kubelet does: a new timestamped directory, then
/// the `..data` symlink swapped in one rename; the key file itself is a symlink into `..data`.
fn kubelet_update(secret_dir: &Path, key: &str, value: &str, generation: u32) {
    use std::os::unix::fs::symlink;
    let data = secret_dir.join(format!("..2026_12_02_{generation}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(key), value).unwrap();
    let tmp = secret_dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(data.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, secret_dir.join("..data")).unwrap();
    let link = secret_dir.join(key);
    if !link.is_symlink() {
        let tmp = secret_dir.join(format!("{key}.tmp"));
        symlink(Path::new("..data").join(key), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    }
}

async fn status_with(proxy: &Proxy, key: &str) -> u16 {
    http()
        .get(proxy.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls (bounded) until `key` gets `want`.
async fn wait_status(proxy: &Proxy, key: &str, want: u16) {
    for _ in 0..100 {
        if status_with(proxy, key).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{key} never got {want}");
}

#[tokio::test]
async fn client_keys_rotate_without_a_restart_and_bad_files_keep_the_old_keys() {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let dir = proxy.secrets_dir.join("client-keys");
    assert_eq!(status_with(&proxy, CLIENT_KEY).await, 200);

    // team-a revoked, team-c added.
    let file = format!("team-c:{}\n", sha256_hex("sk-client-new"));
    kubelet_update(&dir, "keys", &file, 1);
    wait_status(&proxy, "sk-client-new", 200).await;
    assert_eq!(status_with(&proxy, CLIENT_KEY).await, 401);

    // A broken file changes nothing, and is counted.
    kubelet_update(&dir, "keys", "team-d:not-a-hash\n", 2);
    for _ in 0..100 {
        if proxy
            .metric(r#"ai_proxy_key_reload_failures_total{file="client_keys"}"#)
            .await
            == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_key_reload_failures_total{file="client_keys"}"#)
            .await,
        1.0
    );
    assert_eq!(status_with(&proxy, "sk-client-new").await, 200);
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_key_reloads_total{file="client_keys"}"#)
            .await,
        1.0
    );
    let out = proxy.all_output();
    assert!(
        !out.contains("not-a-hash"),
        "a key file line reached the log"
    );
    assert!(!out.contains("sk-client-new"));
}

#[tokio::test]
async fn the_upstream_key_rotates_without_a_restart() {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let dir = proxy.secrets_dir.join("upstream");
    kubelet_update(&dir, "api-key", "sk-upstream-rotated\n", 1);
    let mut rotated = false;
    for _ in 0..100 {
        let r = chat(&proxy)
            .json(&chat_body("m", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if fake.ctl.last().headers["authorization"] == "Bearer sk-upstream-rotated" {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new upstream key was never used");
    assert!(!proxy.all_output().contains("sk-upstream-rotated"));
}
