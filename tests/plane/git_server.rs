//! A real Git server over HTTP on 127.0.0.1 for the GitOps tests: git's own `git http-backend`
//! (the smart HTTP protocol as forges serve it) behind a minimal CGI runner, one request per
//! connection. Only the CGI glue is ours; every byte of the Git protocol is git's. Repositories
//! are bare folders under `root`; `http://127.0.0.1:<port>/<name>.git` serves `<root>/<name>.git`.
//! Read-only (http-backend refuses pushes without an authenticated user): tests commit to the
//! bare repository through a local clone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Largest request head and body we read (a fetch's negotiation is a few KiB).
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A running server; it stops with the test binary.
pub struct GitServer {
    base: String,
    root: PathBuf,
}

impl GitServer {
    /// Serves the bare repositories under `root` (created if missing).
    pub fn start(root: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("git server: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let served = root.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = served.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &root);
                });
            }
        });
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            root: root.to_owned(),
        })
    }

    /// The URL of repository `name` (`<name>.git` under the root).
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.base)
    }

    /// The bare repository folder of `name`.
    pub fn repo(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.git"))
    }
}

/// One request: parse the head, run `git http-backend` with the CGI variables, relay its answer.
fn serve(stream: TcpStream, root: &Path) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut head = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
        head.extend_from_slice(line.as_bytes());
        if n == 0 || head.len() > MAX_HEAD {
            return answer(&stream, "400 Bad Request", "bad request head\n");
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let Some((method, target)) = lines.first().and_then(|l| {
        let mut parts = l.split(' ');
        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
    }) else {
        return answer(&stream, "400 Bad Request", "bad request line\n");
    };
    let header = |name: &str| {
        lines[1..].iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else {
        let len: usize = header("content-length")
            .map(|v| v.parse().map_err(|_| "bad content-length".to_owned()))
            .transpose()?
            .unwrap_or(0);
        if len > MAX_BODY {
            return answer(&stream, "413 Payload Too Large", "too large\n");
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        body
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (var, name) in [
        ("CONTENT_TYPE", "content-type"),
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ("GIT_PROTOCOL", "git-protocol"),
    ] {
        if let Some(value) = header(name) {
            cgi.env(var, value);
        }
    }
    let mut child = cgi.spawn().map_err(|e| format!("git http-backend: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    relay(&stream, &output.stdout)
}

/// Turns the CGI answer (headers, `Status:`, a blank line, the body) into an HTTP response.
fn relay(mut stream: &TcpStream, cgi: &[u8]) -> Result<(), String> {
    let split = cgi
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            cgi.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((end, start)) = split else {
        return answer(
            stream,
            "502 Bad Gateway",
            "git http-backend gave no headers\n",
        );
    };
    let head = String::from_utf8_lossy(&cgi[..end]);
    let mut status = "200 OK".to_owned();
    let mut out = String::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some(_) => out.push_str(&format!("{}\r\n", line.trim_end())),
            None => {}
        }
    }
    let body = &cgi[start..];
    let head = format!(
        "HTTP/1.1 {status}\r\n{out}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| e.to_string())
}

fn answer(mut stream: &TcpStream, status: &str, text: &str) -> Result<(), String> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    stream
        .write_all(response.as_bytes())
        .map_err(|e| e.to_string())
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| "bad chunk size".to_owned())?;
        if body.len() + size > MAX_BODY {
            return Err("body too large".into());
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
