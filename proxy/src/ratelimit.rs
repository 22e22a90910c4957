//! Rate limit per client key (per client IP when anonymous): a token bucket answered with 429,
//! `Retry-After` and OpenAI's error JSON.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ai_api_proxy_config::RateLimit;
use axum::extract::Request;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::auth::Client;
use crate::error::ProxyError;
use crate::guard::Check;
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

/// Guard (after authentication, which tells who the client is): refuses over-limit clients
/// before routing, so a flood never reaches an upstream.
#[derive(Clone)]
pub struct Throttle(pub Arc<AppState>);

impl Check for Throttle {
    fn check(&self, request: &mut Request) -> Result<Option<Client>, ProxyError> {
        if let Some(client) = request.extensions().get::<Client>()
            && let Err(wait) = self.0.limiter.check(client)
        {
            self.0.metrics.rate_limited.inc();
            return Err(ProxyError::RateLimited(wait));
        }
        Ok(None)
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
