//! Why a policy refused a request, in OpenAI's terms, and the `x-ratelimit-*` headers every
//! answer carries.

use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use super::dims::reset_text;

/// A request a policy does not let through.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The key may not use this model.
    #[error("This API key is not allowed to use the model `{0}`.")]
    ModelNotAllowed(String),
    /// Requests per minute used up.
    #[error("Rate limit reached for requests per minute (RPM): limit {limit}. Please try again in {}.", reset_text(*.retry_after))]
    Requests {
        /// The limit.
        limit: u64,
        /// Until one request is available again.
        retry_after: Duration,
    },
    /// Tokens per minute used up.
    #[error("Rate limit reached for tokens per minute (TPM): limit {limit}, requested {requested}. Please try again in {}.", reset_text(*.retry_after))]
    Tokens {
        /// The limit.
        limit: u64,
        /// The request's estimate.
        requested: u64,
        /// Until that many tokens are available again.
        retry_after: Duration,
    },
    /// One request may use more tokens than a whole minute's limit: it can never pass.
    #[error(
        "Request too large: it may use up to {requested} tokens, more than the limit of {limit} tokens per minute. Lower `max_tokens` or the prompt."
    )]
    TooLarge {
        /// The limit.
        limit: u64,
        /// The request's estimate.
        requested: u64,
    },
    /// A daily or monthly token budget is spent.
    #[error("You exceeded your token budget for this {period} ({limit} tokens). It resets in {}.", reset_text(*.retry_after))]
    Budget {
        /// `day` or `month`.
        period: &'static str,
        /// The budget.
        limit: u64,
        /// Until the window ends.
        retry_after: Duration,
    },
    /// The shared store is unreachable and the environment fails closed.
    #[error("Rate limits cannot be checked right now. Please retry shortly.")]
    StoreUnavailable,
}

impl Refusal {
    /// The HTTP status. Exhaustive on purpose.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::Requests { .. }
            | Self::Tokens { .. }
            | Self::TooLarge { .. }
            | Self::Budget { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ModelNotAllowed(_) => "invalid_request_error",
            Self::Requests { .. } => "requests",
            Self::Tokens { .. } | Self::TooLarge { .. } => "tokens",
            Self::Budget { .. } => "insufficient_quota",
            Self::StoreUnavailable => "server_error",
        }
    }

    /// OpenAI's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::Requests { .. } | Self::Tokens { .. } | Self::TooLarge { .. } => {
                "rate_limit_exceeded"
            }
            Self::Budget { .. } => "insufficient_quota",
            Self::StoreUnavailable => "rate_limiter_unavailable",
        }
    }

    /// The `reason` label of the refusals metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::Requests { .. } => "requests",
            Self::Tokens { .. } => "tokens",
            Self::TooLarge { .. } => "too_large",
            Self::Budget { .. } => "budget",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// OpenAI's `error.param`.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::ModelNotAllowed(_) => Some("model"),
            Self::TooLarge { .. } => Some("max_tokens"),
            Self::Requests { .. }
            | Self::Tokens { .. }
            | Self::Budget { .. }
            | Self::StoreUnavailable => None,
        }
    }

    /// The `x-ratelimit-*` headers of the refusal: the limit that refused, nothing remaining.
    pub fn headers(&self) -> RateHeaders {
        let spent = |limit: u64, reset: Duration| {
            Some(Gauge {
                limit,
                remaining: 0,
                reset,
            })
        };
        match self {
            Self::Requests { limit, retry_after } => RateHeaders {
                requests: spent(*limit, *retry_after),
                tokens: None,
            },
            Self::Tokens {
                limit, retry_after, ..
            } => RateHeaders {
                requests: None,
                tokens: spent(*limit, *retry_after),
            },
            Self::ModelNotAllowed(_)
            | Self::TooLarge { .. }
            | Self::Budget { .. }
            | Self::StoreUnavailable => RateHeaders::default(),
        }
    }

    /// How long the client should wait (`Retry-After`), if retrying can help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Requests { retry_after, .. }
            | Self::Tokens { retry_after, .. }
            | Self::Budget { retry_after, .. } => Some(*retry_after),
            Self::StoreUnavailable => Some(Duration::from_secs(1)),
            Self::ModelNotAllowed(_) | Self::TooLarge { .. } => None,
        }
    }
}

/// Every `x-ratelimit-*` header an answer may carry (browsers see them through CORS).
pub const RATE_HEADERS: [&str; 6] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// One rate limit's state for the `x-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gauge {
    /// The limit per minute.
    pub limit: u64,
    /// What is left of it now, across the fleet as far as this replica knows.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// What an answer tells the client about its rate limits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateHeaders {
    /// Requests per minute.
    pub requests: Option<Gauge>,
    /// Tokens per minute.
    pub tokens: Option<Gauge>,
}

impl RateHeaders {
    /// OpenAI's header names and values, for the limits the client has.
    pub fn pairs(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(6);
        for (name, gauge) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(g) = gauge else { continue };
            for (what, value) in [
                ("limit", HeaderValue::from(g.limit)),
                ("remaining", HeaderValue::from(g.remaining)),
                (
                    "reset",
                    HeaderValue::from_str(&reset_text(g.reset))
                        .unwrap_or(HeaderValue::from_static("0s")),
                ),
            ] {
                if let Ok(header) = HeaderName::try_from(format!("x-ratelimit-{what}-{name}")) {
                    out.push((header, value));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_fields() {
        let r = Refusal::Budget {
            period: "day",
            limit: 1000,
            retry_after: Duration::from_secs(90),
        };
        assert_eq!(
            (r.status().as_u16(), r.kind(), r.code()),
            (429, "insufficient_quota", "insufficient_quota")
        );
        assert_eq!(
            r.to_string(),
            "You exceeded your token budget for this day (1000 tokens). It resets in 1m30s."
        );
        let r = Refusal::ModelNotAllowed("gpt-4o".into());
        assert_eq!(
            (r.status().as_u16(), r.code(), r.param()),
            (403, "model_not_allowed", Some("model"))
        );
        let r = Refusal::Requests {
            limit: 60,
            retry_after: Duration::from_millis(400),
        };
        assert_eq!(r.code(), "rate_limit_exceeded");
        assert_eq!(r.retry_after(), Some(Duration::from_millis(400)));
    }

    #[test]
    fn headers_name_every_limit() {
        let h = RateHeaders {
            requests: Some(Gauge {
                limit: 60,
                remaining: 59,
                reset: Duration::from_secs(1),
            }),
            tokens: None,
        };
        let pairs: Vec<_> = h
            .pairs()
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                "x-ratelimit-limit-requests: 60",
                "x-ratelimit-remaining-requests: 59",
                "x-ratelimit-reset-requests: 1s"
            ]
        );
    }
}
