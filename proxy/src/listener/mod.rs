//! The listener: thread-per-core serving of the API port, with the connection limits of
//! [`conn`]; the admin port ([`admin`]); and the shutdown sequence ([`shutdown`]).
//!
//! Thread-per-core serving: one single-threaded tokio runtime per core, each accepting from
//! the same listening socket and owning its own upstream connection pools.
//!
//! Why not tokio's work-stealing runtime: a proxied request hops between the client
//! connection's task and the upstream connection's task several times; on a small pod every
//! hop that crosses threads costs a wake-up, and measured per request that was a third more
//! CPU than keeping each connection, its upstream connections and its tasks on one thread
//! (the shape NGINX workers have). Every worker waits on the shared socket, so whichever is
//! free takes the next connection, with no hand-off between threads.

pub mod admin;
pub mod conn;
pub mod shutdown;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::start_error::StartError;
use conn::Conns;

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

/// After the drain deadline, how long the cut streams get to send their error event.
const CUT_FLUSH: Duration = Duration::from_secs(1);

/// Binds `addr`.
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves the API on `listener` with `workers` threads until SIGTERM and the drain are over.
pub async fn serve(
    listener: tokio::net::TcpListener,
    conns: Conns,
    workers: usize,
    draining: Arc<AtomicBool>,
    drain: Drain,
) -> Result<(), StartError> {
    let listener = listener.into_std().map_err(StartError::Workers)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let socket = listener.try_clone().map_err(StartError::Workers)?;
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let conns = conns.clone();
        let stop = stop_rx.clone();
        std::thread::Builder::new()
            .name(format!("proxy-worker-{index}"))
            .spawn(move || {
                crate::upstream::set_worker(index);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let result = runtime.and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(socket)?;
                        conn::accept_loop(listener, conns, stop).await;
                        Ok(())
                    })
                });
                if let Err(e) = result {
                    tracing::error!(error = %e, worker = index, "worker stopped");
                }
                let _ = done_tx.send(());
            })
            .map_err(StartError::Workers)?;
        finished.push(done_rx);
    }
    drop(listener);

    // After SIGTERM and the grace delay, workers stop accepting and drain.
    shutdown::stop_accepting(draining, drain.grace).await;
    let _ = stop_tx.send(true);
    let all_done = async {
        for done in finished {
            let _ = done.await;
        }
    };
    tokio::pin!(all_done);
    if tokio::time::timeout(drain.deadline, &mut all_done)
        .await
        .is_err()
    {
        tracing::warn!("shutdown: drain deadline reached; ending open streams with an error event");
        crate::answer::cut_open_answers();
        let _ = tokio::time::timeout(CUT_FLUSH, all_done).await;
    }
    Ok(())
}
