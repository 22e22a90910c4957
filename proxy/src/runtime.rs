//! Thread-per-core serving: one single-threaded tokio runtime per core, each accepting from
//! the same listening socket and owning its own upstream connection pools.
//!
//! Why not tokio's work-stealing runtime: a proxied request hops between the client
//! connection's task and the upstream connection's task several times; on a small pod every
//! hop that crosses threads costs a wake-up, and measured per request that was a third more
//! CPU than keeping each connection, its upstream connections and its tasks on one thread
//! (the shape NGINX workers have). Every worker waits on the shared socket, so whichever is
//! free takes the next connection, with no hand-off between threads.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::sync::{oneshot, watch};

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
    let listener = listener
        .into_std()
        .context("cannot share the listening socket")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let socket = listener
            .try_clone()
            .context("cannot share the listening socket")?;
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
                let result = runtime.map_err(anyhow::Error::from).and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(socket)?.tap_io(|tcp| {
                            // SSE chunks are small: send each at once.
                            let _ = tcp.set_nodelay(true);
                        });
                        let service = app.into_make_service_with_connect_info::<SocketAddr>();
                        axum::serve(listener, service)
                            .with_graceful_shutdown(async move {
                                let _ = stop.wait_for(|s| *s).await;
                            })
                            .await?;
                        anyhow::Ok(())
                    })
                });
                if let Err(e) = result {
                    tracing::error!(error = format!("{e:#}"), worker = index, "worker stopped");
                }
                let _ = done_tx.send(());
            })
            .context("cannot start a worker thread")?;
        finished.push(done_rx);
    }
    drop(listener);
    tokio::spawn(ratelimit::sweep(state.clone()));
    tokio::spawn(logsink::flusher());

    // After SIGTERM and the grace delay, workers stop accepting and drain.
    shutdown::stop_accepting(state, drain.grace).await;
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
