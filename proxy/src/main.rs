//! `ai-api-proxy`: the OpenAI-compatible gateway. This file parses flags and wires the layers,
//! in the order a request meets them: `listener` (connections, admin port, shutdown) → `app`
//! (the layer stack: request id, access log, CORS) → `guard` (authentication, client limits)
//! → `routing` (the route table, body, model; `limits` for per-key policies, `metering`) →
//! `upstream` (attempts, retries, breaker) → `answer` (the one body of the way back: relay,
//! `sse` events and their hooks, usage, the access-log record), with `observability` (metrics,
//! access log) and `telemetry` (traces) beside. Start-up errors are `start_error`'s; the
//! proxy's own error answers `error_answer`'s.
#![forbid(unsafe_code)]

mod answer;
mod anthropic;
mod app;
mod error_answer;
mod failover;
mod guard;
mod limits;
mod listener;
mod load;
mod metering;
mod observability;
mod reload;
mod routing;
mod sse;
mod start_error;
mod telemetry;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ai_api_proxy_config::{ClientAuth, DEFAULT_CONFIG_PATH, KeySource, ProxyConfig};
use anyhow::Context as _;
use clap::Parser;
use tokio::sync::Semaphore;

use guard::auth::Authenticate;
use guard::keys::{self, KeyStore};
use guard::limit::ClientLimits;
use limits::Limiter;
use listener::admin::{self, Admin};
use listener::conn::Conns;
use observability::logsink;
use observability::metrics::Metrics;
use routing::Routes;
use routing::body::Budget;
use start_error::StartError;
use upstream::Upstream;
use upstream::egress::EgressPlan;
use upstream::forward::{Forwarder, RetryPolicy};
use upstream::tls::TlsFiles;

/// OpenAI-compatible reverse proxy: routing, key injection, client auth, rate limits, streaming.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The proxy configuration (JSON, as rendered by `infra` into the ConfigMap).
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// API listen address, overriding `0.0.0.0:<port>` from the configuration (port 0: any free).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listen address (health, readiness, metrics), overriding `0.0.0.0:<admin_port>`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
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
    // This thread runs the admin listener, signals and housekeeping; requests are served by
    // the per-core workers of `listener::serve`, each on a runtime of its own.
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
    let config = load::load_config(&args.config)?;
    let workers = listener::worker_count();
    let metrics = Arc::new(Metrics::new(
        &config
            .upstreams
            .iter()
            .map(|u| Arc::from(u.name.as_str()))
            .collect::<Vec<_>>(),
    ));
    for m in config
        .models
        .iter()
        .filter(|m| !m.on_stream_failure.is_error())
    {
        let ups: Vec<Arc<str>> = m.upstreams.iter().map(|u| Arc::from(u.as_str())).collect();
        metrics.failover_series(&Arc::from(m.name.as_str()), &ups);
    }
    // Traces (off unless an OTLP endpoint is configured); exports run on a thread of their own.
    let settings = telemetry::Settings::resolve(&config.telemetry, |var| std::env::var(var).ok())?;
    let telemetry = telemetry::Telemetry::start(settings, &metrics.trace)?;
    let mut watched = Vec::new();
    let authenticate = client_auth(&config, &mut watched)?;
    let upstreams = upstreams(&config, workers, &mut watched)?;
    let limits = Arc::new(ClientLimits::new(
        &config.rate_limit,
        &config.policies,
        metrics.clone(),
    ));
    let forwarder = Forwarder {
        retry: RetryPolicy {
            max_attempts: config.retry.max_attempts.max(1),
            initial_backoff: config.retry.initial_backoff.get(),
            max_backoff: config.retry.max_backoff.get(),
        },
        metrics: metrics.clone(),
    };
    let budget = Budget::new(config.limits.body_budget_bytes, metrics.clone());
    let limiter = Arc::new(shared_limits(&config, &metrics)?);
    let routes = Arc::new(Routes::new(
        &config,
        &upstreams,
        budget,
        forwarder,
        limiter.clone(),
    )?);
    let app = app::api(
        routes,
        authenticate,
        limits.clone(),
        metrics.clone(),
        telemetry.tracer(),
        &config.cors,
    )?;

    let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
    let api = listener::bind(args.listen.unwrap_or_else(|| any(config.port))).await?;
    let admin = listener::bind(args.admin_listen.unwrap_or_else(|| any(config.admin_port))).await?;
    tracing::info!(
        addr = %api.local_addr().context("no local address")?,
        admin_addr = %admin.local_addr().context("no local address")?,
        workers,
        models = config.models.len(),
        upstreams = config.upstreams.len(),
        "listening"
    );
    let draining = Arc::new(AtomicBool::new(false));
    let admin_app = admin::router(
        &config.endpoints,
        Arc::new(Admin {
            draining: draining.clone(),
            metrics: metrics.clone(),
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin, admin_app).await {
            tracing::error!(error = %e, "admin listener stopped");
        }
    });
    tokio::spawn(guard::limit::sweep(limits));
    // On this thread's runtime, which also drives the store's connection for every worker.
    tokio::spawn(limiter.run_settler());
    tokio::spawn(logsink::flusher());
    for file in watched {
        tokio::spawn(reload::watch(file, metrics.clone()));
    }

    let conns = Conns {
        app,
        slots: Arc::new(Semaphore::new(config.limits.max_connections as usize)),
        limits: config.limits,
        metrics,
    };
    let drain = listener::Drain {
        grace: config.shutdown.grace_delay.get(),
        deadline: config.shutdown.drain_timeout.get(),
    };
    listener::serve(api, conns, workers, draining, drain).await?;
    // Sends the spans still queued (bounded by the export timeout); blocking, so off this
    // runtime's thread.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Per-key policies, their counters shared through the store when one is configured. Runs on
/// the housekeeping runtime: the store's connection is driven there for every worker.
fn shared_limits(config: &ProxyConfig, metrics: &Metrics) -> Result<Limiter, StartError> {
    let password = match config
        .shared_limits
        .as_ref()
        .and_then(|s| s.password.as_ref())
    {
        Some(source) => Some(load::read_secret(source, &config.secrets_dir)?),
        None => None,
    };
    let shared = config
        .shared_limits
        .as_ref()
        .map(|s| (s, password.as_deref()));
    Ok(Limiter::new(
        &config.policies,
        shared,
        metrics.limits.clone(),
    )?)
}

/// Client authentication from configuration; a key file from a Secret is watched.
fn client_auth(
    config: &ProxyConfig,
    watched: &mut Vec<reload::Watched>,
) -> Result<Authenticate, StartError> {
    let keys = match &config.auth {
        Some(ClientAuth::ApiKeys { keys }) => keys,
        Some(ClientAuth::Anonymous) => return Ok(Authenticate::Anonymous),
        // Refused by validation already; never an implicit open proxy.
        None => return Err(StartError::MissingAuth),
    };
    let text = load::read_secret(keys, &config.secrets_dir)?;
    let parsed = keys::parse(&text).map_err(|error| StartError::KeyFile {
        source_name: load::describe(keys),
        error,
    })?;
    let store = Arc::new(KeyStore::new(parsed));
    if let KeySource::Secret(r) = keys {
        let target = store.clone();
        watched.push(reload::Watched {
            path: r.path(&config.secrets_dir),
            label: Arc::from("client_keys"),
            initial: text,
            apply: Box::new(move |text| {
                target
                    .replace(text)
                    .map(|c| format!("{} keys added, {} removed", c.added, c.removed))
                    .map_err(|e| e.to_string())
            }),
        });
    }
    Ok(Authenticate::Keys(store))
}

/// Every upstream, with its key and TLS files; keys, TLS files and the egress proxy's
/// password from Secrets (or ConfigMaps) are watched.
fn upstreams(
    config: &ProxyConfig,
    workers: usize,
    watched: &mut Vec<reload::Watched>,
) -> Result<HashMap<String, Arc<Upstream>>, StartError> {
    let egress = egress_plan(config)?;
    let mut upstreams = HashMap::new();
    for u in &config.upstreams {
        let key = load::read_secret(&u.api_key, &config.secrets_dir)?;
        let up = Arc::new(Upstream::new(
            u,
            &key,
            config.timeouts_for(u).into(),
            &config.circuit_breaker,
            TlsFiles::new(u.tls.as_ref(), config),
            &egress,
            workers,
        )?);
        if let Some(proxy) = up.egress_proxy() {
            tracing::info!(upstream = %u.name, %proxy, "upstream reached through the egress proxy");
        }
        if let KeySource::Secret(r) = &u.api_key {
            let target = up.clone();
            watched.push(reload::Watched {
                path: r.path(&config.secrets_dir),
                label: Arc::from(format!("upstream:{}", u.name)),
                initial: key,
                apply: Box::new(move |text| {
                    if text.is_empty() {
                        return Err("the key is empty".into());
                    }
                    target
                        .set_key(text)
                        .map(|()| "key replaced".into())
                        .map_err(str::to_owned)
                }),
            });
        }
        for path in up.tls_files().paths() {
            let target = up.clone();
            watched.push(reload::Watched {
                initial: reload::read(&path),
                path,
                label: Arc::from(format!("upstream_tls:{}", u.name)),
                apply: Box::new(move |_| {
                    target
                        .reconnect()
                        .map(|()| "TLS configuration replaced".into())
                }),
            });
        }
        upstreams.insert(u.name.clone(), up);
    }
    if let Some(KeySource::Secret(r)) = config
        .egress
        .as_ref()
        .and_then(|e| e.basic_auth.as_ref())
        .map(|a| &a.password)
    {
        let targets: Vec<_> = upstreams
            .values()
            .filter(|u| u.egress_proxy().is_some())
            .cloned()
            .collect();
        let plan = egress.clone();
        let path = r.path(&config.secrets_dir);
        watched.push(reload::Watched {
            initial: reload::read(&path),
            path,
            label: Arc::from("egress_proxy"),
            apply: Box::new(move |text| {
                plan.set_password(text)?;
                for up in &targets {
                    up.reconnect()?;
                }
                Ok("egress proxy password replaced".into())
            }),
        });
    }
    Ok(upstreams)
}

/// Where upstream connections go: the configuration's `egress` (its password read from its
/// Secret), or the process's `HTTPS_PROXY` / `NO_PROXY` when the configuration has none.
fn egress_plan(config: &ProxyConfig) -> Result<Arc<EgressPlan>, StartError> {
    let egress = config.egress.as_ref();
    let password = match egress.and_then(|e| e.basic_auth.as_ref()) {
        Some(auth) => Some(load::read_secret(&auth.password, &config.secrets_dir)?),
        None => None,
    };
    EgressPlan::new(egress, password.as_deref())
        .map(Arc::new)
        .map_err(StartError::Egress)
}
