//! Everything a request needs, built once from the configuration at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ai_api_proxy_config::{ClientAuth, Endpoints, ProxyConfig};
use bytes::Bytes;

use crate::auth::Authenticator;
use crate::forward::RetryPolicy;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::settings::{StartError, describe, read_secret};
use crate::upstream::Upstream;

/// A model and the upstreams that serve it, in fallback order.
pub struct Route {
    /// The model name.
    pub name: Arc<str>,
    /// Upstreams in order.
    pub upstreams: Vec<Arc<Upstream>>,
}

/// The proxy's shared state.
pub struct AppState {
    /// Client authentication.
    pub auth: Authenticator,
    /// Paths served without authentication (and without access log): health, ready, metrics.
    pub unauthenticated: [String; 3],
    /// Operational endpoint paths.
    pub endpoints: Endpoints,
    /// Per-client rate limit.
    pub limiter: Limiter,
    /// Model routes by name.
    pub models: HashMap<String, Route>,
    /// Pass-through paths.
    pub passthrough: HashMap<String, Arc<Upstream>>,
    /// The `/v1/models` answer, rendered once.
    pub models_body: Bytes,
    /// Metrics.
    pub metrics: Metrics,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Largest accepted request body.
    pub max_body: u64,
    /// Set on SIGTERM: readiness turns 503.
    pub draining: AtomicBool,
}

impl AppState {
    /// Builds the state, reading every secret the configuration references; each of `workers`
    /// gets its own upstream connection pools.
    pub fn build(config: &ProxyConfig, workers: usize) -> Result<Self, StartError> {
        let auth = match &config.auth {
            ClientAuth::Anonymous => Authenticator::Anonymous,
            ClientAuth::ApiKeys { keys } => {
                let text = read_secret(keys, &config.secrets_dir)?;
                Authenticator::from_key_file(&text, &describe(keys))?
            }
        };
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let key = read_secret(&u.api_key, &config.secrets_dir)?;
            let up = Upstream::new(
                u,
                &key,
                config.timeouts_for(u).into(),
                &config.circuit_breaker,
                workers,
            )?;
            upstreams.insert(u.name.clone(), Arc::new(up));
        }
        let find = |name: &str| {
            upstreams
                .get(name)
                .cloned()
                .ok_or_else(|| StartError::Upstream {
                    upstream: name.to_owned(),
                    message: "not defined".into(),
                })
        };
        let mut models = HashMap::new();
        for m in &config.models {
            let route = Route {
                name: Arc::from(m.name.as_str()),
                upstreams: m
                    .upstreams
                    .iter()
                    .map(|u| find(u))
                    .collect::<Result<_, _>>()?,
            };
            models.insert(m.name.clone(), route);
        }
        let passthrough = config
            .passthrough
            .iter()
            .map(|p| Ok((p.path.clone(), find(&p.upstream)?)))
            .collect::<Result<_, StartError>>()?;
        let metrics = Metrics::new(
            config
                .upstreams
                .iter()
                .filter_map(|u| upstreams.get(&u.name).map(|up| &up.name)),
        );
        let e = &config.endpoints;
        Ok(Self {
            auth,
            unauthenticated: [e.health.clone(), e.ready.clone(), e.metrics.clone()],
            endpoints: e.clone(),
            limiter: Limiter::new(&config.rate_limit),
            models_body: models_json(config),
            models,
            passthrough,
            metrics,
            retry: RetryPolicy {
                max_attempts: config.retry.max_attempts.max(1),
                initial_backoff: config.retry.initial_backoff.get(),
                max_backoff: config.retry.max_backoff.get(),
            },
            max_body: config.max_body_bytes,
            draining: AtomicBool::new(false),
        })
    }

    /// Is `path` served without authentication?
    pub fn is_unauthenticated(&self, path: &str) -> bool {
        self.unauthenticated.iter().any(|p| p == path)
    }
}

/// OpenAI's model list, answered from configuration.
fn models_json(config: &ProxyConfig) -> Bytes {
    let data: Vec<_> = config
        .models
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": m.upstreams.first().map_or("", String::as_str),
            })
        })
        .collect();
    let body = serde_json::json!({ "object": "list", "data": data });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}
