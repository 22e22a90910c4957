//! Thread-per-core serving: one single-threaded tokio runtime per core, each with its own
//! upstream connection pool, fed connections round-robin by an acceptor on the main thread.
//!
//! Why not tokio's work-stealing runtime: a proxied request hops between the client
//! connection's task and the upstream connection's task several times; on a small pod every
//! hop that crosses threads costs a wake-up, and measured per request that was a third more
//! CPU than keeping each connection, its upstream connections and its tasks on one thread
//! (the shape NGINX workers have). Connections are long-lived, so one hand-off per
//! connection is cheap.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::serve::{Listener, ListenerExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::state::AppState;
use crate::{logsink, ratelimit, shutdown};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running on this thread (0 outside workers).
pub fn worker_index() -> usize {
    WORKER.with(Cell::get)
}

/// How many workers to run: one per available core (cgroup CPU limits included).
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

type Handoff = (std::net::TcpStream, SocketAddr);

/// Connections handed to one worker.
struct ChannelListener {
    rx: mpsc::UnboundedReceiver<Handoff>,
    local: SocketAddr,
}

impl Listener for ChannelListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.rx.recv().await else {
                // The acceptor has stopped: only shutdown ends this worker now.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(s) => return (s, peer),
                Err(e) => tracing::warn!(error = %e, "cannot adopt an accepted connection"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Shutdown timing.
pub struct Drain {
    /// Keep accepting this long after SIGTERM.
    pub grace: Duration,
    /// Then wait at most this long for in-flight requests.
    pub deadline: Duration,
}

/// Serves `app` on `listener` until SIGTERM and the drain are over.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    state: Arc<AppState>,
    workers: usize,
    drain: Drain,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("no local address")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut inboxes = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let app = app.clone();
        let mut stop = stop_rx.clone();
        std::thread::Builder::new()
            .name(format!("proxy-worker-{index}"))
            .spawn(move || {
                WORKER.with(|w| w.set(index));
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(async move {
                        let listener = ChannelListener { rx, local }.tap_io(|tcp| {
                            // SSE chunks are small: send each at once.
                            let _ = tcp.set_nodelay(true);
                        });
                        let service = app.into_make_service_with_connect_info::<SocketAddr>();
                        let _ = axum::serve(listener, service)
                            .with_graceful_shutdown(async move {
                                let _ = stop.wait_for(|s| *s).await;
                            })
                            .await;
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot start a worker runtime"),
                }
                let _ = done_tx.send(());
            })
            .context("cannot start a worker thread")?;
        inboxes.push(tx);
        finished.push(done_rx);
    }
    tokio::spawn(ratelimit::sweep(state.clone()));
    tokio::spawn(logsink::flusher());

    let (drain_tx, drain_rx) = oneshot::channel();
    let stop_accepting = shutdown::stop_accepting(state, drain.grace, drain_tx);
    tokio::select! {
        () = accept_loop(&listener, &inboxes) => {}
        () = stop_accepting => {}
    }
    drop(listener);
    let _ = drain_rx.await;
    let _ = stop_tx.send(true);
    let all_done = async {
        for done in finished {
            let _ = done.await;
        }
    };
    if tokio::time::timeout(drain.deadline, all_done)
        .await
        .is_err()
    {
        tracing::warn!("shutdown: drain deadline reached; cutting remaining requests");
    }
    Ok(())
}

async fn accept_loop(
    listener: &tokio::net::TcpListener,
    inboxes: &[mpsc::UnboundedSender<Handoff>],
) {
    let mut next = 0usize;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        if let Some(inbox) = inboxes.get(next % inboxes.len().max(1)) {
            let _ = inbox.send((stream, peer));
        }
        next = next.wrapping_add(1);
    }
}
