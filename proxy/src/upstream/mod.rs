//! Upstream: one provider with its pooled HTTP clients (one per worker thread, rebuilt when
//! its TLS files change), injected key (replaceable while running), fixed headers and
//! timeouts; below it, connecting ([`connect`]: [`tls`], the [`egress`] proxy's [`tunnel`]),
//! one [`attempt`] at a time, retries and fallback ([`forward`]), and the breaker. The
//! answer's body is relayed by [`crate::answer`].

pub mod attempt;
pub mod breaker;
pub mod connect;
pub mod egress;
pub mod forward;
pub mod headers;
pub mod resume;
pub mod tls;
pub mod tunnel;

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use ai_api_proxy_config as config;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::error_answer::ProxyError;
use crate::start_error::StartError;
use breaker::Breaker;
use connect::{ConnectSpec, PooledClient};
use egress::EgressPlan;
use tls::TlsFiles;
use tunnel::{EgressError, EgressFailure};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Tells the pools which worker runs on this thread, so each connection's upstream
/// connections stay on its thread (see `listener`).
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The index of the worker running on this thread (0 outside workers).
fn worker_index() -> usize {
    WORKER.with(Cell::get)
}

/// Timeouts of one upstream, as standard durations.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// Sending the request until the first byte of the answer.
    pub first_byte: Duration,
    /// Longest pause between two chunks of the answer.
    pub idle: Duration,
    /// The whole exchange.
    pub total: Duration,
}

impl From<config::Timeouts> for Timeouts {
    fn from(t: config::Timeouts) -> Self {
        Self {
            connect: t.connect.get(),
            first_byte: t.first_byte.get(),
            idle: t.idle.get(),
            total: t.total.get(),
        }
    }
}

/// Why one attempt produced no response.
#[derive(Debug)]
pub enum SendError {
    /// The connection could not be made: safe to retry, the upstream saw nothing.
    Connect,
    /// Connected, but the exchange broke before an answer.
    Broken,
    /// The connection cannot be made for a reason a retry will not fix (TLS refused, the
    /// egress proxy refused): the next upstream is tried, and this is the answer if none works.
    Unusable(ProxyError),
}

/// An upstream, ready to take requests. Everything derived from configuration is computed
/// once here, not per request.
pub struct Upstream {
    /// Name for logs and metrics.
    pub name: Arc<str>,
    base: String,
    /// The API it speaks, which says how the key is sent.
    pub kind: config::UpstreamKind,
    /// The key as its header value (`Bearer <key>`, or the key alone for `x-api-key`),
    /// replaced when the key file changes.
    authorization: ArcSwap<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Timeouts in force.
    pub timeouts: Timeouts,
    /// One pooled client per worker thread, so a connection's tasks stay on one thread;
    /// replaced whole when the TLS files or the egress proxy's password change.
    clients: ArcSwap<Vec<PooledClient>>,
    /// How connections are made: TCP (maybe through the egress proxy), then TLS.
    connect: ConnectSpec,
    /// The files of the TLS configuration.
    tls: TlsFiles,
    /// The egress proxy's credentials in force.
    egress: Arc<EgressPlan>,
    workers: usize,
    /// This upstream's circuit breaker.
    pub breaker: Breaker,
    /// Host and port of `base`, for the spans' `server.address` and `server.port`.
    pub server: (Arc<str>, u16),
}

impl Upstream {
    /// Builds the upstream from its configuration and its key (already read from its source),
    /// reading its TLS files; connections go through `egress` when it says so.
    pub fn new(
        cfg: &config::Upstream,
        key: &str,
        timeouts: Timeouts,
        breaker: &config::CircuitBreaker,
        tls: TlsFiles,
        egress: &Arc<EgressPlan>,
        workers: usize,
    ) -> Result<Self, StartError> {
        let bad = |message: String| StartError::Upstream {
            upstream: cfg.name.clone(),
            message,
        };
        let authorization =
            credential(cfg.kind, key).map_err(|()| StartError::UpstreamKey(cfg.name.clone()))?;
        let selectors = [
            ("openai-organization", &cfg.organization),
            ("openai-project", &cfg.project),
        ];
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                selectors
                    .iter()
                    .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
            )
            .map(|(k, v)| {
                let name =
                    HeaderName::try_from(k).map_err(|_| bad(format!("bad header name `{k}`")))?;
                let value = HeaderValue::try_from(v)
                    .map_err(|_| bad(format!("bad value for header `{k}`")))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, StartError>>()?;
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        base.parse::<Uri>()
            .map_err(|e| bad(format!("base_url is not a URL: {e}")))?;
        let (_, host, port) = config::upstream_endpoint(&base)
            .ok_or_else(|| bad("base_url needs an http or https scheme".into()))?;
        let server_name = cfg
            .tls
            .as_ref()
            .and_then(|t| t.server_name.as_deref())
            .map(tls::server_name)
            .transpose()
            .map_err(bad)?;
        let connect = ConnectSpec {
            timeout: timeouts.connect,
            proxy: egress.proxy_for(&cfg.base_url),
            server_name,
        };
        let tls_config = tls.load().map_err(|e| bad(format!("TLS: {e}")))?;
        let workers = workers.max(1);
        let clients = connect.clients(&tls_config, egress.authorization(), workers);
        Ok(Self {
            name: Arc::from(cfg.name.as_str()),
            base,
            kind: cfg.kind,
            authorization: ArcSwap::from_pointee(authorization),
            headers,
            timeouts,
            clients: ArcSwap::from_pointee(clients),
            connect,
            tls,
            egress: egress.clone(),
            workers,
            breaker: Breaker::new(breaker.failure_threshold, breaker.open_for.get()),
            server: (Arc::from(host), port),
        })
    }

    /// The egress proxy this upstream is reached through, if any (for the start-up log).
    pub fn egress_proxy(&self) -> Option<&Uri> {
        self.connect.proxy.as_ref()
    }

    /// The TLS files to watch.
    pub fn tls_files(&self) -> &TlsFiles {
        &self.tls
    }

    /// Reads the TLS files again and replaces the clients (new connections use the new
    /// configuration; open ones finish what they carry). On error the clients in force stay.
    pub fn reconnect(&self) -> Result<(), String> {
        let tls = self.tls.load()?;
        let clients = self
            .connect
            .clients(&tls, self.egress.authorization(), self.workers);
        self.clients.store(Arc::new(clients));
        Ok(())
    }

    /// Replaces the key (the key file changed); the old one stays if the new one is unusable.
    pub fn set_key(&self, key: &str) -> Result<(), &'static str> {
        let value = credential(self.kind, key)
            .map_err(|()| "the key contains characters not allowed in a header")?;
        self.authorization.store(Arc::new(value));
        Ok(())
    }

    /// The upstream request for a client request: `suffix` is the path after `/v1` plus the
    /// query. Only allowed client headers go along ([`headers`], by kind); then this
    /// upstream's fixed headers and its key (and, to Anthropic, `anthropic-version` when the
    /// client sent none: a request translated from OpenAI's API has none).
    pub fn build_request(
        &self,
        method: &Method,
        suffix: &str,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
        let mut uri = String::with_capacity(self.base.len() + suffix.len());
        uri.push_str(&self.base);
        uri.push_str(suffix);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|_| ProxyError::Internal)?;
        let headers = request.headers_mut();
        headers.reserve(client_headers.len() + self.headers.len() + 1);
        headers::forward_request(self.kind, client_headers, headers);
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let key = HeaderValue::clone(&self.authorization.load());
        match self.kind {
            config::UpstreamKind::Openai => {
                headers.insert(header::AUTHORIZATION, key);
            }
            config::UpstreamKind::Anthropic => {
                headers.insert(headers::X_API_KEY, key);
                if !headers.contains_key(headers::ANTHROPIC_VERSION) {
                    headers.insert(
                        headers::ANTHROPIC_VERSION,
                        HeaderValue::from_static(headers::DEFAULT_ANTHROPIC_VERSION),
                    );
                }
            }
        }
        Ok(request)
    }

    /// Sends one request on the pooled client (connect timeout applies; others are the
    /// caller's).
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        let client = {
            let clients = self.clients.load();
            let index = worker_index() % clients.len().max(1);
            match clients.get(index) {
                Some(c) => c.clone(),
                None => return Err(SendError::Broken),
            }
        };
        client.request(request).await.map_err(|e| self.failure(&e))
    }

    /// What a failed exchange was: TLS and egress proxy refusals are named (and logged with
    /// their cause, which may name the certificate's problem but never a credential).
    fn failure(&self, e: &hyper_util::client::legacy::Error) -> SendError {
        if let Some(tls) = connect::find::<rustls::Error>(e) {
            tracing::error!(upstream = %self.name, error = %tls, "TLS with the upstream failed");
            return SendError::Unusable(ProxyError::UpstreamTls {
                upstream: self.name.clone(),
                reason: tls::client_reason(tls),
            });
        }
        if let Some(egress) = connect::find::<EgressError>(e) {
            tracing::error!(
                upstream = %self.name,
                error = %egress,
                "the egress proxy gave no tunnel to the upstream"
            );
            let upstream = self.name.clone();
            return match egress.failure {
                EgressFailure::Unreachable => SendError::Connect,
                EgressFailure::Auth(status) => {
                    SendError::Unusable(ProxyError::EgressProxyAuth { upstream, status })
                }
                EgressFailure::Refused(status) => {
                    SendError::Unusable(ProxyError::EgressProxy { upstream, status })
                }
            };
        }
        if e.is_connect() {
            SendError::Connect
        } else {
            SendError::Broken
        }
    }
}

/// The key as a sensitive header value (never printed by `Debug`): `Bearer <key>` for
/// `Authorization`, the key alone for Anthropic's `x-api-key`.
fn credential(kind: config::UpstreamKind, key: &str) -> Result<HeaderValue, ()> {
    let text = match kind {
        config::UpstreamKind::Openai => format!("Bearer {key}"),
        config::UpstreamKind::Anthropic => key.to_owned(),
    };
    let mut value = HeaderValue::try_from(text).map_err(|_| ())?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_api_proxy_config::KeySource;

    #[tokio::test]
    async fn injects_key_and_drops_client_credentials() {
        let cfg = config::Upstream {
            name: "main".into(),
            base_url: "https://api.example.com/v1/".into(),
            api_key: KeySource::Env("X".into()),
            headers: [("x-team".to_owned(), "blue".to_owned())].into(),
            timeouts: None,
            organization: Some("org-ours".into()),
            project: None,
            tls: None,
            kind: config::UpstreamKind::Openai,
        };
        let up = Upstream::new(
            &cfg,
            "sk-up",
            config::Timeouts::default().into(),
            &config::CircuitBreaker::default(),
            TlsFiles::default(),
            &Arc::new(EgressPlan::new(Some(&config::Egress::default()), None).unwrap()),
            1,
        )
        .unwrap();
        let mut client = HeaderMap::new();
        client.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-client"),
        );
        client.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        client.insert(
            "openai-organization",
            HeaderValue::from_static("org-theirs"),
        );
        client.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let req = up
            .build_request(
                &Method::POST,
                "/chat/completions?x=1",
                &client,
                Bytes::new(),
            )
            .unwrap();
        assert_eq!(req.uri(), "https://api.example.com/v1/chat/completions?x=1");
        assert_eq!(req.headers()[header::AUTHORIZATION], "Bearer sk-up");
        assert!(req.headers()[header::AUTHORIZATION].is_sensitive());
        assert_eq!(req.headers()["x-team"], "blue");
        assert_eq!(req.headers()[header::CONTENT_TYPE], "application/json");
        assert!(req.headers().get(header::COOKIE).is_none());
        assert_eq!(req.headers()["openai-organization"], "org-ours");
        up.set_key("sk-rotated").unwrap();
        assert!(up.set_key("bad\nkey").is_err());
        let req = up
            .build_request(&Method::GET, "/models", &client, Bytes::new())
            .unwrap();
        assert_eq!(req.headers()[header::AUTHORIZATION], "Bearer sk-rotated");
    }

    #[tokio::test]
    async fn an_anthropic_upstream_gets_its_key_in_x_api_key_and_a_version() {
        let cfg = config::Upstream {
            name: "claude".into(),
            base_url: "https://api.anthropic.com/v1".into(),
            api_key: KeySource::Env("X".into()),
            headers: Default::default(),
            timeouts: None,
            organization: None,
            project: None,
            tls: None,
            kind: config::UpstreamKind::Anthropic,
        };
        let up = Upstream::new(
            &cfg,
            "sk-ant-up",
            config::Timeouts::default().into(),
            &config::CircuitBreaker::default(),
            TlsFiles::default(),
            &Arc::new(EgressPlan::new(Some(&config::Egress::default()), None).unwrap()),
            1,
        )
        .unwrap();
        let mut client = HeaderMap::new();
        client.insert("x-api-key", HeaderValue::from_static("sk-client"));
        client.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-client"),
        );
        client.insert("anthropic-beta", HeaderValue::from_static("tools-2024"));
        client.insert("openai-beta", HeaderValue::from_static("assistants=v2"));
        let req = up
            .build_request(&Method::POST, "/messages", &client, Bytes::new())
            .unwrap();
        assert_eq!(req.uri(), "https://api.anthropic.com/v1/messages");
        assert_eq!(req.headers()["x-api-key"], "sk-ant-up");
        assert!(req.headers()["x-api-key"].is_sensitive());
        assert!(req.headers().get(header::AUTHORIZATION).is_none());
        assert_eq!(req.headers()["anthropic-version"], "2023-06-01");
        assert_eq!(req.headers()["anthropic-beta"], "tools-2024");
        assert!(req.headers().get("openai-beta").is_none());
        client.insert("anthropic-version", HeaderValue::from_static("2099-01-01"));
        let req = up
            .build_request(&Method::POST, "/messages", &client, Bytes::new())
            .unwrap();
        assert_eq!(req.headers()["anthropic-version"], "2099-01-01");
    }
}
