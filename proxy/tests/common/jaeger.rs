//! A real Jaeger (v1 all-in-one, built by `e2e/build-jaeger.sh` from the Go modules) for the
//! trace tests: OTLP in over HTTP, spans out through its query API, all on free 127.0.0.1
//! ports, in-memory storage, killed when dropped. Without the binary, [`Jaeger::start`] says
//! why and returns `None` (the test skips); with `E2E_JAEGER_BIN` set (CI), that is a failure.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: each test uses a part; a failed setup must abort the test"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Jaeger.
pub struct Jaeger {
    child: Child,
    /// OTLP/HTTP receiver port (`/v1/traces`).
    pub otlp_http: u16,
    /// Query API port (`/api/traces/<id>`).
    pub query: u16,
    log: PathBuf,
}

/// The binary: `E2E_JAEGER_BIN`, else what `e2e/build-jaeger.sh --cached` built.
fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("E2E_JAEGER_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "E2E_JAEGER_BIN is set but {} is not a file",
            bin.display()
        );
        return Some(bin);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/build-jaeger.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--cached")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Jaeger {
    /// Starts Jaeger and waits until it is healthy, or explains why it cannot and returns
    /// `None`.
    pub fn start() -> Option<Self> {
        let Some(bin) = binary() else {
            eprintln!(
                "SKIPPED: Jaeger is not built (bash e2e/build-jaeger.sh builds it; needs Go)"
            );
            return None;
        };
        // A port taken between picking and binding makes Jaeger exit: pick again.
        for _ in 0..3 {
            if let Some(j) = Self::try_start(&bin) {
                return Some(j);
            }
        }
        panic!(
            "Jaeger ({}) did not become healthy three times",
            bin.display()
        );
    }

    fn try_start(bin: &Path) -> Option<Self> {
        let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
        let hp = |p: u16| format!("127.0.0.1:{p}");
        let log = std::env::temp_dir().join(format!(
            "jaeger-test-{}-{}.log",
            std::process::id(),
            ports[0]
        ));
        let file = std::fs::File::create(&log).expect("jaeger log file");
        let child = Command::new(bin)
            .env("SPAN_STORAGE_TYPE", "memory")
            .arg(format!("--admin.http.host-port={}", hp(ports[0])))
            .arg(format!(
                "--collector.grpc-server.host-port={}",
                hp(ports[1])
            ))
            .arg(format!(
                "--collector.http-server.host-port={}",
                hp(ports[2])
            ))
            .arg(format!("--collector.otlp.grpc.host-port={}", hp(ports[3])))
            .arg(format!("--collector.otlp.http.host-port={}", hp(ports[4])))
            .arg(format!("--query.grpc-server.host-port={}", hp(ports[5])))
            .arg(format!("--query.http-server.host-port={}", hp(ports[6])))
            .arg("--memory.max-traces=10000")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start jaeger");
        let mut j = Self {
            child,
            otlp_http: ports[4],
            query: ports[6],
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if j.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            // The admin port answers 200 once every server is up; the query API then answers.
            if http_get(ports[0], "/").is_some_and(|(status, _)| status == 200)
                && j.get("/api/services").is_some()
            {
                return Some(j);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("jaeger log: {}", j.log_text());
        None
    }

    /// The OTLP/HTTP base URL, as `telemetry.otlp.endpoint` takes it.
    pub fn otlp_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_http)
    }

    /// `GET` on the query API: the body of a 200 answer, parsed.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let (status, body) = http_get(self.query, path)?;
        (status == 200).then(|| serde_json::from_slice(&body).ok())?
    }

    /// The spans of trace `id` once there are at least `count`, polled for up to `within`.
    pub fn wait_for_spans(
        &self,
        trace_id: &str,
        count: usize,
        within: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        let mut spans = Vec::new();
        while Instant::now() < deadline {
            if let Some(v) = self.get(&format!("/api/traces/{trace_id}")) {
                spans = v["data"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if spans.len() >= count {
                    return spans;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "trace {trace_id}: {} span(s) in Jaeger after {within:?}, expected {count}: {spans:#?}",
            spans.len()
        );
    }

    /// What Jaeger logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A blocking HTTP/1.1 GET on 127.0.0.1 (`Connection: close`): status and body.
fn http_get(port: u16, path: &str) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = buf[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body)?;
    }
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).ok()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
