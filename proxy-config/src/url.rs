//! The URLs of the configuration (upstream base URLs, CORS origins, the collector): how they
//! are split, which are accepted, and the endpoint (scheme, host, port) they name.

use crate::rules::is_dns_subdomain;

fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    Some((scheme, authority, path))
}

fn host_port_ok(authority: &str) -> bool {
    let (host, port) = authority
        .rsplit_once(':')
        .map_or((authority, None), |(h, p)| (h, Some(p)));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let host_ok =
        is_dns_subdomain(host) || host.parse::<std::net::Ipv4Addr>().is_ok() || host == "localhost";
    port_ok && host_ok
}

pub(crate) fn is_origin(s: &str) -> bool {
    split_url(s).is_some_and(|(scheme, authority, path)| {
        matches!(scheme, "http" | "https") && path.is_empty() && host_port_ok(authority)
    })
}

pub(crate) fn base_url_ok(s: &str) -> bool {
    split_url(s).is_some_and(|(scheme, authority, path)| {
        matches!(scheme, "http" | "https")
            && host_port_ok(authority)
            && !path.contains(['?', '#', ' '])
    })
}

/// Scheme, host and port of an upstream base URL (port defaulted from the scheme).
pub fn upstream_endpoint(base_url: &str) -> Option<(String, String, u16)> {
    let (scheme, authority, _) = split_url(base_url)?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, default),
    };
    Some((scheme.to_owned(), host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_endpoint_defaults_the_port() {
        assert_eq!(
            upstream_endpoint("https://api.x.ai/v1"),
            Some(("https".into(), "api.x.ai".into(), 443))
        );
        assert_eq!(
            upstream_endpoint("http://127.0.0.1:9000"),
            Some(("http".into(), "127.0.0.1".into(), 9000))
        );
    }
}
