//! The HTTPRoute: Gateway API routing from the platform team's Gateway to the Service, with
//! timeouts that outlast the proxy's own, so the route never cuts a stream.

use infra_crds::HttpRoute;
use infra_crds::gateway::httproutes::{
    HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesMatches,
    HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteRulesTimeouts,
    HttpRouteSpec,
};

use super::labels;
use crate::config::{Environment, RouteMatch};

/// Added to the proxy's longest total timeout: the proxy ends a request first, with its own
/// OpenAI-shaped error, and the Gateway never does.
pub const TIMEOUT_MARGIN_SECS: u64 = 10;

/// The HTTPRoute, or `None` when `http_route.enabled` is off.
pub fn http_route(env: &Environment, env_name: &str) -> Option<HttpRoute> {
    let route = &env.http_route;
    let gateway = route.gateway.as_ref().filter(|_| route.enabled)?;
    let timeout = gateway_duration(timeout_secs(env));
    let matches = route
        .paths
        .iter()
        .map(|p| HttpRouteRulesMatches {
            path: Some(HttpRouteRulesMatchesPath {
                r#type: Some(match p.path_type {
                    RouteMatch::PathPrefix => HttpRouteRulesMatchesPathType::PathPrefix,
                    RouteMatch::Exact => HttpRouteRulesMatchesPathType::Exact,
                }),
                value: Some(p.path.clone()),
            }),
            ..Default::default()
        })
        .collect();
    Some(HttpRoute {
        metadata: labels::metadata(env, env_name),
        spec: HttpRouteSpec {
            parent_refs: Some(vec![HttpRouteParentRefs {
                group: Some("gateway.networking.k8s.io".into()),
                kind: Some("Gateway".into()),
                name: gateway.name.as_str().into(),
                namespace: Some(gateway.namespace.as_str().into()),
                section_name: gateway.section_name.as_ref().map(|s| s.as_str().into()),
                ..Default::default()
            }]),
            hostnames: Some(route.hostnames.iter().map(|h| h.as_str().into()).collect()),
            rules: Some(vec![HttpRouteRules {
                matches: Some(matches),
                backend_refs: Some(vec![HttpRouteRulesBackendRefs {
                    name: env.name.as_str().into(),
                    port: Some(i32::from(env.service.port.get())),
                    ..Default::default()
                }]),
                timeouts: Some(HttpRouteRulesTimeouts {
                    request: Some(timeout.clone()),
                    backend_request: Some(timeout),
                }),
                ..Default::default()
            }]),
        },
    })
}

/// The route's request and backend timeouts, in seconds: the proxy's longest total timeout
/// (a request's deadline, fallbacks included), rounded up, plus the margin.
pub fn timeout_secs(env: &Environment) -> u64 {
    env.proxy.longest(|t| t.total).as_secs_ceil() + TIMEOUT_MARGIN_SECS
}

/// A Gateway API duration (GEP-2257: up to four `<1–5 digits><h|m|s|ms>` parts).
fn gateway_duration(secs: u64) -> String {
    const MAX_PART: u64 = 99_999;
    if secs <= MAX_PART {
        return format!("{secs}s");
    }
    let (hours, rest) = (secs / 3600, secs % 3600);
    format!("{}h{}m{}s", hours.min(MAX_PART), rest / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{Duration, Timeouts};

    use super::*;
    use crate::objects::tests::load;

    fn spec(env: &Environment) -> HttpRouteSpec {
        http_route(env, "staging")
            .map(|r| r.spec)
            .unwrap_or_default()
    }

    /// Parses a GEP-2257 duration back into seconds, refusing what the CRD's pattern refuses.
    fn parse(d: &str) -> Option<u64> {
        let (mut total, mut digits, mut parts) = (0, String::new(), 0);
        let mut chars = d.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match (c, chars.peek()) {
                ('m', Some('s')) => {
                    chars.next();
                    0
                }
                ('h', _) => 3600,
                ('m', _) => 60,
                ('s', _) => 1,
                _ => return None,
            };
            if digits.is_empty() || digits.len() > 5 {
                return None;
            }
            total += digits.parse::<u64>().ok()? * unit;
            digits.clear();
            parts += 1;
        }
        (digits.is_empty() && (1..=4).contains(&parts)).then_some(total)
    }

    #[test]
    fn timeouts_outlast_the_longest_proxy_timeout() {
        let mut env = load("staging");
        let mut slow = env.proxy.upstreams[0].clone();
        slow.name = "slow".into();
        slow.timeouts = Some(Timeouts {
            total: Duration::from_millis(1_800_500),
            ..Timeouts::default()
        });
        env.proxy.upstreams.push(slow);
        let rules = spec(&env).rules.unwrap_or_default();
        let t = rules[0].timeouts.clone().unwrap_or_default();
        let request = parse(t.request.as_deref().unwrap_or_default());
        assert_eq!(request, Some(1801 + TIMEOUT_MARGIN_SECS));
        assert_eq!(t.backend_request, t.request);
    }

    #[test]
    fn durations_follow_gep_2257() {
        for secs in [0, 1, 610, 99_999, 100_000, 3_600_000, u64::MAX] {
            let d = gateway_duration(secs);
            let back = parse(&d).unwrap_or_else(|| panic!("{d} does not parse"));
            if secs <= 99_999 * 3600 {
                assert_eq!(back, secs, "{d}");
            }
        }
    }

    #[test]
    fn attaches_to_the_gateway_and_routes_to_the_service_port() {
        let env = load("staging");
        let spec = spec(&env);
        let parent = &spec.parent_refs.unwrap_or_default()[0];
        let gateway = env.http_route.gateway.clone().unwrap();
        assert_eq!(parent.name, gateway.name.as_str());
        assert_eq!(
            parent.namespace.as_deref(),
            Some(gateway.namespace.as_str())
        );
        assert_eq!(
            parent.section_name.as_deref(),
            gateway.section_name.as_ref().map(|s| s.as_str())
        );
        assert_eq!(
            spec.hostnames.unwrap_or_default(),
            ["api.staging.ai.example.com"]
        );
        let rule = &spec.rules.unwrap_or_default()[0];
        let backend = &rule.backend_refs.clone().unwrap_or_default()[0];
        assert_eq!(backend.name, env.name.as_str());
        assert_eq!(backend.port, Some(i32::from(env.service.port.get())));
        let path = rule.matches.clone().unwrap_or_default()[0]
            .path
            .clone()
            .unwrap();
        assert_eq!(path.value.as_deref(), Some("/"));
        assert_eq!(path.r#type, Some(HttpRouteRulesMatchesPathType::PathPrefix));
    }

    #[test]
    fn off_means_no_route() {
        assert!(http_route(&load("production"), "production").is_none());
        let mut env = load("staging");
        env.http_route.enabled = false;
        assert!(http_route(&env, "staging").is_none());
    }
}
