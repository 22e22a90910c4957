//! Egress against real parts on 127.0.0.1: an HTTPS upstream whose certificate a CA made in the
//! test signs (a rustls server, with and without client-certificate checks), in front of the
//! stand-in upstream; and a real HTTP CONNECT proxy (Debian's `tinyproxy`, skipped saying why
//! where it is not installed) with basic authentication.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test"
)]

mod common;
#[path = "common/tinyproxy.rs"]
mod tinyproxy;
#[path = "common/tls.rs"]
mod tls_upstream;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ai_api_proxy_config::{
    ClientCertificate, ConfigMapRef, Egress, FileSource, KeySource, ProxyBasicAuth, ProxyConfig,
    SecretRef, UpstreamTls,
};
use common::fake::Fake;
use common::{CLIENT_KEY, Proxy, TempDir, chat_body, config, eventually, post_raw, write_secrets};
use tinyproxy::Tinyproxy;
use tls_upstream::{Ca, Pair, TlsUpstream};

const MODEL: &str = "gpt-4o-mini";

fn secret(name: &str, key: &str) -> SecretRef {
    SecretRef {
        name: name.into(),
        key: key.into(),
    }
}

fn ca_map() -> ConfigMapRef {
    ConfigMapRef {
        name: "internal-ca".into(),
        key: "ca.crt".into(),
    }
}

/// One upstream `internal` at `base_url` with `tls`, directly (whatever the test machine's
/// `HTTPS_PROXY` says) unless `egress` is given.
fn internal(base_url: String, tls: UpstreamTls, egress: Egress) -> ProxyConfig {
    let mut c = config(&[("internal", base_url)], &[(MODEL, &["internal"])]);
    c.upstreams[0].tls = Some(tls);
    c.egress = Some(egress);
    c
}

/// Starts the proxy with its secrets, then `files` (path under the temp dir, content) written
/// over them, and `env` for the process.
fn start(mut config: ProxyConfig, files: &[(PathBuf, String)], env: &[(&str, &str)]) -> Proxy {
    let dir = TempDir::new();
    config.secrets_dir = dir.0.join("secrets");
    config.config_maps_dir = dir.0.join("config-maps");
    write_secrets(&config, &config.secrets_dir);
    for (path, text) in files {
        let path = dir.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let path = dir.0.join("proxy.json");
    std::fs::write(&path, config.to_json()).unwrap();
    Proxy::start_file(&path, dir, env)
}

fn ca_file(ca: &Ca) -> (PathBuf, String) {
    (PathBuf::from("config-maps/internal-ca/ca.crt"), ca.pem())
}

fn client_files(pair: &Pair) -> [(PathBuf, String); 2] {
    [
        (
            PathBuf::from("secrets/upstream-mtls/tls.crt"),
            pair.cert.clone(),
        ),
        (
            PathBuf::from("secrets/upstream-mtls/tls.key"),
            pair.key.clone(),
        ),
    ]
}

fn with_ca() -> UpstreamTls {
    UpstreamTls {
        ca: Some(FileSource::ConfigMap(ca_map())),
        ..UpstreamTls::default()
    }
}

async fn chat(proxy: &Proxy) -> (u16, serde_json::Value) {
    let (status, body, _) = post_raw(
        proxy,
        "/v1/chat/completions",
        Some(&format!("Bearer {CLIENT_KEY}")),
        &chat_body(MODEL, false).to_string(),
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or_default())
}

fn assert_tls_failed(status: u16, body: &serde_json::Value) {
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_tls_failed", "{body}");
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("upstream `internal`"),
        "the upstream is named: {message}"
    );
}

#[tokio::test]
async fn an_internal_ca_is_trusted_beside_the_public_roots_and_a_wrong_one_is_a_named_502() {
    let fake = Fake::start().await;
    let ca = Ca::new("internal-ca");
    let server = TlsUpstream::start(&ca.server(&["127.0.0.1"]), None, fake.addr).await;
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());

    let proxy = start(
        internal(base.clone(), with_ca(), Egress::default()),
        &[ca_file(&ca)],
        &[],
    );
    let (status, body) = chat(&proxy).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.ctl.count(), 1);
    assert!(fake.ctl.last().headers["authorization"] == "Bearer sk-upstream-secret-xyz");

    // Another CA's bundle, and the public roots alone: both refused, named, never a panic.
    let other = Ca::new("someone-else");
    let wrong = start(
        internal(base.clone(), with_ca(), Egress::default()),
        &[ca_file(&other)],
        &[],
    );
    let (status, body) = chat(&wrong).await;
    assert_tls_failed(status, &body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not signed by a CA the proxy trusts"),
        "{body}"
    );
    let public = start(
        internal(base, UpstreamTls::default(), Egress::default()),
        &[],
        &[],
    );
    let (status, body) = chat(&public).await;
    assert_tls_failed(status, &body);
    assert_eq!(fake.ctl.count(), 1, "nothing reached the upstream");
    assert!(
        wrong.all_output().contains("TLS with the upstream failed"),
        "logged with its cause"
    );
    let health = common::http()
        .get(wrong.admin_url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the process is alive");
}

#[tokio::test]
async fn replace_roots_and_server_name_verify_the_name_the_operator_gives() {
    let fake = Fake::start().await;
    let ca = Ca::new("internal-ca");
    // The certificate names a service alias, the URL an address.
    let server = TlsUpstream::start(&ca.server(&["llm.internal.example"]), None, fake.addr).await;
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());
    let tls = UpstreamTls {
        replace_roots: true,
        server_name: Some("llm.internal.example".into()),
        ..with_ca()
    };
    let proxy = start(
        internal(base.clone(), tls, Egress::default()),
        &[ca_file(&ca)],
        &[],
    );
    let (status, body) = chat(&proxy).await;
    assert_eq!(status, 200, "{body}");

    let proxy = start(
        internal(base, with_ca(), Egress::default()),
        &[ca_file(&ca)],
        &[],
    );
    let (status, body) = chat(&proxy).await;
    assert_tls_failed(status, &body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid for the name"),
        "{body}"
    );
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate_and_is_refused_without_it() {
    let fake = Fake::start().await;
    let ca = Ca::new("internal-ca");
    let server = TlsUpstream::start(&ca.server(&["127.0.0.1"]), Some(&ca), fake.addr).await;
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());

    let without = start(
        internal(base.clone(), with_ca(), Egress::default()),
        &[ca_file(&ca)],
        &[],
    );
    let (status, body) = chat(&without).await;
    assert_tls_failed(status, &body);
    assert_eq!(fake.ctl.count(), 0);

    let tls = UpstreamTls {
        client_certificate: Some(ClientCertificate {
            certificate: secret("upstream-mtls", "tls.crt"),
            key: secret("upstream-mtls", "tls.key"),
        }),
        ..with_ca()
    };
    let client = ca.client("ai-api-proxy");
    let mut files = vec![ca_file(&ca)];
    files.extend(client_files(&client));
    let with = start(
        internal(base.clone(), tls.clone(), Egress::default()),
        &files,
        &[],
    );
    let (status, body) = chat(&with).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.ctl.count(), 1);

    // A certificate from another CA is refused by the server: named, not retried forever.
    let stranger = Ca::new("stranger").client("ai-api-proxy");
    let mut files = vec![ca_file(&ca)];
    files.extend(client_files(&stranger));
    let wrong = start(internal(base, tls, Egress::default()), &files, &[]);
    let (status, body) = chat(&wrong).await;
    assert_tls_failed(status, &body);
    assert_eq!(fake.ctl.count(), 1);
}

#[tokio::test]
async fn a_new_ca_bundle_and_client_certificate_are_used_without_a_restart() {
    let fake = Fake::start().await;
    let old_ca = Ca::new("old-ca");
    let new_ca = Ca::new("new-ca");
    let server = TlsUpstream::start(&new_ca.server(&["127.0.0.1"]), Some(&new_ca), fake.addr).await;
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());
    let tls = UpstreamTls {
        client_certificate: Some(ClientCertificate {
            certificate: secret("upstream-mtls", "tls.crt"),
            key: secret("upstream-mtls", "tls.key"),
        }),
        ..with_ca()
    };
    let mut files = vec![ca_file(&old_ca)];
    files.extend(client_files(&old_ca.client("ai-api-proxy")));
    let proxy = start(internal(base, tls, Egress::default()), &files, &[]);
    let (status, body) = chat(&proxy).await;
    assert_tls_failed(status, &body);

    // The rotation: a kubelet-style swap of the mounted files (new content, same paths).
    let root = proxy.secrets_dir.parent().unwrap().to_owned();
    let mut files = vec![ca_file(&new_ca)];
    files.extend(client_files(&new_ca.client("ai-api-proxy")));
    for (path, text) in &files {
        let path = root.join(path);
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // The circuit breaker may be open after the failures: wait it out too.
        if chat(&proxy).await.0 == 200 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the new CA and certificate were not taken up: {}",
        proxy.all_output()
    );
    assert!(
        proxy
            .metric(r#"ai_proxy_key_reloads_total{file="upstream_tls:internal"}"#)
            .await
            >= 1.0
    );

    // A broken bundle keeps the configuration in force, logged and counted.
    let path = root.join("config-maps/internal-ca/ca.crt");
    std::fs::write(&path, "not a certificate\n").unwrap();
    assert!(
        eventually(Duration::from_secs(6), || proxy
            .all_output()
            .contains("cannot be used; what was in force stays"))
        .await
    );
    let (status, body) = chat(&proxy).await;
    assert_eq!(status, 200, "the previous configuration stays: {body}");
}

fn via(proxy: &Tinyproxy, password: Option<&str>) -> Egress {
    Egress {
        https_proxy: Some(proxy.url()),
        no_proxy: vec![],
        basic_auth: password.map(|_| ProxyBasicAuth {
            username: tinyproxy::USER.into(),
            password: KeySource::Secret(secret("egress-proxy", "password")),
        }),
    }
}

fn password_file(password: &str) -> (PathBuf, String) {
    (
        PathBuf::from("secrets/egress-proxy/password"),
        format!("{password}\n"),
    )
}

#[tokio::test]
async fn upstreams_are_reached_through_a_connect_proxy_with_basic_auth() {
    let fake = Fake::start().await;
    let ca = Ca::new("internal-ca");
    let server = TlsUpstream::start(&ca.server(&["127.0.0.1"]), None, fake.addr).await;
    let Some(tiny) = Tinyproxy::start(server.addr.port()) else {
        return;
    };
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());

    let right = tinyproxy::PASSWORD;
    let files = [ca_file(&ca), password_file(right)];
    let proxy = start(
        internal(base.clone(), with_ca(), via(&tiny, Some(right))),
        &files,
        &[],
    );
    let (status, body) = chat(&proxy).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 1);
    let connect = format!("CONNECT 127.0.0.1:{}", server.addr.port());
    assert!(
        eventually(Duration::from_secs(2), || tiny.log().contains(&connect)).await,
        "the tunnel went through tinyproxy: {}",
        tiny.log()
    );
    assert!(
        !proxy.all_output().contains(right),
        "the password is never logged"
    );

    // A wrong password: a clear 502, not retried, and still never logged.
    let wrong = "not-the-password";
    let files = [ca_file(&ca), password_file(wrong)];
    let refused = start(
        internal(base.clone(), with_ca(), via(&tiny, Some(wrong))),
        &files,
        &[],
    );
    let (status, body) = chat(&refused).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "egress_proxy_auth_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("egress proxy refused the proxy's credentials (401) while connecting to upstream `internal`"),
        "{body}"
    );
    assert!(!refused.all_output().contains(wrong));
    assert_eq!(fake.ctl.count(), 1, "nothing passed the proxy");

    // The password's Secret changes: the next connections use it.
    let path = refused.secrets_dir.join("egress-proxy/password");
    std::fs::write(&path, format!("{right}\n")).unwrap();
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if chat(&refused).await.0 == 200 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the new password was not taken up: {}",
        refused.all_output()
    );

    // Without credentials; and to a port the proxy does not tunnel to.
    let anonymous = start(
        internal(base, with_ca(), via(&tiny, None)),
        &[ca_file(&ca)],
        &[],
    );
    let (status, body) = chat(&anonymous).await;
    assert_eq!(
        body["error"]["code"], "egress_proxy_auth_failed",
        "{status} {body}"
    );
    let elsewhere = TlsUpstream::start(&ca.server(&["127.0.0.1"]), None, fake.addr).await;
    let base = format!("https://127.0.0.1:{}/v1", elsewhere.addr.port());
    let files = [ca_file(&ca), password_file(right)];
    let blocked = start(
        internal(base, with_ca(), via(&tiny, Some(right))),
        &files,
        &[],
    );
    let (status, body) = chat(&blocked).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "egress_proxy_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("(it answered 403)"),
        "{body}"
    );
    assert_eq!(elsewhere.handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_egress_settings_https_proxy_and_no_proxy_are_read_from_the_environment() {
    let fake = Fake::start().await;
    let ca = Ca::new("internal-ca");
    let server = TlsUpstream::start(&ca.server(&["127.0.0.1"]), None, fake.addr).await;
    let Some(tiny) = Tinyproxy::start(server.addr.port()) else {
        return;
    };
    let base = format!("https://127.0.0.1:{}/v1", server.addr.port());
    let mut config = internal(base, with_ca(), Egress::default());
    config.egress = None;
    let with_credentials = tiny.url().replace(
        "http://",
        &format!("http://{}:{}@", tinyproxy::USER, tinyproxy::PASSWORD),
    );
    let connect = format!("CONNECT 127.0.0.1:{}", server.addr.port());

    let direct = start(
        config.clone(),
        &[ca_file(&ca)],
        &[
            ("HTTPS_PROXY", &with_credentials),
            ("NO_PROXY", "localhost,127.0.0.0/8"),
        ],
    );
    let (status, body) = chat(&direct).await;
    assert_eq!(status, 200, "{body}");
    assert!(!tiny.log().contains(&connect), "NO_PROXY lists it: direct");

    let proxied = start(
        config,
        &[ca_file(&ca)],
        &[("HTTPS_PROXY", &with_credentials), ("NO_PROXY", "")],
    );
    let (status, body) = chat(&proxied).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(2), || tiny.log().contains(&connect)).await,
        "{}",
        tiny.log()
    );
    assert!(!proxied.all_output().contains(tinyproxy::PASSWORD));
}
