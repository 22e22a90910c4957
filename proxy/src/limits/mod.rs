//! Per-key policies enforced across replicas: models, requests and tokens per minute, token
//! budgets per day and month, requests in flight.
//!
//! Counters live in Redis ([`redis`]); each replica takes allowances in advance ([`lease`])
//! so a request normally spends from memory and never waits on the store. Without a store,
//! or while it is unreachable, every replica enforces its share ([`local`]); fail-closed
//! environments refuse instead. [`Limiter::admit`] is the whole interface of a request.

mod dims;
mod lease;
mod local;
mod redis;
mod refusal;
#[cfg(test)]
mod tests;

use foldhash::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ai_api_proxy_config::{Policies, SharedLimits, WhenUnreachable};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

pub use dims::Limits;
pub use redis::StoreError;
#[cfg(test)]
pub use refusal::Gauge as RateGauge;
pub use refusal::{RATE_HEADERS, RateHeaders, Refusal};

use lease::{Ledger, cost, lease_sizes, need};
use local::Local;
use redis::{Request, Store};

/// Metrics of the limiter (registered by the metrics module, under the catalogue's names).
#[derive(Clone, Debug, Default)]
pub struct LimitMetrics {
    /// 1 while the shared store is unreachable and replicas count on their own.
    pub degraded: Gauge,
    /// Times the store was found unreachable.
    pub store_failures: Counter,
    /// Exchanges with the store (requests that waited on it, top-ups, settlements).
    pub store_exchanges: Counter,
    /// Refusals by reason ([`Refusal::reason`]).
    pub refusals: Family<ReasonLabels, Counter>,
}

/// The label of a policy refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// One of the catalogue's `POLICY_REFUSAL_REASONS`.
    pub reason: &'static str,
}

/// Per-key policies and the counters that enforce them.
pub struct Limiter {
    keys: HashMap<String, Arc<Limits>>,
    default: Arc<Limits>,
    store: Option<Store>,
    /// The limit divisor while counting alone (1 without a store).
    divisor: u32,
    fail_closed: bool,
    lease_percent: u32,
    settle_every: Duration,
    clients: Mutex<HashMap<Arc<str>, Entry>>,
    degraded: AtomicBool,
    /// Metrics.
    pub metrics: LimitMetrics,
}

#[derive(Debug)]
struct Entry {
    ledger: Ledger,
    local: Local,
}

/// A request let through: spends its estimate now, settles with real usage at the end, and
/// frees its in-flight slot when dropped.
#[must_use = "dropping a permit ends the request's in-flight slot"]
pub struct Permit {
    limiter: Option<Arc<Limiter>>,
    client: Arc<str>,
    limits: Arc<Limits>,
    estimate: u64,
    /// The `x-ratelimit-*` values as of admission.
    pub headers: RateHeaders,
}

impl Limiter {
    /// From configuration. With `shared`, this must run inside the tokio runtime that drives
    /// the store's connection for the life of the process.
    pub fn new(
        policies: &Policies,
        shared: Option<(&SharedLimits, Option<&str>)>,
        metrics: LimitMetrics,
    ) -> Result<Self, StoreError> {
        let store = shared
            .map(|(cfg, password)| Store::connect(cfg, password))
            .transpose()?;
        let cfg = shared.map(|(cfg, _)| cfg);
        Ok(Self {
            keys: policies
                .keys
                .iter()
                .map(|(id, p)| (id.clone(), Arc::new(Limits::from_policy(p))))
                .collect(),
            default: Arc::new(Limits::from_policy(&policies.default)),
            store,
            divisor: cfg.map_or(1, |c| c.replicas.max(1)),
            fail_closed: cfg.is_some_and(|c| c.when_unreachable == WhenUnreachable::Refuse),
            lease_percent: cfg.map_or(5, |c| c.lease.percent),
            settle_every: cfg.map_or(Duration::from_secs(1), |c| c.lease.settle_every.get()),
            clients: Mutex::new(HashMap::default()),
            degraded: AtomicBool::new(false),
            metrics,
        })
    }

    /// The limits of client `id`.
    pub fn limits(&self, id: &str) -> &Arc<Limits> {
        self.keys.get(id).unwrap_or(&self.default)
    }

    /// Is the shared store unreachable (replicas counting on their own)?
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than refusing every request would.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a request of `client` for `model` (`None`: a pass-through path, no model),
    /// estimated at `estimate` tokens, through, or says why not. Waits on the store only when
    /// the allowance in hand cannot cover it.
    pub async fn admit(
        self: &Arc<Self>,
        client: &Arc<str>,
        model: Option<&str>,
        estimate: u64,
    ) -> Result<Permit, Refusal> {
        let admitted = self.admit_inner(client, model, estimate).await;
        if let Err(refusal) = &admitted {
            let reason = refusal.reason();
            self.metrics
                .refusals
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        admitted
    }

    async fn admit_inner(
        self: &Arc<Self>,
        client: &Arc<str>,
        model: Option<&str>,
        estimate: u64,
    ) -> Result<Permit, Refusal> {
        let limits = self.limits(client).clone();
        if let Some(model) = model
            && !limits.allows(model)
        {
            return Err(Refusal::ModelNotAllowed(model.chars().take(256).collect()));
        }
        if limits.counts_nothing() {
            return Ok(Permit::free(client, limits));
        }
        if let Some(limit) = limits.cap(dims::Dim::Tokens)
            && estimate > limit
        {
            return Err(Refusal::TooLarge {
                limit,
                requested: estimate,
            });
        }
        let need = need(&limits, estimate);
        let lease = lease_sizes(&limits, self.lease_percent);
        // Two exchanges at most: another request of the same client may spend what the
        // first one brought.
        for _ in 0..2 {
            let ask = {
                let mut clients = self.clients();
                let now = Instant::now();
                let entry = clients.entry(client.clone()).or_insert_with(|| Entry {
                    ledger: Ledger::new(now),
                    local: Local::new(now),
                });
                let Some(store) = self.store.as_ref().filter(|_| !self.degraded()) else {
                    return self.admit_locally(entry, client, &limits, estimate, now);
                };
                if entry.ledger.covers(&need) {
                    entry.ledger.spend(&cost(&limits, estimate), now);
                    if entry.ledger.low(&lease) && !entry.ledger.topping_up {
                        entry.ledger.topping_up = true;
                        self.top_up(store.clone(), client.clone(), limits.clone(), lease);
                    }
                    let headers = entry.ledger.headers(&limits, now);
                    return Ok(self.permit(client, limits, estimate, headers));
                }
                entry.ledger.ask(&need, &lease)
            };
            let store = self.store.as_ref().ok_or(Refusal::StoreUnavailable)?;
            let req = Request {
                client,
                limits: &limits,
                ask,
            };
            self.metrics.store_exchanges.inc();
            match store.exchange(&req, SystemTime::now()).await {
                Err(e) => self.store_failed(&e),
                Ok((outcome, windows)) => {
                    let mut clients = self.clients();
                    let now = Instant::now();
                    let entry = clients.entry(client.clone()).or_insert_with(|| Entry {
                        ledger: Ledger::new(now),
                        local: Local::new(now),
                    });
                    entry.ledger.apply(&ask, &outcome, &windows, now);
                    if !outcome.ok {
                        return Err(refusal(
                            &limits,
                            estimate,
                            &ask,
                            &outcome,
                            SystemTime::now(),
                        ));
                    }
                }
            }
        }
        Err(Refusal::Requests {
            limit: limits.cap(dims::Dim::Requests).unwrap_or(1),
            retry_after: Duration::from_secs(1),
        })
    }

    fn admit_locally(
        self: &Arc<Self>,
        entry: &mut Entry,
        client: &Arc<str>,
        limits: &Arc<Limits>,
        estimate: u64,
        now: Instant,
    ) -> Result<Permit, Refusal> {
        if self.store.is_some() && self.fail_closed {
            return Err(Refusal::StoreUnavailable);
        }
        entry
            .local
            .admit(limits, self.divisor, estimate, now, SystemTime::now())?;
        if self.store.is_some() {
            // Budgets spent while alone are owed to the store, charged once it is back.
            let budgets = cost(limits, estimate);
            entry.ledger.spend(&[0, 0, budgets[2], budgets[3]], now);
        }
        let headers = entry.local.headers(limits, self.divisor, now);
        Ok(self.permit(client, limits.clone(), estimate, headers))
    }

    fn permit(
        self: &Arc<Self>,
        client: &Arc<str>,
        limits: Arc<Limits>,
        estimate: u64,
        headers: RateHeaders,
    ) -> Permit {
        Permit {
            limiter: Some(self.clone()),
            client: client.clone(),
            limits,
            estimate,
            headers,
        }
    }

    /// Takes a lease in the background, so the next requests find it in hand.
    fn top_up(
        self: &Arc<Self>,
        store: Store,
        client: Arc<str>,
        limits: Arc<Limits>,
        lease: [u64; 4],
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let ask = {
                let clients = this.clients();
                clients.get(&client).map(|e| e.ledger.ask(&[0; 4], &lease))
            };
            let Some(ask) = ask else { return };
            this.metrics.store_exchanges.inc();
            let result = store
                .exchange(
                    &Request {
                        client: &client,
                        limits: &limits,
                        ask,
                    },
                    SystemTime::now(),
                )
                .await;
            let mut clients = this.clients();
            let Some(entry) = clients.get_mut(&client) else {
                return;
            };
            entry.ledger.topping_up = false;
            match result {
                Ok((outcome, windows)) => {
                    entry.ledger.apply(&ask, &outcome, &windows, Instant::now())
                }
                Err(e) => {
                    drop(clients);
                    this.store_failed(&e);
                }
            }
        });
    }

    fn store_failed(&self, error: &StoreError) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            self.metrics.degraded.set(1);
            self.metrics.store_failures.inc();
            tracing::warn!(
                error = %error,
                replicas = self.divisor,
                fail_closed = self.fail_closed,
                "shared limits store unreachable: each replica now enforces its share of every limit"
            );
        }
    }

    /// Settles a finished request: its estimate was spent, `used` tokens were real.
    fn settle(&self, client: &Arc<str>, limits: &Limits, estimate: u64, used: Option<u64>) {
        let mut clients = self.clients();
        let Some(entry) = clients.get_mut(client) else {
            return;
        };
        let Some(used) = used else { return };
        let back =
            i64::try_from(estimate).unwrap_or(i64::MAX) - i64::try_from(used).unwrap_or(i64::MAX);
        if self.store.is_none() || self.degraded() {
            entry
                .local
                .adjust_tokens(limits, self.divisor, back, Instant::now());
            if self.store.is_some() {
                entry.ledger.held[2] = entry.ledger.held[2].saturating_add(back);
                entry.ledger.held[3] = entry.ledger.held[3].saturating_add(back);
            }
        } else {
            entry.ledger.adjust_tokens(limits, back);
        }
    }

    /// Background task: every `lease.settle_every`, charges debts, gives back the allowance
    /// of idle clients (all in one pipelined round trip), forgets settled clients, and while
    /// the store is unreachable checks whether it is back.
    pub async fn run_settler(self: Arc<Self>) {
        let Some(store) = self.store.clone() else {
            // Alone: only forget idle clients, so anonymous IPs do not pile up.
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let now = Instant::now();
                self.clients().retain(|_, e| !e.local.is_idle(now));
            }
        };
        loop {
            tokio::time::sleep(self.settle_every).await;
            if self.degraded() {
                if store.ping().await.is_err() {
                    continue;
                }
                self.degraded.store(false, Ordering::Relaxed);
                self.metrics.degraded.set(0);
                tracing::info!(
                    "shared limits store reachable again: limits are shared across replicas"
                );
            }
            self.settle_once(&store).await;
        }
    }

    async fn settle_once(&self, store: &Store) {
        let idle_after = self.settle_every * 2;
        let batch: Vec<(Arc<str>, Arc<Limits>, [lease::Ask; 4])> = {
            let now = Instant::now();
            let mut clients = self.clients();
            clients.retain(|_, e| {
                !(e.ledger.is_settled()
                    && now.saturating_duration_since(e.ledger.last_used) > Duration::from_secs(60))
            });
            clients
                .iter()
                .filter(|(_, e)| !e.ledger.topping_up)
                .filter_map(|(id, e)| {
                    let idle = now.saturating_duration_since(e.ledger.last_used) > idle_after;
                    Some((
                        id.clone(),
                        self.limits(id).clone(),
                        e.ledger.settle_ask(idle)?,
                    ))
                })
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        let reqs: Vec<Request<'_>> = batch
            .iter()
            .map(|(client, limits, ask)| Request {
                client,
                limits,
                ask: *ask,
            })
            .collect();
        self.metrics.store_exchanges.inc();
        match store.exchange_many(&reqs, SystemTime::now()).await {
            Ok((outcomes, windows)) => {
                let now = Instant::now();
                let mut clients = self.clients();
                for ((client, _, ask), outcome) in batch.iter().zip(&outcomes) {
                    if let Some(entry) = clients.get_mut(client) {
                        entry.ledger.apply(ask, outcome, &windows, now);
                    }
                }
            }
            Err(e) => self.store_failed(&e),
        }
    }
}

/// The refusal for an exchange whose `need` the store did not have: a spent budget first
/// (waiting a minute does not help), then requests, then tokens.
fn refusal(
    limits: &Limits,
    estimate: u64,
    ask: &[lease::Ask; 4],
    outcome: &lease::Outcome,
    now: SystemTime,
) -> Refusal {
    use dims::Dim;
    let short = |dim: Dim| {
        let i = dim.index();
        ask[i].need > 0 && outcome.left[i] < ask[i].need as f64
    };
    for (dim, period) in [(Dim::Day, "day"), (Dim::Month, "month")] {
        if let Some(limit) = limits.cap(dim)
            && short(dim)
        {
            return Refusal::Budget {
                period,
                limit,
                retry_after: dims::window(dim, now).left,
            };
        }
    }
    let wait = |dim: Dim| outcome.wait[dim.index()].max(Duration::from_millis(1));
    match (limits.cap(Dim::Requests), limits.cap(Dim::Tokens)) {
        (Some(limit), _) if short(Dim::Requests) => Refusal::Requests {
            limit,
            retry_after: wait(Dim::Requests),
        },
        (_, Some(limit)) => Refusal::Tokens {
            limit,
            requested: estimate,
            retry_after: wait(Dim::Tokens),
        },
        (limit, None) => Refusal::Requests {
            limit: limit.unwrap_or(1),
            retry_after: wait(Dim::Requests),
        },
    }
}

impl Permit {
    fn free(client: &Arc<str>, limits: Arc<Limits>) -> Self {
        Self {
            limiter: None,
            client: client.clone(),
            limits,
            estimate: 0,
            headers: RateHeaders::default(),
        }
    }

    /// Ends the request with its real token usage (`None`: unknown, the estimate stands).
    pub fn settle(mut self, used: Option<u64>) {
        if let Some(limiter) = self.limiter.take() {
            limiter.settle(&self.client, &self.limits, self.estimate, used);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter.take() {
            limiter.settle(&self.client, &self.limits, self.estimate, None);
        }
    }
}
