//! The HTTP CONNECT handshake with the egress proxy (RFC 9110 §9.3.6): one request, one
//! answer, then the socket carries the upstream's TLS.
//!
//! hyper-util's `Tunnel` connector does the same but keeps only "407" from the answer; proxies
//! answer a wrong password with 401 (tinyproxy) and a refused destination with 403 or 502, and
//! the operator needs to know which, so the status is kept here.

use std::error::Error as StdError;

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::Service as _;

/// The longest answer head accepted from the proxy.
const MAX_HEAD: usize = 8 * 1024;

/// Why the egress proxy gave no tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressFailure {
    /// The proxy could not be reached (like a refused connection: worth retrying).
    Unreachable,
    /// The proxy answered 401 or 407: its credentials are missing or wrong.
    Auth(u16),
    /// The proxy answered, but not with a tunnel (a refused destination or port, its own
    /// failure to reach the upstream), or not in HTTP.
    Refused(Option<u16>),
}

/// A failed connection through the egress proxy, findable in the client's error chain.
#[derive(Debug, thiserror::Error)]
#[error("egress proxy {proxy}: {detail}")]
pub struct EgressError {
    /// What happened.
    pub failure: EgressFailure,
    /// The proxy's address (never with credentials).
    pub proxy: String,
    /// What it answered or what failed (never a credential: the request's header is not in it).
    pub detail: String,
}

/// Connects to `proxy` with `http` and asks it for a tunnel to `dst`'s host and port. How long
/// the proxy may take to answer is bounded by the caller's first-byte deadline.
pub async fn open(
    mut http: HttpConnector,
    proxy: Uri,
    auth: Option<HeaderValue>,
    dst: Uri,
) -> Result<TokioIo<TcpStream>, EgressError> {
    let fail = |failure, detail: String| EgressError {
        failure,
        proxy: proxy.to_string(),
        detail,
    };
    let host = dst.host().unwrap_or_default();
    let port = dst.port_u16().unwrap_or(443);
    let mut tcp = http
        .call(proxy.clone())
        .await
        .map_err(|e| fail(EgressFailure::Unreachable, chain(&e)))?
        .into_inner();
    let mut request =
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(auth) = &auth {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    tcp.write_all(&request)
        .await
        .map_err(|e| fail(EgressFailure::Unreachable, format!("sending CONNECT: {e}")))?;
    let head = read_head(&mut tcp)
        .await
        .map_err(|detail| fail(EgressFailure::Refused(None), detail))?;
    let status = status(&head).ok_or_else(|| {
        fail(
            EgressFailure::Refused(None),
            "the answer to CONNECT is not HTTP".into(),
        )
    })?;
    let line = head.lines().next().unwrap_or_default().to_owned();
    match status {
        200..=299 => Ok(TokioIo::new(tcp)),
        401 | 407 => Err(fail(
            EgressFailure::Auth(status),
            format!("answered `{line}`"),
        )),
        _ => Err(fail(
            EgressFailure::Refused(Some(status)),
            format!("answered `{line}`"),
        )),
    }
}

/// Reads the answer's head (to the blank line), byte by byte so that nothing of the tunnel
/// after it is consumed; at most [`MAX_HEAD`] bytes.
async fn read_head(tcp: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!(
                "the answer to CONNECT is longer than {MAX_HEAD} bytes"
            ));
        }
        let byte = tcp
            .read_u8()
            .await
            .map_err(|e| format!("the proxy closed or failed before answering CONNECT: {e}"))?;
        head.push(byte);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The status code of `HTTP/1.x NNN reason`.
fn status(head: &str) -> Option<u16> {
    let mut words = head.lines().next()?.split(' ');
    let version = words.next()?;
    let code = words.next()?;
    (version.starts_with("HTTP/1.") && code.len() == 3)
        .then(|| code.parse().ok())
        .flatten()
}

/// An error and its causes on one line.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_read_from_the_answer_line() {
        assert_eq!(status("HTTP/1.0 401 Unauthorized\r\n\r\n"), Some(401));
        assert_eq!(
            status("HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(200)
        );
        assert_eq!(status("SSH-2.0-OpenSSH\r\n\r\n"), None);
        assert_eq!(status("HTTP/1.1 20 x\r\n\r\n"), None);
    }
}
