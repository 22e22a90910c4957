//! Consistency rules of a [`ProxyConfig`] that its types alone cannot express.

use std::collections::BTreeSet;

use crate::report::{Problem, Report};
use crate::rules::check_key_source;
pub use crate::rules::{is_dns_label, is_dns_subdomain};
use crate::url::{base_url_ok, is_origin};
use crate::{ClientAuth, ProxyConfig, Timeouts, UpstreamKind};

impl ProxyConfig {
    /// Checks every rule and returns all broken ones, not just the first.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut r = Report::default();
        r.check(self.port != 0, "port", || {
            "must be between 1 and 65535, got 0".into()
        });
        r.check(self.admin_port != 0, "admin_port", || {
            "must be between 1 and 65535, got 0".into()
        });
        r.check(
            self.admin_port != self.port,
            "admin_port",
            || format!(
                "must differ from port ({}): health, readiness and metrics never share the API port",
                self.port
            ),
        );
        self.check_endpoints(&mut r);
        r.check(self.max_body_bytes > 0, "max_body_bytes", || {
            "must be at least 1 byte".into()
        });
        self.check_limits(&mut r);
        check_timeouts(&mut r, "timeouts", &self.timeouts);
        r.check(
            (1..=10).contains(&self.retry.max_attempts),
            "retry.max_attempts",
            || format!("must be between 1 and 10, got {}", self.retry.max_attempts),
        );
        r.check(
            self.retry.initial_backoff <= self.retry.max_backoff,
            "retry.initial_backoff",
            || {
                format!(
                    "must not exceed retry.max_backoff ({}), got {}",
                    self.retry.max_backoff, self.retry.initial_backoff
                )
            },
        );
        r.check(
            self.circuit_breaker.failure_threshold >= 1,
            "circuit_breaker.failure_threshold",
            || "must be at least 1".into(),
        );
        r.check(
            !self.shutdown.drain_timeout.get().is_zero(),
            "shutdown.drain_timeout",
            || "must be longer than 0s, or in-flight streams are cut at every rollout".into(),
        );
        match &self.auth {
            Some(ClientAuth::ApiKeys { keys }) => check_key_source(&mut r, "auth.api_keys.keys", keys),
            Some(ClientAuth::Anonymous) => {}
            None => r.check(
                false,
                "auth",
                || "is required: a client key file (`auth.api_keys.keys`), or `\"anonymous\"` to serve \
                 anyone with the upstream key (explicitly)".into(),
            ),
        }
        r.check(
            self.rate_limit.requests_per_second >= 1,
            "rate_limit.requests_per_second",
            || "must be at least 1".into(),
        );
        r.check(self.rate_limit.burst >= 1, "rate_limit.burst", || {
            "must be at least 1".into()
        });
        r.check(
            self.rate_limit.max_in_flight >= 1,
            "rate_limit.max_in_flight",
            || "must be at least 1".into(),
        );
        for (i, origin) in self.cors.allowed_origins.iter().enumerate() {
            let path = format!("cors.allowed_origins[{i}]");
            r.check(origin != "*", &path, || {
                "`*` would let any web page spend the upstream key; list exact origins".into()
            });
            if origin != "*" {
                r.check(is_origin(origin), &path, || format!("expected an origin like `https://app.example.com` (scheme and host, no path), got `{origin}`"));
            }
        }
        self.check_upstreams(&mut r);
        self.check_routes(&mut r);
        if let Some(egress) = &self.egress {
            crate::egress::check_egress(&mut r, egress);
        }
        crate::policy::check(&mut r, self);
        crate::failover::check(&mut r, self);
        crate::telemetry::check(&mut r, self);
        r.finish()
    }

    fn check_endpoints(&self, r: &mut Report) {
        let e = &self.endpoints;
        for (key, path) in [
            ("health", &e.health),
            ("ready", &e.ready),
            ("metrics", &e.metrics),
        ] {
            r.check(
                path.starts_with('/')
                    && !path.starts_with("/v1/")
                    && path != "/v1"
                    && !path.contains(char::is_whitespace),
                format!("endpoints.{key}"),
                || format!("expected an absolute path outside /v1/, like `/{key}`, got `{path}`"),
            );
        }
        let distinct: BTreeSet<_> = [&e.health, &e.ready, &e.metrics].into_iter().collect();
        r.check(distinct.len() == 3, "endpoints", || {
            "health, ready and metrics must be three different paths".into()
        });
    }

    fn check_limits(&self, r: &mut Report) {
        let l = &self.limits;
        r.check(l.max_connections >= 1, "limits.max_connections", || {
            "must be at least 1".into()
        });
        for (key, d) in [
            ("header_read_timeout", l.header_read_timeout),
            ("keep_alive_timeout", l.keep_alive_timeout),
            ("body_read_idle", l.body_read_idle),
            ("body_read_total", l.body_read_total),
            ("http2.keep_alive_interval", l.http2.keep_alive_interval),
        ] {
            r.check(!d.get().is_zero(), format!("limits.{key}"), || {
                "must be longer than 0s".into()
            });
        }
        r.check(
            l.body_read_idle <= l.body_read_total,
            "limits.body_read_idle",
            || {
                format!(
                    "must not exceed limits.body_read_total ({}), got {}",
                    l.body_read_total, l.body_read_idle
                )
            },
        );
        r.check(
            l.body_budget_bytes >= self.max_body_bytes,
            "limits.body_budget_bytes",
            || {
                format!(
                    "must be at least max_body_bytes ({}), got {}: the largest body must fit",
                    self.max_body_bytes, l.body_budget_bytes
                )
            },
        );
        r.check(
            (8 * 1024..=1024 * 1024).contains(&l.max_header_bytes),
            "limits.max_header_bytes",
            || {
                format!(
                    "must be between 8192 and 1048576, got {}",
                    l.max_header_bytes
                )
            },
        );
        r.check(
            l.http2.max_concurrent_streams >= 1,
            "limits.http2.max_concurrent_streams",
            || "must be at least 1".into(),
        );
        for (key, n) in [
            ("stream_window_bytes", l.http2.stream_window_bytes),
            ("connection_window_bytes", l.http2.connection_window_bytes),
        ] {
            r.check(
                (65_535..=(1 << 31) - 1).contains(&n),
                format!("limits.http2.{key}"),
                || format!("must be between 65535 and 2147483647 (HTTP/2), got {n}"),
            );
        }
    }

    fn check_upstreams(&self, r: &mut Report) {
        r.check(!self.upstreams.is_empty(), "upstreams", || {
            "at least one upstream is required".into()
        });
        r.each_once(
            "upstreams",
            ".name",
            "upstream name",
            self.upstreams.iter().map(|u| u.name.as_str()),
        );
        for (i, u) in self.upstreams.iter().enumerate() {
            let at = format!("upstreams[{i}]");
            r.check(is_dns_label(&u.name), format!("{at}.name"), || {
                format!(
                    "expected a lowercase name of letters, digits and `-` (at most 63), got `{}`",
                    u.name
                )
            });
            r.check(
                base_url_ok(&u.base_url),
                format!("{at}.base_url"),
                || format!("expected an http(s) URL with a host and no query, like `https://api.openai.com/v1`, got `{}`", u.base_url),
            );
            check_key_source(r, &format!("{at}.api_key"), &u.api_key);
            for name in u.headers.keys() {
                let lower = name.to_ascii_lowercase();
                r.check(
                    !matches!(
                        lower.as_str(),
                        "authorization"
                            | "proxy-authorization"
                            | "host"
                            | "content-length"
                            | "transfer-encoding"
                            | "connection"
                            | "openai-organization"
                            | "openai-project"
                            | "x-api-key"
                    ),
                    format!("{at}.headers.{name}"),
                    || {
                        "this header is set by the proxy (the upstream key goes in `api_key`, \
                         sent as `Authorization` or `x-api-key` by `kind`; OpenAI-Organization \
                         and OpenAI-Project in `organization` and `project`)"
                            .into()
                    },
                );
                r.check(
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)),
                    format!("{at}.headers.{name}"),
                    || "expected a header name of letters, digits, `-` and `_`".into(),
                );
            }
            if let Some(t) = &u.timeouts {
                check_timeouts(r, &format!("{at}.timeouts"), t);
            }
            if let Some(tls) = &u.tls {
                crate::egress::check_tls(r, &format!("{at}.tls"), &u.base_url, tls);
            }
            for (key, value) in [("organization", &u.organization), ("project", &u.project)] {
                if let Some(v) = value {
                    r.check(
                        u.kind == UpstreamKind::Openai,
                        format!("{at}.{key}"),
                        || "an OpenAI header: an `anthropic` upstream has no organization or project".into(),
                    );
                    r.check(
                        !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic()),
                        format!("{at}.{key}"),
                        || format!("expected an id like `org-…` / `proj_…` (printable, no spaces), got `{v}`"),
                    );
                }
            }
        }
    }

    fn check_routes(&self, r: &mut Report) {
        let upstreams: BTreeSet<_> = self.upstreams.iter().map(|u| u.name.as_str()).collect();
        let known = |name: &str| upstreams.contains(name);
        let names = upstreams.iter().copied().collect::<Vec<_>>().join(", ");
        r.check(!self.models.is_empty(), "models", || {
            "at least one model is required".into()
        });
        r.each_once(
            "models",
            ".name",
            "model",
            self.models.iter().map(|m| m.name.as_str()),
        );
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("models[{i}]");
            r.check(
                !m.name.is_empty() && m.name.len() <= 256 && !m.name.contains(char::is_whitespace),
                format!("{at}.name"),
                || format!("expected a model name without spaces, got `{}`", m.name),
            );
            r.check(!m.upstreams.is_empty(), format!("{at}.upstreams"), || {
                "at least one upstream is required".into()
            });
            for (j, u) in m.upstreams.iter().enumerate() {
                r.check(known(u), format!("{at}.upstreams[{j}]"), || {
                    format!("no upstream named `{u}` (defined: {names})")
                });
            }
            // One kind per model: a request is translated once, for that kind, and a fallback
            // never answers in another API than the first upstream would have.
            let kinds: Vec<_> = m
                .upstreams
                .iter()
                .filter_map(|name| self.upstreams.iter().find(|u| &u.name == name))
                .map(|u| u.kind)
                .collect();
            if let Some(first) = kinds.first() {
                r.check(
                    kinds.iter().all(|k| k == first),
                    format!("{at}.upstreams"),
                    || "the upstreams of one model must all be of the same `kind` (openai or anthropic)".into(),
                );
            }
        }
        for (i, p) in self.passthrough.iter().enumerate() {
            let at = format!("passthrough[{i}]");
            r.check(
                p.path.starts_with("/v1/") && p.path.len() > 4 && !p.path.contains(['?', '#', ' ']),
                format!("{at}.path"),
                || {
                    format!(
                        "expected a path under /v1/, like `/v1/moderations`, got `{}`",
                        p.path
                    )
                },
            );
            r.check(known(&p.upstream), format!("{at}.upstream"), || {
                format!("no upstream named `{}` (defined: {names})", p.upstream)
            });
        }
    }
}

fn check_timeouts(r: &mut Report, at: &str, t: &Timeouts) {
    for (key, d) in [
        ("connect", t.connect),
        ("first_byte", t.first_byte),
        ("idle", t.idle),
        ("total", t.total),
    ] {
        r.check(!d.get().is_zero(), format!("{at}.{key}"), || {
            "must be longer than 0s".into()
        });
    }
    r.check(t.connect <= t.first_byte, format!("{at}.connect"), || {
        format!(
            "must not exceed {at}.first_byte ({}), got {}",
            t.first_byte, t.connect
        )
    });
    r.check(t.first_byte <= t.total, format!("{at}.first_byte"), || {
        format!(
            "must not exceed {at}.total ({}), got {}",
            t.total, t.first_byte
        )
    });
    r.check(t.idle <= t.total, format!("{at}.idle"), || {
        format!("must not exceed {at}.total ({}), got {}", t.total, t.idle)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeySource, ModelRoute, SecretRef, Upstream};

    fn seed() -> ProxyConfig {
        ProxyConfig {
            upstreams: vec![Upstream {
                name: "holysheep".into(),
                base_url: "https://api.holysheep.ai/v1".into(),
                api_key: KeySource::Secret(SecretRef {
                    name: "holysheep-api-key".into(),
                    key: "api-key".into(),
                }),
                headers: Default::default(),
                timeouts: None,
                organization: None,
                project: None,
                tls: None,
                kind: UpstreamKind::Openai,
            }],
            models: vec![ModelRoute {
                name: "gpt-4.1".into(),
                upstreams: vec!["holysheep".into()],
                on_stream_failure: Default::default(),
            }],
            auth: Some(ClientAuth::Anonymous),
            ..ProxyConfig::default()
        }
    }

    fn paths(c: &ProxyConfig) -> Vec<String> {
        c.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    #[test]
    fn the_seed_shape_is_valid() {
        assert_eq!(seed().validate(), Ok(()));
    }

    #[test]
    fn unknown_upstream_in_a_route_is_named() {
        let mut c = seed();
        c.models[0].upstreams.push("openai".into());
        let problems = c.validate().unwrap_err();
        assert_eq!(problems[0].path, "models[0].upstreams[1]");
        assert!(
            problems[0]
                .message
                .contains("no upstream named `openai` (defined: holysheep)")
        );
    }

    #[test]
    fn a_model_has_upstreams_of_one_kind_and_anthropic_has_no_openai_headers() {
        let mut c = seed();
        let mut claude = c.upstreams[0].clone();
        claude.name = "claude".into();
        claude.kind = UpstreamKind::Anthropic;
        claude.organization = Some("org-x".into());
        claude.headers.insert("X-Api-Key".into(), "k".into());
        c.upstreams.push(claude);
        c.models[0].upstreams.push("claude".into());
        assert_eq!(
            paths(&c),
            [
                "upstreams[1].headers.X-Api-Key",
                "upstreams[1].organization",
                "models[0].upstreams"
            ]
        );
        let json = serde_json::to_string(&c.upstreams[1]).unwrap();
        assert!(json.contains(r#""kind":"anthropic""#), "{json}");
        assert!(
            !serde_json::to_string(&c.upstreams[0])
                .unwrap()
                .contains("kind")
        );
    }

    #[test]
    fn timeouts_must_nest() {
        let mut c = seed();
        c.timeouts.first_byte = crate::Duration::from_secs(700);
        assert_eq!(paths(&c), ["timeouts.first_byte"]);
    }

    #[test]
    fn cors_wildcard_is_refused() {
        let mut c = seed();
        c.cors.allowed_origins = vec![
            "*".into(),
            "https://app.example.com".into(),
            "https://x.example.com/path".into(),
        ];
        assert_eq!(
            paths(&c),
            ["cors.allowed_origins[0]", "cors.allowed_origins[2]"]
        );
    }

    #[test]
    fn authorization_cannot_be_an_extra_header() {
        let mut c = seed();
        c.upstreams[0]
            .headers
            .insert("Authorization".into(), "x".into());
        assert_eq!(paths(&c), ["upstreams[0].headers.Authorization"]);
    }

    #[test]
    fn auth_is_required() {
        let mut c = seed();
        c.auth = None;
        assert_eq!(paths(&c), ["auth"]);
        let json = c.to_json();
        assert!(!json.contains("\"auth\""), "{json}");
        assert!(ProxyConfig::from_json(&json).is_err());
    }

    #[test]
    fn limits_are_checked() {
        let mut c = seed();
        c.admin_port = c.port;
        c.limits.body_budget_bytes = c.max_body_bytes - 1;
        c.limits.body_read_idle = crate::Duration::from_secs(100);
        c.limits.http2.stream_window_bytes = 10;
        assert_eq!(
            paths(&c),
            [
                "admin_port",
                "limits.body_read_idle",
                "limits.body_budget_bytes",
                "limits.http2.stream_window_bytes"
            ]
        );
    }

    #[test]
    fn json_round_trip_is_identity() {
        let c = seed();
        assert_eq!(ProxyConfig::from_json(&c.to_json()).unwrap(), c);
    }
}
