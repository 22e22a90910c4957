//! One upstream provider: its pooled HTTP client, injected key, extra headers and timeouts.

use std::sync::Arc;
use std::time::Duration;

use ai_api_proxy_config as config;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::breaker::Breaker;
use crate::error::ProxyError;
use crate::settings::StartError;

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
}

/// An upstream, ready to take requests. Everything derived from configuration is computed
/// once here, not per request.
pub struct Upstream {
    /// Name for logs and metrics.
    pub name: Arc<str>,
    base: String,
    authorization: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Timeouts in force.
    pub timeouts: Timeouts,
    /// One pooled client per worker thread, so a connection's tasks stay on one thread.
    clients: Vec<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
    /// This upstream's circuit breaker.
    pub breaker: Breaker,
}

/// Request headers never forwarded: hop-by-hop headers, the client's credentials, and
/// `accept-encoding` (answers stay uncompressed so usage can be read from them).
const DROPPED_REQUEST_HEADERS: [HeaderName; 12] = [
    header::HOST,
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
    header::COOKIE,
    header::ACCEPT_ENCODING,
    HeaderName::from_static("keep-alive"),
];

/// Response headers never passed back: hop-by-hop ones.
pub const DROPPED_RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
    HeaderName::from_static("keep-alive"),
];

impl Upstream {
    /// Builds the upstream from its configuration and its key (already read from its source).
    pub fn new(
        cfg: &config::Upstream,
        key: &str,
        timeouts: Timeouts,
        breaker: &config::CircuitBreaker,
        workers: usize,
    ) -> Result<Self, StartError> {
        let bad = |message: String| StartError::Upstream {
            upstream: cfg.name.clone(),
            message,
        };
        let mut authorization = HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| bad("the API key contains characters not allowed in a header".into()))?;
        authorization.set_sensitive(true);
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::try_from(k.as_str())
                    .map_err(|_| bad(format!("bad header name `{k}`")))?;
                let value = HeaderValue::try_from(v.as_str())
                    .map_err(|_| bad(format!("bad value for header `{k}`")))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, StartError>>()?;
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        base.parse::<Uri>()
            .map_err(|e| bad(format!("base_url is not a URL: {e}")))?;

        let mut clients = Vec::with_capacity(workers.max(1));
        for _ in 0..workers.max(1) {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeouts.connect));
            http.set_keepalive(Some(Duration::from_secs(60)));
            let https = HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| bad(format!("TLS setup failed: {e}")))?
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            clients.push(
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    // Enough for steady traffic; after a burst of streams the rest close
                    // instead of holding their buffers.
                    .pool_max_idle_per_host(64)
                    .build(https),
            );
        }
        Ok(Self {
            name: Arc::from(cfg.name.as_str()),
            base,
            authorization,
            headers,
            timeouts,
            clients,
            breaker: Breaker::new(breaker.failure_threshold, breaker.open_for.get()),
        })
    }

    /// The upstream request for a client request: `suffix` is the path after `/v1` plus the
    /// query. The client's `Authorization` is replaced by this upstream's key.
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
        for (name, value) in client_headers {
            if !DROPPED_REQUEST_HEADERS.contains(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        Ok(request)
    }

    /// Sends one request on the pooled client (connect timeout applies; others are the
    /// caller's).
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        let index = crate::runtime::worker_index() % self.clients.len().max(1);
        let Some(client) = self.clients.get(index) else {
            return Err(SendError::Broken);
        };
        client.request(request).await.map_err(|e| {
            if e.is_connect() {
                SendError::Connect
            } else {
                SendError::Broken
            }
        })
    }
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
        };
        let up = Upstream::new(
            &cfg,
            "sk-up",
            config::Timeouts::default().into(),
            &config::CircuitBreaker::default(),
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
    }
}
