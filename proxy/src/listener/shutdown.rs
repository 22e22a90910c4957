//! Graceful shutdown: on SIGTERM readiness turns 503 at once, connections are still taken for
//! the grace delay (so load balancers stop sending first), then in-flight requests and
//! streams get until the drain deadline to finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Waits for SIGTERM or SIGINT.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the proxy");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves when the server should stop accepting connections: SIGTERM, then the grace delay.
pub async fn stop_accepting(draining: Arc<AtomicBool>, grace: Duration) {
    signal().await;
    draining.store(true, Ordering::Release);
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutdown: draining, readiness is 503"
    );
    tokio::time::sleep(grace).await;
    tracing::info!("shutdown: no longer accepting connections; waiting for in-flight requests");
}
