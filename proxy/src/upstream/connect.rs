//! Connections to one upstream: TCP directly or through the egress proxy's CONNECT tunnel,
//! then TLS with the upstream's rustls configuration; the pooled clients built on them (one
//! per worker); and what a failed exchange was, read from its error chain.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::tunnel;

/// A pooled client towards one upstream.
pub type PooledClient = Client<HttpsConnector<Route>, Full<Bytes>>;

/// How the TCP connection under TLS is made.
#[derive(Clone)]
pub enum Route {
    /// To the upstream itself.
    Direct(HttpConnector),
    /// To the egress proxy, then `CONNECT host:port` through it ([`tunnel`]).
    Tunnel {
        /// Connects to the proxy.
        http: HttpConnector,
        /// The proxy's address.
        proxy: Uri,
        /// `Proxy-Authorization`, if any.
        auth: Option<HeaderValue>,
    },
}

impl tower::Service<Uri> for Route {
    type Response = TokioIo<TcpStream>;
    type Error = Box<dyn StdError + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Direct(c) | Self::Tunnel { http: c, .. } => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Self::Direct(c) => {
                let connecting = c.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Self::Tunnel { http, proxy, auth } => {
                let opening = tunnel::open(http.clone(), proxy.clone(), auth.clone(), dst);
                Box::pin(async move { opening.await.map_err(Into::into) })
            }
        }
    }
}

/// What a client needs to open connections to one upstream.
#[derive(Clone)]
pub struct ConnectSpec {
    /// TCP connect timeout (to the upstream, or to the egress proxy).
    pub timeout: Duration,
    /// The egress proxy to tunnel through, if any.
    pub proxy: Option<Uri>,
    /// The name verified instead of the URL's host.
    pub server_name: Option<ServerName<'static>>,
}

impl ConnectSpec {
    /// One pooled client per worker, with `tls` and the proxy credentials `auth`.
    pub fn clients(
        &self,
        tls: &Arc<ClientConfig>,
        auth: Option<HeaderValue>,
        workers: usize,
    ) -> Vec<PooledClient> {
        (0..workers.max(1))
            .map(|_| self.client(tls, auth.clone()))
            .collect()
    }

    fn client(&self, tls: &Arc<ClientConfig>, auth: Option<HeaderValue>) -> PooledClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let route = match &self.proxy {
            None => Route::Direct(http),
            Some(proxy) => Route::Tunnel {
                http,
                proxy: proxy.clone(),
                auth,
            },
        };
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(ClientConfig::clone(tls))
            .https_or_http();
        let builder = match &self.server_name {
            Some(name) => {
                builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
            }
            None => builder,
        };
        let https = builder.enable_http1().enable_http2().wrap_connector(route);
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // Enough for steady traffic; after a burst of streams the rest close instead of
            // holding their buffers.
            .pool_max_idle_per_host(64)
            .build(https)
    }
}

/// The first `T` in `e`'s chain, looking inside `io::Error`s too (their `source` skips the
/// error they wrap, which is where rustls puts its own).
pub fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(t) = inner.and_then(|inner| find::<T>(inner)) {
            return Some(t);
        }
        next = e.source();
    }
    None
}
