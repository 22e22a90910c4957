//! What a policy limits (requests and tokens per minute, tokens per day and month), the limits
//! of one client, and the arithmetic of their windows. Pure: no clocks read here.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use ai_api_proxy_config::KeyPolicy;

/// One limited quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Requests per minute: a bucket refilling continuously.
    Requests,
    /// Tokens per minute: a bucket refilling continuously.
    Tokens,
    /// Tokens per UTC calendar day: a counter.
    Day,
    /// Tokens per UTC calendar month: a counter.
    Month,
}

impl Dim {
    /// Every dimension, in the order of the `[_; 4]` arrays used throughout.
    pub const ALL: [Dim; 4] = [Dim::Requests, Dim::Tokens, Dim::Day, Dim::Month];

    /// Index into `[_; 4]` arrays.
    pub fn index(self) -> usize {
        match self {
            Dim::Requests => 0,
            Dim::Tokens => 1,
            Dim::Day => 2,
            Dim::Month => 3,
        }
    }

    /// A bucket that refills per minute (the others are calendar budgets).
    pub fn is_rate(self) -> bool {
        matches!(self, Dim::Requests | Dim::Tokens)
    }
}

/// The limits of one client, resolved from its [`KeyPolicy`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Cap per dimension (`None`: unlimited), indexed by [`Dim::index`].
    pub caps: [Option<u64>; 4],
    /// Models the client may use; `None`: all.
    pub models: Option<HashSet<String>>,
}

impl Limits {
    /// From configuration.
    pub fn from_policy(p: &KeyPolicy) -> Self {
        Self {
            caps: [
                p.requests_per_minute,
                p.tokens_per_minute,
                p.tokens_per_day,
                p.tokens_per_month,
            ],
            models: p.models.as_ref().map(|m| m.iter().cloned().collect()),
        }
    }

    /// Cap of `dim`.
    pub fn cap(&self, dim: Dim) -> Option<u64> {
        self.caps[dim.index()]
    }

    /// Nothing is counted for this client (a model list alone needs no counters).
    pub fn counts_nothing(&self) -> bool {
        self.caps.iter().all(Option::is_none)
    }

    /// May this client use `model`?
    pub fn allows(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }
}

/// Milliseconds of a minute: buckets refill `cap` per this.
pub const MINUTE_MS: f64 = 60_000.0;

/// A bucket's level after `elapsed` at `cap` per minute, never above `cap`.
pub fn refill(level: f64, cap: u64, elapsed: Duration) -> f64 {
    let cap = cap as f64;
    (level + elapsed.as_secs_f64() * 1000.0 * cap / MINUTE_MS).min(cap)
}

/// How long until a bucket at `level` holds `need` (zero if it does).
pub fn wait_for(level: f64, need: f64, cap: u64) -> Duration {
    if level >= need || cap == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(((need - level) * MINUTE_MS / cap as f64 / 1000.0).min(1e9))
}

/// How long until a bucket at `level` is full again (OpenAI's `x-ratelimit-reset-*`).
pub fn until_full(level: f64, cap: u64) -> Duration {
    wait_for(level, cap as f64, cap)
}

/// A UTC calendar window a budget counts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its name in store keys: `d20261202` or `m202612`.
    pub id: String,
    /// Time left until the next window starts.
    pub left: Duration,
}

/// The day or month window `now` falls in (`dim` is [`Dim::Day`] or [`Dim::Month`]).
pub fn window(dim: Dim, now: SystemTime) -> Window {
    // RFC 3339 in UTC, e.g. `2026-12-02T04:10:00Z`: the calendar without calendar code.
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let (y, m, d) = (&stamp[0..4], &stamp[5..7], &stamp[8..10]);
    let (id, next) = if dim == Dim::Month {
        let (year, month) = match m.parse::<u32>().unwrap_or(1) {
            12 => (y.parse::<u32>().unwrap_or(1970) + 1, 1),
            n => (y.parse().unwrap_or(1970), n + 1),
        };
        (
            format!("m{y}{m}"),
            format!("{year:04}-{month:02}-01T00:00:00Z"),
        )
    } else {
        let start = humantime::parse_rfc3339(&format!("{y}-{m}-{d}T00:00:00Z")).unwrap_or(now);
        (
            format!("d{y}{m}{d}"),
            humantime::format_rfc3339_seconds(start + Duration::from_secs(86_400)).to_string(),
        )
    };
    let next = humantime::parse_rfc3339(&next).unwrap_or(now);
    Window {
        id,
        left: next.duration_since(now).unwrap_or_default(),
    }
}

/// A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1s`, `6m0s`, `1h2m3s`.
pub fn reset_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let s = rest as f64 / 1000.0;
    let s = format!("{s:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn windows_follow_the_utc_calendar() {
        let w = window(Dim::Day, at("2026-12-02T23:59:30Z"));
        assert_eq!(
            w,
            Window {
                id: "d20261202".into(),
                left: Duration::from_secs(30)
            }
        );
        let w = window(Dim::Month, at("2026-12-31T23:00:00Z"));
        assert_eq!(
            w,
            Window {
                id: "m202612".into(),
                left: Duration::from_secs(3600)
            }
        );
        let w = window(Dim::Month, at("2027-02-28T00:00:00Z"));
        assert_eq!(w.id, "m202702");
        assert_eq!(w.left, Duration::from_secs(86_400));
    }

    #[test]
    fn buckets_refill_per_minute() {
        assert_eq!(refill(0.0, 60, Duration::from_secs(1)), 1.0);
        assert_eq!(refill(59.5, 60, Duration::from_secs(10)), 60.0);
        assert_eq!(wait_for(0.0, 1.0, 60), Duration::from_secs(1));
        assert_eq!(wait_for(2.0, 1.0, 60), Duration::ZERO);
        assert_eq!(until_full(30.0, 60), Duration::from_secs(30));
    }

    #[test]
    fn reset_reads_like_openai() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_secs(1)), "1s");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_secs(3723)), "1h2m3s");
    }
}
