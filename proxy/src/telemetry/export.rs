//! The OTLP/HTTP exporter and its transport. The SDK's batch processor exports from a plain
//! thread of its own, and the proxy's runtimes serve requests, so the transport (hyper, with
//! rustls for an `https` collector) runs on a small runtime on one more thread, `otlp-export`;
//! the export waits there, never on a request's thread.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::Error;

/// Connection setup to the collector, at most (the export as a whole has its own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how long: the settings of one exporter.
#[derive(Clone, Debug)]
pub struct Target {
    /// The traces URL (`…/v1/traces`); `None`: the standard variables' (or the SDK default).
    pub url: Option<String>,
    /// The longest one export may take.
    pub timeout: Duration,
}

/// An OTLP/HTTP protobuf span exporter posting through [`Transport`]. Headers
/// (`OTEL_EXPORTER_OTLP_HEADERS`, `…_TRACES_HEADERS`) and, without `url`, the endpoint
/// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by the SDK from
/// the standard variables.
pub fn exporter(target: &Target, transport: Transport) -> Result<SpanExporter, Error> {
    let mut builder = SpanExporter::builder()
        .with_http()
        .with_http_client(transport)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(target.timeout);
    if let Some(url) = &target.url {
        builder = builder.with_endpoint(url.clone());
    }
    builder.build().map_err(|e| Error::Exporter(e.to_string()))
}

/// hyper on the `otlp-export` thread's runtime. Dropping the last clone stops that thread.
#[derive(Clone)]
pub struct Transport {
    client: HyperClient<HttpsConnector<HttpConnector>>,
    runtime: Handle,
    /// Held only to end the thread when every clone is gone.
    _stop: std::sync::Arc<oneshot::Sender<()>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// Starts the `otlp-export` thread and its runtime; requests time out after `timeout`.
    pub fn start(timeout: Duration) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Thread)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                // Runs spawned exports until every `Transport` is dropped.
                let _ = runtime.block_on(stopped);
            })
            .map_err(Error::Thread)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Exporter(format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: HyperClient::new(https, timeout, None),
            runtime: handle,
            _stop: std::sync::Arc::new(stop),
        })
    }
}

#[async_trait]
impl HttpClient for Transport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as HttpError)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transport answers from a plain thread (as the batch processor calls it), with no
    /// runtime of the caller's.
    #[test]
    fn sends_from_a_thread_without_a_runtime() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            head
        });
        let transport = Transport::start(Duration::from_secs(5)).unwrap();
        let request = Request::post(format!("http://{addr}/v1/traces"))
            .body(Bytes::from_static(b"x"))
            .unwrap();
        let response = futures_executor::block_on(transport.send_bytes(request)).unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body().as_ref(), b"ok");
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("POST /v1/traces HTTP/1.1")
        );
    }

    #[test]
    fn an_unreachable_collector_is_an_error_not_a_hang() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let transport = Transport::start(Duration::from_secs(5)).unwrap();
        let request = Request::post(format!("http://127.0.0.1:{port}/v1/traces"))
            .body(Bytes::new())
            .unwrap();
        assert!(futures_executor::block_on(transport.send_bytes(request)).is_err());
    }
}
