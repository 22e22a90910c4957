//! Test harness: temporary secrets, the real proxy binary on 127.0.0.1:0, and clients.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(missing_docs, reason = "test harness")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failed setup must abort the test"
)]

pub mod fake;
pub mod jaeger;
pub mod sdk;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ai_api_proxy_config::{
    ClientAuth, Duration as D, KeySource, ModelRoute, ProxyConfig, SecretRef, Timeouts, Upstream,
};
use sha2::{Digest, Sha256};

pub const CLIENT_KEY: &str = "sk-client-test-1";
pub const UPSTREAM_KEY: &str = "sk-upstream-secret-xyz";

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ai-api-proxy-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn upstream_secret() -> KeySource {
    KeySource::Secret(SecretRef {
        name: "upstream".into(),
        key: "api-key".into(),
    })
}

/// Short timeouts so every failure test ends in well under a second or two.
pub fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: D::from_millis(300),
        first_byte: D::from_millis(800),
        idle: D::from_millis(400),
        total: D::from_secs(5),
    }
}

/// A configuration with the given upstreams (name, base URL) and models (name, upstreams).
pub fn config(upstreams: &[(&str, String)], models: &[(&str, &[&str])]) -> ProxyConfig {
    let mut c = ProxyConfig {
        port: 8080,
        timeouts: short_timeouts(),
        auth: Some(ClientAuth::ApiKeys {
            keys: KeySource::Secret(SecretRef {
                name: "client-keys".into(),
                key: "keys".into(),
            }),
        }),
        ..ProxyConfig::default()
    };
    c.retry.max_attempts = 3;
    c.retry.initial_backoff = D::from_millis(20);
    c.retry.max_backoff = D::from_millis(100);
    c.circuit_breaker.failure_threshold = 3;
    c.circuit_breaker.open_for = D::from_millis(500);
    c.shutdown.grace_delay = D::from_millis(300);
    c.shutdown.drain_timeout = D::from_secs(5);
    c.rate_limit.requests_per_second = 1000;
    c.rate_limit.burst = 1000;
    c.upstreams = upstreams
        .iter()
        .map(|(name, url)| Upstream {
            name: (*name).into(),
            base_url: url.clone(),
            api_key: upstream_secret(),
            headers: Default::default(),
            timeouts: None,
            organization: None,
            project: None,
            tls: None,
            kind: Default::default(),
        })
        .collect();
    c.models = models
        .iter()
        .map(|(name, ups)| ModelRoute {
            name: (*name).into(),
            upstreams: ups.iter().map(|u| (*u).into()).collect(),
            on_stream_failure: Default::default(),
        })
        .collect();
    c
}

/// Writes every secret file `config` references under `dir` (client keys file with
/// `CLIENT_KEY` as client `team-a`; every other secret holds `UPSTREAM_KEY`).
pub fn write_secrets(config: &ProxyConfig, dir: &Path) {
    let client_keys = match &config.auth {
        Some(ClientAuth::ApiKeys {
            keys: KeySource::Secret(r),
        }) => Some(r.clone()),
        _ => None,
    };
    for r in config.secret_refs() {
        let path = r.path(dir);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let value = if Some(r) == client_keys.as_ref() {
            format!(
                "# id:sha256\nteam-a:{}\nteam-b:{}\n",
                sha256_hex(CLIENT_KEY),
                sha256_hex("sk-client-test-2")
            )
        } else {
            format!("{UPSTREAM_KEY}\n")
        };
        std::fs::write(path, value).unwrap();
    }
}

/// The real proxy binary, running.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener: health, readiness, metrics.
    pub admin: SocketAddr,
    /// Where the secrets live (tests rewrite them to rotate keys).
    pub secrets_dir: PathBuf,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

impl Proxy {
    /// Writes `config` (secrets_dir pointed at a temp dir) and starts the binary on port 0.
    pub fn start(mut config: ProxyConfig) -> Self {
        let dir = TempDir::new();
        config.secrets_dir = dir.0.join("secrets");
        write_secrets(&config, &config.secrets_dir);
        let path = dir.0.join("proxy.json");
        std::fs::write(&path, config.to_json()).unwrap();
        Self::start_file(&path, dir, &[])
    }

    /// Starts the binary on an existing config file.
    pub fn start_file(path: &Path, dir: TempDir, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ai-api-proxy"));
        cmd.arg("--config")
            .arg(path)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send((
                        v["addr"].as_str().unwrap_or_default().to_owned(),
                        v["admin_addr"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, admin) = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "proxy did not log its address; output: {:?}",
                    logs.lock().unwrap()
                );
            }
        };
        Self {
            child,
            addr,
            admin,
            secrets_dir: dir.0.join("secrets"),
            logs,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Access-log lines (JSON) written so far.
    pub fn access_logs(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "access")
            .collect()
    }

    /// Every output line, joined (to check nothing secret was logged).
    pub fn all_output(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until an access-log line satisfies `pred`.
    pub async fn wait_log(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(v) = self.access_logs().into_iter().find(|v| pred(v)) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching access log line in {:?}", self.access_logs());
    }

    /// Where Prometheus scrapes the proxy: the one place that knows the metrics port and path.
    pub fn metrics_url(&self) -> String {
        self.admin_url("/metrics")
    }

    /// The metrics exposition, as a scraper gets it.
    pub async fn metrics_text(&self) -> String {
        let r = http().get(self.metrics_url()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", self.metrics_url());
        r.text().await.unwrap()
    }

    /// One metric sample's value from the metrics exposition (0 if absent).
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP client (no retries, short timeout).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An OpenAI SDK client pointed at the proxy.
pub fn openai(
    proxy: &Proxy,
    key: &str,
) -> async_openai::Client<async_openai::config::OpenAIConfig> {
    let cfg = async_openai::config::OpenAIConfig::new()
        .with_api_base(proxy.url("/v1"))
        .with_api_key(key);
    async_openai::Client::with_config(cfg)
}

/// The one chat-completions request helper: `POST /v1/chat/completions` with the client key;
/// add a body (`.json(&chat_body("m", false))`) and headers, then `.send()` or [`answer`].
pub fn chat(proxy: &Proxy) -> reqwest::RequestBuilder {
    http()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
}

/// Sends `request`; returns status, body text and headers.
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, String, reqwest::header::HeaderMap) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

/// POSTs a raw body; returns status, body text and headers.
pub async fn post_raw(
    proxy: &Proxy,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut rb = http()
        .post(proxy.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    answer(rb).await
}

/// POSTs `body` as JSON to `/v1/chat/completions{query}` with the client key.
pub async fn stream(proxy: &Proxy, query: &str, body: serde_json::Value) -> reqwest::Response {
    http()
        .post(proxy.url(&format!("/v1/chat/completions{query}")))
        .bearer_auth(CLIENT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A small chat body.
pub fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "a secret prompt"}],
        "stream": stream,
    })
}

/// Reads an SSE response, returning each complete event's data with its arrival time.
pub async fn sse_events(response: reqwest::Response) -> (Vec<(Instant, String)>, Option<String>) {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let mut error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n");
            if !data.is_empty() {
                events.push((Instant::now(), data));
            }
        }
    }
    (events, error)
}

/// Polls `cond` every 10 ms for at most `within`.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Reads from a raw connection until the peer closes it or `within` passes; returns what was
/// read and whether the peer closed.
pub async fn read_to_close(s: &mut tokio::net::TcpStream, within: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// A raw connection to the proxy's API port.
pub async fn raw(proxy: &Proxy) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(proxy.addr).await.unwrap()
}

/// Writes `bytes` on a raw connection.
pub async fn send(s: &mut tokio::net::TcpStream, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    s.write_all(bytes).await.unwrap();
}
