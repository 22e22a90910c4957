//! Who reaches the pods and whom they reach: the Ingress (hosts, TLS, annotations) and the
//! NetworkPolicy peers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ai_api_proxy_config::is_dns_subdomain;

use super::{Report, key_path};
use crate::config::Environment;

/// The Ingress: hosts, paths, TLS coverage and annotation keys.
pub(super) fn ingress(r: &mut Report, env: &Environment) {
    let ing = &env.ingress;
    r.check(
        !ing.enabled || !ing.hosts.is_empty(),
        "ingress.hosts",
        || {
            "the Ingress is enabled but routes no host: expected at least one \
         `[[ingress.hosts]]` with `host` and `paths`"
                .into()
        },
    );
    for (i, h) in ing.hosts.iter().enumerate() {
        let at = format!("ingress.hosts[{i}]");
        let host = h.host.as_str();
        r.check(!h.paths.is_empty(), format!("{at}.paths"), || {
            format!("`{host}` has no path: expected at least one, like `{{ path = \"/\" }}`")
        });
        r.each_once(
            &format!("{at}.paths"),
            ".path",
            "path",
            h.paths.iter().map(|p| p.path.as_str()),
        );
        for (j, p) in h.paths.iter().enumerate() {
            let path = &p.path;
            r.check(
                path.starts_with('/') && !path.contains(char::is_whitespace),
                format!("{at}.paths[{j}].path"),
                || format!("got `{path}`: expected an absolute path starting with `/`, like `/` or `/v1`"),
            );
        }
    }
    r.each_once(
        "ingress.hosts",
        ".host",
        "host (with all its paths)",
        ing.hosts.iter().map(|h| h.host.as_str()),
    );
    let served: Vec<&str> = ing.hosts.iter().map(|h| h.host.as_str()).collect();
    let served_set: BTreeSet<&str> = served.iter().copied().collect();
    // Parent domains of served non-wildcard hosts, so a `*.domain` certificate finds them.
    let served_parents: BTreeSet<&str> = served
        .iter()
        .filter(|h| !h.starts_with("*."))
        .filter_map(|h| h.split_once('.').map(|(_, rest)| rest))
        .collect();
    for (i, tls) in ing.tls.iter().enumerate() {
        r.check(
            !tls.hosts.is_empty(),
            format!("ingress.tls[{i}].hosts"),
            || "empty: expected the hosts this certificate covers".into(),
        );
        for (j, host) in tls.hosts.iter().enumerate() {
            let host = host.as_str();
            r.check(
                is_served(host, &served_set, &served_parents),
                format!("ingress.tls[{i}].hosts[{j}]"),
                || {
                    format!(
                        "`{host}` is not served by any rule: expected one of the ingress.hosts ({})",
                        list(&served)
                    )
                },
            );
        }
    }
    for key in ing.annotations.keys() {
        r.check(
            qualified_name_ok(key),
            key_path("ingress.annotations", key),
            || {
                format!(
                    "invalid annotation key `{key}`: expected `name` or `prefix/name`, the prefix a DNS \
                     subdomain and the name up to 63 letters, digits, `-`, `_` and `.`"
                )
            },
        );
    }
}

/// Whether a TLS host is served by a rule: the same host, a wildcard rule covering it, or,
/// for a wildcard certificate, any host it covers. Set lookups keep this linear in the hosts.
fn is_served(host: &str, served: &BTreeSet<&str>, served_parents: &BTreeSet<&str>) -> bool {
    if served.contains(host) {
        return true;
    }
    match host.strip_prefix("*.") {
        Some(domain) => served_parents.contains(domain),
        None => host
            .split_once('.')
            .is_some_and(|(_, parent)| served.contains(format!("*.{parent}").as_str())),
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// With the nginx IngressClass, infra adds timeout and buffering annotations that let a stream
/// run as long as the proxy allows it; user annotations must not undercut them.
pub(super) fn ingress_nginx_annotations(r: &mut Report, env: &Environment) {
    let ing = &env.ingress;
    if ing.class_name.as_ref().map(|c| c.as_str()) != Some("nginx") {
        return;
    }
    let proxy = &env.proxy;
    let total = proxy.longest(|t| t.total);
    for (key, value) in &ing.annotations {
        let Some(name) = key.strip_prefix(NGINX) else {
            continue;
        };
        let path = key_path("ingress.annotations", key);
        match name {
            "proxy-read-timeout" | "proxy-send-timeout" => match value.trim().parse::<u64>() {
                Ok(secs) => r.check(secs >= total.as_secs_ceil(), path, || {
                    format!(
                        "`{value}` seconds is shorter than the proxy's total timeout ({total}, \
                         proxy.timeouts.total), so nginx would cut long streams: expected at least \
                         {}, or remove it (infra sets it)",
                        total.as_secs_ceil()
                    )
                }),
                Err(_) => r.push(
                    path,
                    format!(
                        "got `{value}`: expected whole seconds, like `{}`",
                        total.as_secs_ceil()
                    ),
                ),
            },
            "proxy-buffering" => r.check(!value.trim().eq_ignore_ascii_case("on"), path, || {
                "`on` makes nginx hold streamed responses until they end: expected `off`, or \
                 remove it (infra sets it)"
                    .into()
            }),
            "proxy-body-size" => match nginx_size(value) {
                Some(bytes) => r.check(bytes == 0 || bytes >= proxy.max_body_bytes, path, || {
                    format!(
                        "`{value}` is smaller than proxy.max_body_bytes ({}), so nginx would \
                         refuse bodies the proxy accepts: expected at least that, or remove it",
                        proxy.max_body_bytes
                    )
                }),
                None => r.push(
                    path,
                    format!("got `{value}`: expected a size like `10m`, `512k` or a byte count"),
                ),
            },
            _ => {}
        }
    }
}

/// An nginx size: bytes, or a number with `k`/`m`/`g` (powers of 1024).
fn nginx_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 'b'),
    };
    let shift = match unit {
        'b' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// NetworkPolicy peers: valid CIDRs and label selectors.
pub(super) fn network_policy(r: &mut Report, env: &Environment) {
    let np = &env.network_policy;
    r.check(!np.upstream_cidrs.is_empty(), "network_policy.upstream_cidrs", || {
        "empty, so the proxy could reach no upstream: expected at least one CIDR, like `0.0.0.0/0`"
            .into()
    });
    for (i, cidr) in np.upstream_cidrs.iter().enumerate() {
        if let Err(why) = parse_cidr(cidr) {
            r.push(format!("network_policy.upstream_cidrs[{i}]"), why);
        }
    }
    for (key, value) in &np.dns.pod_labels {
        let path = key_path("network_policy.dns.pod_labels", key);
        r.check(qualified_name_ok(key), &path, || {
            format!("invalid label key `{key}`: expected `name` or `prefix/name`, like `k8s-app`")
        });
        r.check(label_value_ok(value), &path, || {
            format!("invalid label value `{value}`: expected up to 63 letters, digits, `-`, `_` and `.`, starting and ending alphanumeric")
        });
    }
}

pub(super) fn parse_cidr(cidr: &str) -> Result<(), String> {
    let expected = "expected an IPv4 or IPv6 range like `10.0.0.0/8` or `2001:db8::/32`";
    let Some((addr, bits)) = cidr.split_once('/') else {
        return Err(format!("`{cidr}` has no prefix length: {expected}"));
    };
    let (Ok(addr), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u8>()) else {
        return Err(format!("invalid CIDR `{cidr}`: {expected}"));
    };
    let (width, value) = match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    if bits > width {
        return Err(format!(
            "invalid CIDR `{cidr}`: the prefix length is at most {width}"
        ));
    }
    let host_bits = u32::from(width - bits);
    let network = value
        .checked_shr(host_bits)
        .unwrap_or(0)
        .checked_shl(host_bits)
        .unwrap_or(0);
    if network != value {
        let network = match addr {
            IpAddr::V4(_) => IpAddr::from(u32::try_from(network).unwrap_or_default().to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(network.to_be_bytes()),
        };
        return Err(format!(
            "`{cidr}` has host bits set: expected the network address, `{network}/{bits}`"
        ));
    }
    Ok(())
}

/// A Kubernetes qualified name (annotation and label keys): `[prefix/]name`.
pub(super) fn qualified_name_ok(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && label_value_ok(name)
}

/// A label value (also the name part of a qualified name): ≤ 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
pub(super) fn label_value_ok(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}
