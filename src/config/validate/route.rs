//! The HTTPRoute: a parent Gateway, hostnames and paths the Gateway API accepts (its CRD's
//! limits and CEL rules, checked here so the API server never has to refuse them).

use std::collections::BTreeMap;

use super::Report;
use crate::config::Environment;

/// The Gateway API's limits on one route (v1 CRD): hostnames, and matches in one rule.
const MAX_HOSTNAMES: usize = 16;
const MAX_MATCHES: usize = 64;
const MAX_PATH_LEN: usize = 1024;

/// Parent Gateway, hostnames (each once, at most 16), and paths (absolute, normalized, each once).
pub(super) fn http_route(r: &mut Report, env: &Environment) {
    let route = &env.http_route;
    if !route.enabled {
        return;
    }
    r.check(route.gateway.is_some(), "http_route.gateway", || {
        "the HTTPRoute is enabled but attaches to no Gateway: expected \
         `gateway = { name = \"…\", namespace = \"…\" }` (and `section_name` for one listener)"
            .into()
    });
    r.check(!route.hostnames.is_empty(), "http_route.hostnames", || {
        "empty, so the route would take every host of the Gateway: expected the host names it \
         serves, like `[\"api.example.com\"]`"
            .into()
    });
    r.check(
        route.hostnames.len() <= MAX_HOSTNAMES,
        "http_route.hostnames",
        || {
            format!(
                "{} host names: the Gateway API allows at most {MAX_HOSTNAMES} per route",
                route.hostnames.len()
            )
        },
    );
    r.each_once(
        "http_route.hostnames",
        "",
        "host",
        route.hostnames.iter().map(|h| h.as_str()),
    );
    for (i, host) in route.hostnames.iter().enumerate() {
        r.check(
            host.as_str().parse::<std::net::IpAddr>().is_err(),
            format!("http_route.hostnames[{i}]"),
            || format!("`{host}` is an IP address: the Gateway API routes host names only"),
        );
    }
    r.check(!route.paths.is_empty(), "http_route.paths", || {
        "empty: expected at least one, like `{ path = \"/\" }`".into()
    });
    r.check(route.paths.len() <= MAX_MATCHES, "http_route.paths", || {
        format!(
            "{} paths: the Gateway API allows at most {MAX_MATCHES} matches per rule",
            route.paths.len()
        )
    });
    let mut paths = BTreeMap::new();
    for (i, p) in route.paths.iter().enumerate() {
        let at = format!("http_route.paths[{i}].path");
        if let Err(why) = path_ok(&p.path) {
            r.push(&at, format!("got `{}`: {why}", p.path));
        }
        if let Some(first) = paths.insert((p.path.as_str(), p.path_type), i) {
            paths.insert((p.path.as_str(), p.path_type), first);
            r.push(
                at,
                format!(
                    "`{}` is also http_route.paths[{first}]: expected each path once",
                    p.path
                ),
            );
        }
    }
}

/// A path the Gateway API accepts for `Exact` and `PathPrefix` (the CRD's CEL rules).
fn path_ok(path: &str) -> Result<(), String> {
    let expected = "expected an absolute, normalized path like `/` or `/v1`";
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        return Err(format!(
            "{expected}, starting with `/`, at most {MAX_PATH_LEN} characters"
        ));
    }
    if let Some(bad) = ["//", "/./", "/../", "%2f", "%2F", "#"]
        .into_iter()
        .find(|s| path.contains(s))
    {
        return Err(format!("{expected}, without `{bad}`"));
    }
    if path.ends_with("/.") || path.ends_with("/..") {
        return Err(format!("{expected}, not ending in `/.` or `/..`"));
    }
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let escape = b.get(i + 1..i + 3).unwrap_or_default();
            if escape.len() != 2 || !escape.iter().all(u8::is_ascii_hexdigit) {
                return Err(format!("{expected}: `%` must start an escape like `%20`"));
            }
            i += 3;
        } else if b[i].is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&b[i]) {
            i += 1;
        } else {
            return Err(format!(
                "{expected}: `{}` is not allowed in a path (escape it with %)",
                char::from(b[i])
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::path_ok;
    use crate::config::validate::check;
    use crate::config::{Hostname, RoutePath};
    use crate::objects::tests::load;

    /// The problems' paths and messages, one string each.
    fn problems(env: &crate::config::Environment) -> Vec<String> {
        check(env)
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn a_route_needs_a_gateway_and_hosts() {
        let mut env = load("staging");
        env.http_route.gateway = None;
        env.http_route.hostnames.clear();
        let p = problems(&env);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with(
                "http_route.gateway: the HTTPRoute is enabled but attaches to no Gateway"
            ),
            "{p:#?}"
        );
        assert!(p[1].starts_with("http_route.hostnames: empty"), "{p:#?}");
        env.http_route.enabled = false;
        assert_eq!(problems(&env), Vec::<String>::new(), "off: not checked");
    }

    #[test]
    fn hosts_and_paths_are_each_given_once_and_valid() {
        let mut env = load("staging");
        let host = Hostname::try_from("api.staging.ai.example.com".to_owned()).unwrap();
        env.http_route.hostnames.push(host);
        env.http_route.paths.push(RoutePath {
            path: "/v1/../admin".into(),
            path_type: Default::default(),
        });
        env.http_route.paths.push(env.http_route.paths[0].clone());
        env.http_route
            .hostnames
            .push(Hostname::try_from("10.0.0.1".to_owned()).unwrap());
        assert_eq!(
            problems(&env),
            [
                "http_route.hostnames[1]: `api.staging.ai.example.com` is also http_route.hostnames[0]: expected each host once",
                "http_route.hostnames[2]: `10.0.0.1` is an IP address: the Gateway API routes host names only",
                "http_route.paths[1].path: got `/v1/../admin`: expected an absolute, normalized path like `/` or `/v1`, without `/../`",
                "http_route.paths[2].path: `/` is also http_route.paths[0]: expected each path once",
            ]
        );
    }

    #[test]
    fn paths_follow_the_gateway_api_rules() {
        for good in ["/", "/v1", "/v1/chat/completions", "/a%20b", "/a:b@c"] {
            assert_eq!(path_ok(good), Ok(()), "{good}");
        }
        for bad in [
            "", "v1", "//", "/a/./b", "/a/../b", "/a%2fb", "/a#b", "/a/.", "/a/..", "/a b", "/a%2",
            "/a%zz", "/é",
        ] {
            assert!(path_ok(bad).is_err(), "{bad}");
        }
        assert!(path_ok(&format!("/{}", "a".repeat(1024))).is_err());
    }
}
