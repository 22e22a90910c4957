//! Limits one replica enforces on its own: every limit divided by the configured replica
//! count. Used without a shared store, and while the store is unreachable. Pure: the caller
//! brings the clock.

use std::time::{Duration, Instant, SystemTime};

use super::dims::{Dim, Limits, Window, refill, until_full, wait_for, window};
use super::refusal::{Gauge, RateHeaders, Refusal};

/// One client's local buckets and budget counters.
#[derive(Clone, Debug)]
pub struct Local {
    /// Bucket levels for requests and tokens per minute (NaN: full, never used).
    level: [f64; 2],
    at: Instant,
    /// Tokens used in the current day and month window, and those windows.
    used: [u64; 2],
    windows: [String; 2],
}

/// A limit's share for one replica, at least 1.
fn share(cap: u64, divisor: u32) -> u64 {
    (cap / u64::from(divisor.max(1))).max(1)
}

impl Local {
    /// Full buckets, nothing used.
    pub fn new(now: Instant) -> Self {
        Self {
            level: [f64::NAN; 2],
            at: now,
            used: [0; 2],
            windows: Default::default(),
        }
    }

    fn refilled(&self, limits: &Limits, divisor: u32, now: Instant) -> [f64; 2] {
        let elapsed = now.saturating_duration_since(self.at);
        std::array::from_fn(|i| {
            let cap = limits.caps[i].map_or(0, |c| share(c, divisor));
            if self.level[i].is_nan() {
                cap as f64
            } else {
                refill(self.level[i], cap, elapsed)
            }
        })
    }

    /// Admits a request estimated at `estimate` tokens, or says why not.
    pub fn admit(
        &mut self,
        limits: &Limits,
        divisor: u32,
        estimate: u64,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), Refusal> {
        let mut level = self.refilled(limits, divisor, now);
        let need = [1.0, estimate as f64];
        for dim in [Dim::Requests, Dim::Tokens] {
            let i = dim.index();
            if let Some(cap) = limits.cap(dim) {
                let cap = share(cap, divisor);
                if level[i] < need[i] {
                    let retry_after = wait_for(level[i], need[i], cap);
                    return Err(match dim {
                        Dim::Requests => Refusal::Requests {
                            limit: cap,
                            retry_after,
                        },
                        _ => Refusal::Tokens {
                            limit: cap,
                            requested: estimate,
                            retry_after,
                        },
                    });
                }
            }
        }
        for (k, dim) in [Dim::Day, Dim::Month].into_iter().enumerate() {
            if let Some(cap) = limits.cap(dim) {
                let Window { id, left } = window(dim, wall);
                if self.windows[k] != id {
                    self.windows[k] = id;
                    self.used[k] = 0;
                }
                let cap = share(cap, divisor);
                if self.used[k].saturating_add(estimate) > cap {
                    let period = if dim == Dim::Day { "day" } else { "month" };
                    return Err(Refusal::Budget {
                        period,
                        limit: cap,
                        retry_after: left,
                    });
                }
            }
        }
        for (i, n) in need.iter().enumerate() {
            level[i] -= n;
        }
        self.level = level;
        self.at = now;
        for u in &mut self.used {
            *u = u.saturating_add(estimate);
        }
        Ok(())
    }

    /// Adds back (or takes) `tokens`: a request's estimate minus its real usage.
    pub fn adjust_tokens(&mut self, limits: &Limits, divisor: u32, tokens: i64, now: Instant) {
        let level = self.refilled(limits, divisor, now);
        let cap = limits.cap(Dim::Tokens).map_or(0, |c| share(c, divisor)) as f64;
        self.level = [level[0], (level[1] + tokens as f64).min(cap)];
        self.at = now;
        for u in &mut self.used {
            *u = u.saturating_add_signed(-tokens);
        }
    }

    /// The `x-ratelimit-*` view of this replica's share, scaled back to the fleet.
    pub fn headers(&self, limits: &Limits, divisor: u32, now: Instant) -> RateHeaders {
        let level = self.refilled(limits, divisor, now);
        let gauge = |dim: Dim| {
            let cap = limits.cap(dim)?;
            let share = share(cap, divisor);
            let left = level[dim.index()].max(0.0);
            Some(Gauge {
                limit: cap,
                remaining: (left as u64)
                    .saturating_mul(u64::from(divisor.max(1)))
                    .min(cap),
                reset: until_full(left, share),
            })
        };
        RateHeaders {
            requests: gauge(Dim::Requests),
            tokens: gauge(Dim::Tokens),
        }
    }

    /// Buckets full again: the entry holds nothing worth keeping.
    pub fn is_idle(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) > Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replica_gets_its_share() {
        let limits = Limits {
            caps: [Some(60), None, Some(1000), None],
            ..Limits::default()
        };
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut local = Local::new(now);
        for _ in 0..20 {
            local.admit(&limits, 3, 10, now, wall).unwrap();
        }
        let Err(Refusal::Requests {
            limit: 20,
            retry_after,
        }) = local.admit(&limits, 3, 10, now, wall)
        else {
            panic!("the 21st request of a 60/3 share must be refused")
        };
        assert_eq!(retry_after, Duration::from_secs(3));
        let later = now + Duration::from_secs(60);
        for _ in 0..13 {
            local.admit(&limits, 3, 10, later, wall).unwrap();
        }
        assert!(matches!(
            local.admit(&limits, 3, 10, later, wall),
            Err(Refusal::Budget {
                period: "day",
                limit: 333,
                ..
            })
        ));
        local.adjust_tokens(&limits, 3, 100, later);
        assert!(local.admit(&limits, 3, 10, later, wall).is_ok());
    }
}
