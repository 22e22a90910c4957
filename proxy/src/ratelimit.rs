//! Rate limit per client key (per client IP when anonymous): a token bucket answered with 429,
//! `Retry-After` and OpenAI's error JSON.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ai_api_proxy_config::RateLimit;
use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tower::{Layer, Service};

use crate::auth::Client;
use crate::error::ProxyError;
use crate::guard::Guarded;
use crate::state::AppState;

/// A keyed token bucket: `requests_per_second` sustained, `burst` at most at once.
pub struct Limiter {
    inner: RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock>,
}

impl Limiter {
    /// From configuration (zero values are raised to 1).
    pub fn new(cfg: &RateLimit) -> Self {
        let rps = NonZeroU32::new(cfg.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(cfg.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst)),
        }
    }

    /// Takes a token for `client`, or says how long until one is available.
    pub fn check(&self, client: &Client) -> Result<(), Duration> {
        self.inner
            .check_key(client)
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }

    /// Forgets clients whose bucket is full again, so anonymous IPs do not pile up.
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Layer (after authentication, which tells who the client is): refuses over-limit clients
/// before routing, so a flood never reaches an upstream.
#[derive(Clone)]
pub struct RateLimitLayer(pub Arc<AppState>);

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            state: self.0.clone(),
        }
    }
}

/// The rate-limiting service.
#[derive(Clone)]
pub struct RateLimited<S> {
    inner: S,
    state: Arc<AppState>,
}

impl<S> Service<Request> for RateLimited<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Guarded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(client) = request.extensions().get::<Client>()
            && let Err(wait) = self.state.limiter.check(client)
        {
            self.state.metrics.rate_limited.inc();
            return Guarded::refuse(ProxyError::RateLimited(wait).into_response());
        }
        Guarded::pass(self.inner.call(request), None)
    }
}

/// Background task: periodically drop idle buckets.
pub async fn sweep(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.limiter.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_burst_per_client() {
        let l = Limiter::new(&RateLimit {
            requests_per_second: 1,
            burst: 2,
        });
        let a = Client::Key(Arc::from("a"));
        let b = Client::Key(Arc::from("b"));
        assert!(l.check(&a).is_ok());
        assert!(l.check(&a).is_ok());
        let wait = l.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(l.check(&b).is_ok());
    }
}
