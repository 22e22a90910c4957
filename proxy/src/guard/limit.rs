//! The client's limits, after authentication (which tells who the client is) and before
//! routing (so a flood never reaches an upstream): a token bucket per client (429 with
//! `Retry-After`), and a cap on its requests in flight, streams included (429), since a rate
//! alone does not bound what one client holds when each stream lasts minutes.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_api_proxy_config::{Policies, RateLimit};
use axum::extract::Request;
use foldhash::HashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::Response;

use super::{Check, Client};
use crate::answer::Answer;
use crate::error_answer::ProxyError;
use crate::observability::metrics::Metrics;

/// Per-client limits from configuration.
pub struct ClientLimits {
    bucket: RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock>,
    /// Requests in flight per client; a client is listed only while it has some.
    in_flight: Mutex<HashMap<Client, u32>>,
    max_in_flight: u32,
    /// The `max_in_flight` of each key with its own policy, and of everyone else.
    key_caps: HashMap<String, Option<u32>>,
    default_cap: Option<u32>,
    metrics: Arc<Metrics>,
}

impl ClientLimits {
    /// From configuration (zero values are raised to 1).
    pub fn new(cfg: &RateLimit, policies: &Policies, metrics: Arc<Metrics>) -> Self {
        let rps = NonZeroU32::new(cfg.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(cfg.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            bucket: RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst)),
            in_flight: Mutex::new(HashMap::default()),
            max_in_flight: cfg.max_in_flight.max(1),
            key_caps: policies
                .keys
                .iter()
                .map(|(id, p)| (id.clone(), p.max_in_flight))
                .collect(),
            default_cap: policies.default.max_in_flight,
            metrics,
        }
    }

    /// Takes a token for `client`, or says how long until one is available.
    fn take_token(&self, client: &Client) -> Result<(), Duration> {
        self.bucket
            .check_key(client)
            .map_err(|not_until| not_until.wait_time_from(self.bucket.clock().now()))
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Client, u32>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The in-flight cap of `client`: its policy's, else `rate_limit.max_in_flight`.
    fn cap(&self, client: &Client) -> u32 {
        let policy = match client {
            Client::Key(id) => self
                .key_caps
                .get(id.as_ref())
                .copied()
                .unwrap_or(self.default_cap),
            Client::Anonymous(_) => self.default_cap,
        };
        policy.unwrap_or(self.max_in_flight).max(1)
    }

    /// Takes an in-flight slot for `client`, released when the [`Slot`] drops.
    fn take_slot(self: &Arc<Self>, client: &Client) -> Result<Slot, u32> {
        let cap = self.cap(client);
        let mut counts = self.counts();
        let n = counts.entry(client.clone()).or_insert(0);
        if *n >= cap {
            return Err(cap);
        }
        *n += 1;
        Ok(Slot {
            limits: self.clone(),
            client: client.clone(),
        })
    }

    /// Forgets clients whose bucket is full again, so anonymous IPs do not pile up.
    pub fn forget_idle(&self) {
        self.bucket.retain_recent();
        self.bucket.shrink_to_fit();
    }
}

/// One request of a client in flight; dropping it frees the slot.
pub struct Slot {
    limits: Arc<ClientLimits>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        if let Some(n) = counts.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// The guard.
#[derive(Clone)]
pub struct Throttle(pub Arc<ClientLimits>);

impl Check for Throttle {
    type Pass = Option<Slot>;

    fn check(&self, request: &mut Request) -> Result<Option<Slot>, ProxyError> {
        let Some(client) = request.extensions().get::<Client>() else {
            return Ok(None);
        };
        if let Err(wait) = self.0.take_token(client) {
            self.0.metrics.rate_limited.inc();
            return Err(ProxyError::RateLimited(wait));
        }
        match self.0.take_slot(client) {
            Ok(slot) => Ok(Some(slot)),
            Err(cap) => {
                self.0.metrics.in_flight_limited.inc();
                Err(ProxyError::TooManyInFlight(cap))
            }
        }
    }

    /// The slot is held until the answer's body has been sent or abandoned.
    fn answer(slot: Option<Slot>, mut response: Response<Answer>) -> Response<Answer> {
        if let Some(slot) = slot {
            response.body_mut().hold(slot);
        }
        response
    }
}

/// Background task: periodically drop idle buckets.
pub async fn sweep(limits: Arc<ClientLimits>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        limits.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: u32, burst: u32, max_in_flight: u32) -> Arc<ClientLimits> {
        let cfg = RateLimit {
            requests_per_second: rps,
            burst,
            max_in_flight,
        };
        Arc::new(ClientLimits::new(
            &cfg,
            &Policies::default(),
            Arc::new(Metrics::new(&[])),
        ))
    }

    #[test]
    fn refuses_after_burst_per_client() {
        let l = limits(1, 2, 10);
        let a = Client::Key(Arc::from("a"));
        let b = Client::Key(Arc::from("b"));
        assert!(l.take_token(&a).is_ok());
        assert!(l.take_token(&a).is_ok());
        let wait = l.take_token(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(l.take_token(&b).is_ok());
    }

    #[test]
    fn in_flight_slots_are_per_client_and_freed_on_drop() {
        let l = limits(100, 100, 2);
        let a = Client::Key(Arc::from("a"));
        let b = Client::Key(Arc::from("b"));
        let s1 = l.take_slot(&a).unwrap();
        let _s2 = l.take_slot(&a).unwrap();
        assert_eq!(l.take_slot(&a).err(), Some(2));
        assert!(l.take_slot(&b).is_ok());
        drop(s1);
        assert!(l.take_slot(&a).is_ok());
        drop(_s2);
        assert!(l.counts().is_empty(), "freed clients are forgotten");
    }

    #[test]
    fn a_key_policy_sets_its_own_in_flight_cap() {
        let mut policies = Policies::default();
        policies.default.max_in_flight = Some(1);
        policies.keys.insert(
            "batch".into(),
            ai_api_proxy_config::KeyPolicy {
                max_in_flight: Some(3),
                ..Default::default()
            },
        );
        let cfg = RateLimit {
            requests_per_second: 100,
            burst: 100,
            max_in_flight: 10,
        };
        let l = Arc::new(ClientLimits::new(
            &cfg,
            &policies,
            Arc::new(Metrics::new(&[])),
        ));
        let batch = Client::Key(Arc::from("batch"));
        let other = Client::Key(Arc::from("other"));
        let held: Vec<_> = (0..3).map(|_| l.take_slot(&batch).unwrap()).collect();
        assert_eq!(l.take_slot(&batch).err(), Some(3));
        let _one = l.take_slot(&other).unwrap();
        assert_eq!(l.take_slot(&other).err(), Some(1));
        drop(held);
    }
}
