//! Circuit breaker per upstream: after N consecutive failures stop sending there, then let a
//! single probe through once `open_for` has passed; its outcome closes or reopens the breaker.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Breaker state, as exported in metrics (0 closed, 1 open, 2 half-open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Requests flow.
    Closed,
    /// Requests are refused until the instant.
    Open(Instant),
    /// One probe is in flight since the instant.
    HalfOpen(Instant),
}

impl State {
    /// The metric value.
    pub fn code(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open(_) => 1,
            Self::HalfOpen(_) => 2,
        }
    }
}

/// What one attempt says about an upstream's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// It answered (a 429 included).
    Good,
    /// Transport error, timeout or 5xx.
    Bad,
    /// Nothing about the upstream (it refused our key).
    Unknown,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    state: State,
}

/// A consecutive-failure circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    /// Fast path: false while closed with no recent failure, so healthy traffic takes no lock.
    troubled: AtomicBool,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            troubled: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                failures: 0,
                state: State::Closed,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a request go out now? `Err` holds how long until the next probe.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        if !self.troubled.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Ok(()),
            State::Open(until) if now >= until => {
                inner.state = State::HalfOpen(now);
                Ok(())
            }
            State::Open(until) => Err(until - now),
            // A probe that never reported (its client went away) is replaced after `open_for`.
            State::HalfOpen(since) if now >= since + self.open_for => {
                inner.state = State::HalfOpen(now);
                Ok(())
            }
            State::HalfOpen(since) => Err(since + self.open_for - now),
        }
    }

    /// Records an attempt's outcome; returns the new state if it changed.
    pub fn record(&self, health: Health) -> Option<State> {
        match health {
            Health::Good => self.on_success(),
            Health::Bad => self.on_failure(),
            Health::Unknown => None,
        }
    }

    /// Records a success; returns the new state if it changed.
    fn on_success(&self) -> Option<State> {
        if !self.troubled.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.lock();
        inner.failures = 0;
        self.troubled.store(false, Ordering::Release);
        let changed = inner.state != State::Closed;
        inner.state = State::Closed;
        changed.then_some(State::Closed)
    }

    /// Records a failure; returns the new state if it changed.
    fn on_failure(&self) -> Option<State> {
        let mut inner = self.lock();
        self.troubled.store(true, Ordering::Release);
        inner.failures = inner.failures.saturating_add(1);
        let reopen = match inner.state {
            State::HalfOpen(_) => true,
            State::Closed => inner.failures >= self.threshold,
            State::Open(_) => false,
        };
        if reopen {
            inner.state = State::Open(Instant::now() + self.open_for);
            return Some(inner.state);
        }
        None
    }

    /// The current state.
    #[cfg(test)]
    pub fn state(&self) -> State {
        self.lock().state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_later() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.try_acquire().is_ok());
        assert_eq!(b.on_failure(), None);
        assert!(matches!(b.on_failure(), Some(State::Open(_))));
        assert!(b.try_acquire().is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.try_acquire().is_ok(), "probe");
        assert!(b.try_acquire().is_err(), "only one probe");
        assert!(matches!(b.on_failure(), Some(State::Open(_))));
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.try_acquire().is_ok());
        assert_eq!(b.on_success(), Some(State::Closed));
        assert!(b.try_acquire().is_ok());
        assert_eq!(b.state().code(), 0);
    }
}
