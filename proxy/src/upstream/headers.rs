//! Header policy between clients and upstreams: an explicit allowlist of what a client's
//! request may carry to an upstream (by the upstream's kind: `openai-beta` to OpenAI,
//! `anthropic-version` and `anthropic-beta` to Anthropic), and what an upstream's answer may
//! not carry back.
//!
//! Never forwarded: client credentials (`authorization`, `x-api-key`, `api-key`), cookies,
//! `OpenAI-Organization` / `OpenAI-Project` (per upstream from configuration instead),
//! hop-by-hop headers, and `accept-encoding` (answers stay uncompressed so usage can be read).
//! Never passed back: `set-cookie`, hop-by-hop headers, the upstream's organization and
//! project; the upstream's `x-request-id` goes out as `x-upstream-request-id`, so the client
//! keeps the proxy's id.

use ai_api_proxy_config::UpstreamKind;
use http::header::{self, HeaderMap, HeaderName};

use crate::observability::facts::X_REQUEST_ID;

/// Anthropic's key header (the upstream's key goes there; a client's never goes on).
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// Anthropic's API version header.
pub const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
/// The version sent to an Anthropic upstream when the client named none (the current one).
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The request headers a client may send to an upstream of any kind.
const FORWARDED: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::USER_AGENT,
    HeaderName::from_static("idempotency-key"),
    X_REQUEST_ID,
];

/// And those that only mean something to one kind.
const FORWARDED_OPENAI: [HeaderName; 1] = [HeaderName::from_static("openai-beta")];
const FORWARDED_ANTHROPIC: [HeaderName; 2] =
    [ANTHROPIC_VERSION, HeaderName::from_static("anthropic-beta")];

/// The upstream's request id, renamed on the way back.
pub const X_UPSTREAM_REQUEST_ID: HeaderName = HeaderName::from_static("x-upstream-request-id");

/// Response headers an upstream may not pass back.
const DROPPED_RESPONSE: [HeaderName; 9] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
    header::SET_COOKIE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("openai-organization"),
    HeaderName::from_static("openai-project"),
];

/// Copies the headers of a client request an upstream of `kind` may get into `out`.
pub fn forward_request(kind: UpstreamKind, client: &HeaderMap, out: &mut HeaderMap) {
    let by_kind: &[HeaderName] = match kind {
        UpstreamKind::Openai => &FORWARDED_OPENAI,
        UpstreamKind::Anthropic => &FORWARDED_ANTHROPIC,
    };
    for name in FORWARDED.iter().chain(by_kind) {
        for value in client.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
}

/// Cleans an upstream's response headers before they reach the client.
pub fn clean_response(headers: &mut HeaderMap) {
    for name in &DROPPED_RESPONSE {
        headers.remove(name);
    }
    if let Some(id) = headers.remove(X_REQUEST_ID) {
        headers.insert(X_UPSTREAM_REQUEST_ID, id);
    }
}

/// Is this a header value a client may never see from an upstream?
#[cfg(test)]
fn dropped(name: &str) -> bool {
    DROPPED_RESPONSE.iter().any(|h| h == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_allowed_request_headers_go_out() {
        let mut client = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer sk-client"),
            ("x-api-key", "sk-client"),
            ("api-key", "sk-client"),
            ("cookie", "a=b"),
            ("openai-organization", "org-client"),
            ("openai-project", "proj_client"),
            ("accept-encoding", "gzip"),
            ("x-forwarded-for", "10.0.0.1"),
            ("content-type", "application/json"),
            ("openai-beta", "assistants=v2"),
            ("x-request-id", "abc"),
        ] {
            client.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        client.append("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let mut out = HeaderMap::new();
        forward_request(UpstreamKind::Openai, &client, &mut out);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "openai-beta", "x-request-id"]);
        let mut out = HeaderMap::new();
        forward_request(UpstreamKind::Anthropic, &client, &mut out);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["anthropic-version", "content-type", "x-request-id"]);
    }

    #[test]
    fn cookies_and_upstream_ids_do_not_come_back() {
        let mut h = HeaderMap::new();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("s=1"));
        h.insert(X_REQUEST_ID, HeaderValue::from_static("req_up"));
        h.insert("openai-organization", HeaderValue::from_static("org-ours"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        clean_response(&mut h);
        assert!(dropped("set-cookie"));
        assert!(h.get(header::SET_COOKIE).is_none());
        assert!(h.get("openai-organization").is_none());
        assert!(h.get(X_REQUEST_ID).is_none());
        assert_eq!(h[X_UPSTREAM_REQUEST_ID], "req_up");
        assert_eq!(h[header::CONTENT_TYPE], "text/event-stream");
    }
}
