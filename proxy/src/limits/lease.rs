//! One client's allowance taken from the shared store in advance, and what to ask the store
//! for next. Pure bookkeeping: the caller brings the clock and does the I/O.
//!
//! `held` is what this replica took and has not used yet. Requests spend it without asking
//! the store; when it runs low a top-up is asked for in the background, and when it cannot
//! cover a request the request waits for one exchange. Usage beyond what was taken (real
//! tokens above the estimate, spending while the store was unreachable) makes it negative: a
//! debt charged at the next exchange. Unused allowance is given back once the client is idle.

use std::time::{Duration, Instant};

use super::dims::{Dim, Limits, refill, until_full};
use super::refusal::{Gauge, RateHeaders};

/// What one exchange asks of one dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    /// Grant nothing at all unless this much is available.
    pub need: u64,
    /// Grant up to this much (at least `need`).
    pub want: u64,
    /// Applied first, unconditionally: positive gives back, negative charges a debt.
    pub delta: i64,
}

/// The store's answer to one exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Every `need` was available (and granted).
    pub ok: bool,
    /// Granted per dimension.
    pub grant: [u64; 4],
    /// Left in the store after the exchange, per dimension.
    pub left: [f64; 4],
    /// For a rate dimension whose `need` was not available: how long until it is.
    pub wait: [Duration; 4],
}

/// One client's allowance on this replica.
#[derive(Clone, Debug)]
pub struct Ledger {
    /// Taken from the store and not used yet; negative: used beyond it (owed).
    pub held: [i64; 4],
    store_left: [f64; 4],
    read_at: Instant,
    /// When a request last spent from it.
    pub last_used: Instant,
    /// A background top-up is under way.
    pub topping_up: bool,
    /// The budget windows (`d…`, `m…`) `held[Day]` and `held[Month]` belong to.
    windows: [String; 2],
}

/// What a request needs in hand from each dimension before it is admitted: one request, and
/// its token estimate from every token limit. Only real usage above the estimate can overdraw
/// a limit (see the README's worst case).
pub fn need(limits: &Limits, estimate: u64) -> [u64; 4] {
    let want = [1, estimate, estimate, estimate];
    std::array::from_fn(|i| if limits.caps[i].is_some() { want[i] } else { 0 })
}

/// What a request spends from each dimension.
pub fn cost(limits: &Limits, estimate: u64) -> [u64; 4] {
    let spend = [1, estimate, estimate, estimate];
    std::array::from_fn(|i| {
        if limits.caps[i].is_some() {
            spend[i]
        } else {
            0
        }
    })
}

/// How much is taken from the store at once per dimension: `percent` of its limit.
pub fn lease_sizes(limits: &Limits, percent: u32) -> [u64; 4] {
    std::array::from_fn(|i| {
        limits.caps[i].map_or(0, |cap| {
            (cap.saturating_mul(u64::from(percent)) / 100).max(1)
        })
    })
}

impl Ledger {
    /// Nothing held, nothing known.
    pub fn new(now: Instant) -> Self {
        Self {
            held: [0; 4],
            store_left: [f64::NAN; 4],
            read_at: now,
            last_used: now,
            topping_up: false,
            windows: Default::default(),
        }
    }

    /// Does the allowance in hand cover `need`?
    pub fn covers(&self, need: &[u64; 4]) -> bool {
        self.held.iter().zip(need).all(|(h, n)| *h >= *n as i64)
    }

    /// Spends `cost`.
    pub fn spend(&mut self, cost: &[u64; 4], now: Instant) {
        for (h, c) in self.held.iter_mut().zip(cost) {
            *h = h.saturating_sub(*c as i64);
        }
        self.last_used = now;
    }

    /// Adds `tokens` (negative: takes) to every token dimension the client is limited in:
    /// the difference between a request's estimate and its real usage.
    pub fn adjust_tokens(&mut self, limits: &Limits, tokens: i64) {
        for dim in [Dim::Tokens, Dim::Day, Dim::Month] {
            if limits.cap(dim).is_some() {
                let h = &mut self.held[dim.index()];
                *h = h.saturating_add(tokens);
            }
        }
    }

    /// Is the allowance below half a lease anywhere (time to top up in the background)?
    pub fn low(&self, lease: &[u64; 4]) -> bool {
        self.held
            .iter()
            .zip(lease)
            .any(|(h, l)| *l > 0 && *h < (*l / 2) as i64)
    }

    /// The exchange that makes `need` covered (debts charged, a lease where below half).
    pub fn ask(&self, need: &[u64; 4], lease: &[u64; 4]) -> [Ask; 4] {
        std::array::from_fn(|i| {
            let delta = self.held[i].min(0);
            let held = self.held[i] - delta;
            let short = (need[i] as i64 - held).max(0) as u64;
            let low = lease[i] > 0 && held - (need[i] as i64) < (lease[i] / 2) as i64;
            Ask {
                need: short,
                want: short + if low { lease[i] } else { 0 },
                delta,
            }
        })
    }

    /// The settling exchange: debts charged; everything held given back when `give_back`.
    pub fn settle_ask(&self, give_back: bool) -> Option<[Ask; 4]> {
        let ask: [Ask; 4] = std::array::from_fn(|i| Ask {
            need: 0,
            want: 0,
            delta: if give_back {
                self.held[i]
            } else {
                self.held[i].min(0)
            },
        });
        ask.iter().any(|a| a.delta != 0).then_some(ask)
    }

    /// Applies the store's answer to `ask`. Relative on purpose: requests spent meanwhile.
    pub fn apply(
        &mut self,
        ask: &[Ask; 4],
        outcome: &Outcome,
        windows: &[String; 2],
        now: Instant,
    ) {
        self.enter_windows(windows);
        for (i, a) in ask.iter().enumerate() {
            self.held[i] = self.held[i] - a.delta + outcome.grant[i] as i64;
        }
        self.store_left = outcome.left;
        self.read_at = now;
    }

    /// Forgets budget allowance (and debt) of a day or month that is over.
    pub fn enter_windows(&mut self, windows: &[String; 2]) {
        for (k, dim) in [Dim::Day, Dim::Month].into_iter().enumerate() {
            if self.windows[k] != windows[k] {
                if !self.windows[k].is_empty() {
                    self.held[dim.index()] = 0;
                }
                self.windows[k].clone_from(&windows[k]);
            }
        }
    }

    /// Nothing held or owed: the entry can be dropped.
    pub fn is_settled(&self) -> bool {
        self.held.iter().all(|h| *h == 0)
    }

    /// The per-minute limits as the fleet stands, as far as this replica knows: what the
    /// store had at the last exchange, refilled since, plus what is held here.
    pub fn headers(&self, limits: &Limits, now: Instant) -> RateHeaders {
        let gauge = |dim: Dim| {
            let cap = limits.cap(dim)?;
            let i = dim.index();
            let store = if self.store_left[i].is_nan() {
                0.0
            } else {
                refill(
                    self.store_left[i],
                    cap,
                    now.saturating_duration_since(self.read_at),
                )
            };
            let left = (store + self.held[i] as f64).clamp(0.0, cap as f64);
            Some(Gauge {
                limit: cap,
                remaining: left as u64,
                reset: until_full(left, cap),
            })
        };
        RateHeaders {
            requests: gauge(Dim::Requests),
            tokens: gauge(Dim::Tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            caps: [Some(100), Some(1000), None, Some(100_000)],
            ..Limits::default()
        }
    }

    fn granted(grant: [u64; 4]) -> Outcome {
        Outcome {
            ok: true,
            grant,
            left: [50.0, 500.0, 0.0, 50_000.0],
            wait: [Duration::ZERO; 4],
        }
    }

    #[test]
    fn a_lease_covers_requests_until_it_runs_low() {
        let l = limits();
        let now = Instant::now();
        let lease = lease_sizes(&l, 10);
        assert_eq!(lease, [10, 100, 0, 10_000]);
        let mut ledger = Ledger::new(now);
        let need = need(&l, 20);
        assert!(!ledger.covers(&need));
        let ask = ledger.ask(&need, &lease);
        assert_eq!(
            ask[0],
            Ask {
                need: 1,
                want: 11,
                delta: 0
            }
        );
        assert_eq!(
            ask[1],
            Ask {
                need: 20,
                want: 120,
                delta: 0
            }
        );
        assert_eq!(ask[2], Ask::default());
        ledger.apply(
            &ask,
            &granted([11, 120, 0, 10_001]),
            &Default::default(),
            now,
        );
        assert!(ledger.covers(&need));
        ledger.spend(&cost(&l, 20), now);
        assert_eq!(ledger.held, [10, 100, 0, 9_981]);
        assert!(!ledger.low(&lease));
        for _ in 0..3 {
            ledger.spend(&cost(&l, 20), now);
        }
        assert!(ledger.low(&lease));
    }

    #[test]
    fn debts_are_charged_and_idle_allowance_given_back() {
        let l = limits();
        let now = Instant::now();
        let mut ledger = Ledger::new(now);
        ledger.held = [2, 10, 0, 5];
        ledger.adjust_tokens(&l, -30);
        assert_eq!(ledger.held, [2, -20, 0, -25]);
        let ask = ledger.settle_ask(false).unwrap();
        assert_eq!(ask.map(|a| a.delta), [0, -20, 0, -25]);
        ledger.apply(&ask, &granted([0; 4]), &Default::default(), now);
        assert_eq!(ledger.held, [2, 0, 0, 0]);
        let ask = ledger.settle_ask(true).unwrap();
        ledger.apply(&ask, &granted([0; 4]), &Default::default(), now);
        assert!(ledger.is_settled());
        assert_eq!(ledger.settle_ask(true), None);
    }

    #[test]
    fn a_new_day_forgets_the_old_budget() {
        let now = Instant::now();
        let mut ledger = Ledger::new(now);
        ledger.enter_windows(&["d20261201".into(), "m202612".into()]);
        ledger.held = [0, 0, 7, 7];
        ledger.enter_windows(&["d20261202".into(), "m202612".into()]);
        assert_eq!(ledger.held, [0, 0, 0, 7]);
    }

    #[test]
    fn headers_add_the_store_and_the_hand() {
        let l = limits();
        let now = Instant::now();
        let mut ledger = Ledger::new(now);
        let ask = ledger.ask(&need(&l, 0), &lease_sizes(&l, 10));
        ledger.apply(&ask, &granted([11, 100, 0, 0]), &Default::default(), now);
        let h = ledger.headers(&l, now);
        assert_eq!(h.requests.unwrap().remaining, 61);
        assert_eq!(h.requests.unwrap().reset, Duration::from_millis(23_400));
        assert_eq!(h.tokens.unwrap().remaining, 600);
    }
}
