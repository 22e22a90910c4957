//! `ai-api-proxy`: the OpenAI-compatible gateway. This file parses flags and wires modules.
#![forbid(unsafe_code)]

mod access_log;
mod api;
mod auth;
mod breaker;
mod error;
mod forward;
mod guard;
#[allow(
    dead_code,
    unused_imports,
    reason = "wired into the request path once the layer rework lands"
)]
mod limits;
mod logsink;
#[allow(
    dead_code,
    unused_imports,
    reason = "wired into the request path once the layer rework lands"
)]
mod metering;
mod metrics;
mod ratelimit;
mod relay;
mod runtime;
mod server;
mod settings;
mod shutdown;
mod state;
mod upstream;
mod usage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ai_api_proxy_config::DEFAULT_CONFIG_PATH;
use anyhow::Context as _;
use clap::Parser;

/// OpenAI-compatible reverse proxy: routing, key injection, client auth, rate limits, streaming.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The proxy configuration (JSON, as rendered by `infra` into the ConfigMap).
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Listen address, overriding `0.0.0.0:<port>` from the configuration (port 0: any free).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stdout)
        .init();
    // This thread only watches signals and runs the housekeeping tasks; requests are served
    // by the per-core workers of `runtime::serve`, each on a runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = runtime
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(run(args)));
    logsink::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ai-api-proxy stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = settings::load_config(&args.config)?;
    let workers = runtime::worker_count();
    let state = Arc::new(state::AppState::build(&config, workers)?);
    let app = server::app(state.clone(), &config.cors)?;
    let addr = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], config.port)));
    let listener = server::bind(addr).await?;
    let local = listener.local_addr().context("no local address")?;
    tracing::info!(
        addr = %local,
        workers,
        models = config.models.len(),
        upstreams = config.upstreams.len(),
        "listening"
    );
    let drain = runtime::Drain {
        grace: config.shutdown.grace_delay.get(),
        deadline: config.shutdown.drain_timeout.get(),
    };
    runtime::serve(listener, app, state, workers, drain).await?;
    tracing::info!("shutdown complete");
    Ok(())
}
