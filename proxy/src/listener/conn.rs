//! One worker's client connections: accepted under the process-wide connection cap, served as
//! HTTP/1.1 or HTTP/2 with explicit limits, and closed when the client stalls.
//!
//! Timing is watched on the socket itself ([`Watched`]), because only there can "a request's
//! head has started but not finished" be told from "nothing is happening":
//! - a connection must complete each request head within `header_read_timeout` of its first
//!   byte (and its first one within that time of connecting), else it gets a 408 and is closed;
//! - a connection with no request in flight is closed after `keep_alive_timeout`.
//!
//! Body timeouts are the handlers' (`routing::body`); answers are the upstream's timeouts'.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ai_api_proxy_config::Limits;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::app::Api;
use crate::error_answer::ProxyError;
use crate::observability::metrics::{Metrics, PhaseLabels};

/// What every connection of a worker shares.
#[derive(Clone)]
pub struct Conns {
    /// The API application.
    pub app: Api,
    /// One permit per connection the process may hold open.
    pub slots: Arc<Semaphore>,
    /// Limits from configuration.
    pub limits: Limits,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// HTTP/2 bytes an answer may queue per stream before the relay waits for the client.
const H2_SEND_BUFFER: usize = 64 * 1024;

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // Timed by `Watched` instead, which can answer 408 and knows idle from slow.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes as usize);
    let h2 = &limits.http2;
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .initial_stream_window_size(h2.stream_window_bytes)
        .initial_connection_window_size(h2.connection_window_bytes)
        .max_send_buf_size(H2_SEND_BUFFER)
        .max_pending_accept_reset_streams(Some(h2.max_concurrent_streams as usize))
        .keep_alive_interval(h2.keep_alive_interval.get())
        .keep_alive_timeout(h2.keep_alive_interval.get());
    b
}

/// Accepts and serves connections until `stop`, then lets open ones finish (HTTP/1: after
/// their current request; HTTP/2: GOAWAY) and returns when all are closed.
pub async fn accept_loop(listener: TcpListener, conns: Conns, mut stop: watch::Receiver<bool>) {
    let builder = Arc::new(builder(&conns.limits));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = conns.slots.clone().try_acquire_owned() else {
            conns.metrics.connections_rejected.inc();
            refuse(&tcp);
            continue;
        };
        // SSE chunks are small: send each at once.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched::new(
            tcp,
            activity.clone(),
            &conns.limits,
            conns.metrics.clone(),
        ));
        let app = conns.app.clone();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::start(&activity);
            let answer = app(request);
            async move {
                let mut response = answer.await?;
                response.body_mut().hold(busy);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection(io, service).into_owned();
        let connection = graceful.watch(connection);
        let metrics = conns.metrics.clone();
        metrics.open_connections.inc();
        tokio::spawn(async move {
            let _ = connection.await;
            metrics.open_connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Over the connection cap: a best-effort 503 in OpenAI's shape, then the socket is closed.
fn refuse(tcp: &TcpStream) {
    let e = ProxyError::TooManyConnections;
    let body = e.body();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(response.as_bytes());
}

/// A 408 for a client that did not finish its request head in time.
fn request_timeout_response() -> String {
    let body = crate::error_answer::error_json(
        "The request headers were not received in time.",
        "invalid_request_error",
        None,
        "request_timeout",
    );
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// What the socket watcher learns from the service: requests started, and in flight.
struct Activity {
    /// Requests in flight on this connection.
    busy: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// When the last request ended (milliseconds since the connection's start).
    idle_since_ms: AtomicU64,
    born: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    fn idle_since(&self) -> Instant {
        self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed))
    }
}

/// One request in flight on a connection, until its answer's body is done.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.idle_since_ms.store(ms, Ordering::Relaxed);
        a.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client socket, watched for stalled request heads and idleness.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
    header_timeout: Duration,
    keep_alive: Duration,
    /// HTTP/2 (known from the first bytes): heads are frames, bounded by HTTP/2 settings.
    h2: Option<bool>,
    /// A request head is being read: since when, and how many requests had started then.
    head: Option<(Instant, u64)>,
    timer: Pin<Box<Sleep>>,
    armed: Instant,
    /// The connection timed out: reads end (EOF), which closes it.
    closed: bool,
    metrics: Arc<Metrics>,
}

impl Watched {
    fn new(io: TcpStream, activity: Arc<Activity>, limits: &Limits, metrics: Arc<Metrics>) -> Self {
        let now = Instant::now();
        let header_timeout = limits.header_read_timeout.get();
        Self {
            io,
            activity,
            header_timeout,
            keep_alive: limits.keep_alive_timeout.get(),
            h2: None,
            // The first request head is due within the header timeout of connecting.
            head: Some((now, 0)),
            timer: Box::pin(tokio::time::sleep_until(now + header_timeout)),
            armed: now + header_timeout,
            closed: false,
            metrics,
        }
    }

    /// When the connection times out as things stand, and why (`true`: a stalled head).
    fn deadline(&mut self) -> (Instant, bool) {
        let started = self.activity.started.load(Ordering::Relaxed);
        if self.head.is_some_and(|(_, at)| at != started) || self.h2 == Some(true) {
            // The head was complete: a request started since.
            self.head = None;
        }
        if self.activity.busy.load(Ordering::Relaxed) > 0 {
            // Not idle: look again within `keep_alive` (requests have their own timeouts), so
            // a connection that goes idle is closed at most twice that after its last answer.
            let now = Instant::now();
            let later = now + self.keep_alive;
            let at = if self.armed > now && self.armed <= later {
                self.armed
            } else {
                later
            };
            return (at, false);
        }
        match self.head {
            Some((since, _)) => (since + self.header_timeout, true),
            None => (self.activity.idle_since() + self.keep_alive, false),
        }
    }

    fn note_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.h2.is_none() {
            self.h2 = Some(bytes.starts_with(b"PRI * HTTP/2.0"));
        }
        if self.h2 == Some(false)
            && self.head.is_none()
            && self.activity.busy.load(Ordering::Relaxed) == 0
        {
            let started = self.activity.started.load(Ordering::Relaxed);
            self.head = Some((Instant::now(), started));
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.io).poll_read(cx, buf) {
            if result.is_ok() {
                let filled = buf.filled();
                this.note_read(filled.get(before..).unwrap_or_default());
            }
            return Poll::Ready(result);
        }
        loop {
            let (at, stalled_head) = this.deadline();
            if Instant::now() >= at {
                if stalled_head {
                    this.metrics
                        .client_timeouts
                        .get_or_create(&PhaseLabels { phase: "header" })
                        .inc();
                    let _ = this.io.try_write(request_timeout_response().as_bytes());
                }
                this.closed = true;
                return Poll::Ready(Ok(()));
            }
            if at != this.armed {
                this.armed = at;
                this.timer.as_mut().reset(at);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
