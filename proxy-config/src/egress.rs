//! Egress: TLS towards one upstream (extra trusted CAs, a client certificate, the name to
//! verify) and the HTTP CONNECT proxy that upstreams are reached through; their rules.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::rules::{check_key_source, is_dns_subdomain};
use crate::url::upstream_endpoint;
use crate::{KeySource, ProxyConfig, SecretRef};

/// TLS towards one upstream. The compiled-in public roots (Mozilla's) stay trusted unless
/// `replace_roots` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamTls {
    /// Extra CA certificates (PEM, one or more) trusted for this upstream, e.g. an internal
    /// CA: a Secret or a ConfigMap key. Reloaded while the proxy runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<FileSource>,
    /// Trust only `ca`, not the compiled-in public roots. Requires `ca`.
    pub replace_roots: bool,
    /// A client certificate for mutual TLS (Secret references). Reloaded while the proxy runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
    /// The name sent as SNI and verified in the server's certificate, instead of the base
    /// URL's host (for an upstream reached by IP or through an internal alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Where a PEM file that is not a secret (a CA bundle) comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FileSource {
    /// A key of a Secret, mounted under `secrets_dir`.
    Secret(SecretRef),
    /// A key of a ConfigMap, mounted under `config_maps_dir`.
    ConfigMap(ConfigMapRef),
}

impl FileSource {
    /// The mounted file.
    pub fn path(&self, config: &ProxyConfig) -> PathBuf {
        match self {
            Self::Secret(r) => r.path(&config.secrets_dir),
            Self::ConfigMap(r) => r.path(&config.config_maps_dir),
        }
    }
}

/// A reference to one key of a Kubernetes ConfigMap.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapRef {
    /// ConfigMap name (in the proxy's namespace).
    pub name: String,
    /// Key inside the ConfigMap.
    pub key: String,
}

impl ConfigMapRef {
    /// The directory where this ConfigMap is mounted.
    pub fn mount_dir(&self, config_maps_dir: &Path) -> PathBuf {
        config_maps_dir.join(&self.name)
    }

    /// The file that holds this key.
    pub fn path(&self, config_maps_dir: &Path) -> PathBuf {
        self.mount_dir(config_maps_dir).join(&self.key)
    }
}

/// A client certificate and its private key, both PEM (a `kubernetes.io/tls` Secret holds
/// them as `tls.crt` and `tls.key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    /// The certificate chain, leaf first.
    pub certificate: SecretRef,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: SecretRef,
}

/// The HTTP CONNECT proxy between the proxy and its `https://` upstreams. When the
/// configuration has no `egress`, the process's `HTTPS_PROXY` and `NO_PROXY` variables are
/// read instead; an `egress` without `https_proxy` connects directly, whatever they say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Egress {
    /// `http://host:port` of the proxy (no credentials in it: see `basic_auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    /// Upstream hosts reached directly: a domain (it and its subdomains; a leading `.`
    /// changes nothing), an IP address, a CIDR range, or `*` for every host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
    /// Basic authentication to the proxy (`Proxy-Authorization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<ProxyBasicAuth>,
}

/// A user name and a password (a Secret reference) for the egress proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyBasicAuth {
    /// The user name (not a secret).
    pub username: String,
    /// The password, as a Secret reference (`{ secret = { name, key } }`).
    pub password: KeySource,
}

impl Egress {
    /// Whether the upstream at `base_url` is reached through `https_proxy`: an `https://`
    /// URL (plain `http://` upstreams are in-cluster servers, reached directly) whose host
    /// `no_proxy` does not list. The proxy and the NetworkPolicy both decide by this.
    pub fn proxies(&self, base_url: &str) -> bool {
        let host = match upstream_endpoint(base_url) {
            Some((scheme, host, _)) if scheme == "https" => host,
            _ => return false,
        };
        self.https_proxy.is_some() && !self.no_proxy.iter().any(|entry| bypasses(entry, &host))
    }
}

/// Whether one `no_proxy` entry lists `host`: `*`, the same IP address or a CIDR range
/// holding it, or a domain (with or without a leading `.`) equal to it or a parent of it.
fn bypasses(entry: &str, host: &str) -> bool {
    let entry = entry.trim();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if entry == "*" {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return in_range(entry, ip);
    }
    let domain = entry.trim_start_matches('.').to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(&domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// `ip` equals `entry`, or lies in the CIDR range `entry`.
fn in_range(entry: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (net, bits) = entry.split_once('/').unwrap_or((entry, ""));
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(n.to_bits()), u128::from(i.to_bits()), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
        _ => return false,
    };
    let bits = if bits.is_empty() {
        width
    } else {
        match bits.parse::<u32>() {
            Ok(b) if b <= width => b,
            _ => return false,
        }
    };
    let shift = width - bits;
    bits == 0 || (net >> shift) == (ip >> shift)
}

impl ProxyConfig {
    /// Every ConfigMap key the proxy reads, sorted and without duplicates.
    pub fn config_map_refs(&self) -> Vec<&ConfigMapRef> {
        let mut refs: Vec<&ConfigMapRef> = self
            .upstreams
            .iter()
            .filter_map(|u| match u.tls.as_ref()?.ca.as_ref()? {
                FileSource::ConfigMap(r) => Some(r),
                FileSource::Secret(_) => None,
            })
            .collect();
        refs.sort();
        refs.dedup();
        refs
    }

    /// The Secret keys of egress settings: CA bundles and client certificates of upstreams,
    /// the egress proxy's password (with duplicates; `secret_refs` sorts them).
    pub(crate) fn egress_secret_refs(&self) -> impl Iterator<Item = &SecretRef> {
        let tls = self.upstreams.iter().filter_map(|u| u.tls.as_ref());
        let ca = tls.clone().filter_map(|t| match t.ca.as_ref()? {
            FileSource::Secret(r) => Some(r),
            FileSource::ConfigMap(_) => None,
        });
        let client = tls
            .filter_map(|t| t.client_certificate.as_ref())
            .flat_map(|c| [&c.certificate, &c.key]);
        let password = self
            .egress
            .iter()
            .filter_map(|e| match &e.basic_auth.as_ref()?.password {
                KeySource::Secret(r) => Some(r),
                KeySource::Env(_) => None,
            });
        ca.chain(client).chain(password)
    }
}

/// The rules of `upstreams[i].tls` (`at` is that path).
pub(crate) fn check_tls(r: &mut Report, at: &str, base_url: &str, tls: &UpstreamTls) {
    r.check(base_url.starts_with("https://"), at, || {
        format!("TLS settings need an https:// base_url, got `{base_url}`")
    });
    match &tls.ca {
        Some(FileSource::Secret(s)) => {
            check_key_source(r, &format!("{at}.ca"), &KeySource::Secret(s.clone()));
        }
        Some(FileSource::ConfigMap(c)) => check_ref(r, &format!("{at}.ca.config_map"), c),
        None => r.check(!tls.replace_roots, format!("{at}.replace_roots"), || {
            "needs `ca`: replacing the roots with nothing would trust no server".into()
        }),
    }
    if let Some(c) = &tls.client_certificate {
        for (key, s) in [("certificate", &c.certificate), ("key", &c.key)] {
            let source = KeySource::Secret(s.clone());
            check_key_source(r, &format!("{at}.client_certificate.{key}"), &source);
        }
    }
    if let Some(name) = &tls.server_name {
        r.check(
            is_dns_subdomain(name) || name.parse::<std::net::IpAddr>().is_ok(),
            format!("{at}.server_name"),
            || format!("expected a DNS name or an IP address, like `llm.internal.example.com`, got `{name}`"),);
    }
}

fn check_ref(r: &mut Report, at: &str, c: &ConfigMapRef) {
    r.check(is_dns_subdomain(&c.name), format!("{at}.name"), || {
        format!(
            "expected a ConfigMap name (DNS-1123 subdomain), got `{}`",
            c.name
        )
    });
    r.check(
        !c.key.is_empty()
            && c.key.len() <= 253
            && c.key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && c.key != "."
            && c.key != "..",
        format!("{at}.key"),
        || {
            format!(
                "expected a ConfigMap key of letters, digits, `-`, `_` and `.`, got `{}`",
                c.key
            )
        },
    );
}

/// The rules of `egress`.
pub(crate) fn check_egress(r: &mut Report, egress: &Egress) {
    if let Some(url) = &egress.https_proxy {
        let plain = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .is_some_and(|authority| !authority.contains(['@', '/', '?', '#']));
        r.check(
            plain && upstream_endpoint(url).is_some_and(|(_, host, _)| !host.is_empty()),
            "egress.https_proxy",
            || "expected `http://host:port` of an HTTP CONNECT proxy, without credentials (they go \
             in `egress.basic_auth`) or a path".into(),);
    }
    for (i, host) in egress.no_proxy.iter().enumerate() {
        r.check(
            !host.is_empty() && !host.contains(|c: char| c.is_whitespace() || c == ','),
            format!("egress.no_proxy[{i}]"),
            || format!("expected one host, domain, IP address or CIDR range, got `{host}`"),
        );
    }
    if let Some(auth) = &egress.basic_auth {
        r.check(egress.https_proxy.is_some(), "egress.basic_auth", || {
            "set, but `egress.https_proxy` is not: expected credentials only for a proxy".into()
        });
        r.check(
            !auth.username.is_empty()
                && !auth.username.contains(':')
                && !auth.username.contains(char::is_control),
            "egress.basic_auth.username",
            || "expected a user name without `:` (basic authentication separates it from the password with one)".into(),);
        check_key_source(r, "egress.basic_auth.password", &auth.password);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, key: &str) -> SecretRef {
        SecretRef {
            name: name.into(),
            key: key.into(),
        }
    }

    fn problems(f: impl FnOnce(&mut Report)) -> Vec<String> {
        let mut r = Report::default();
        f(&mut r);
        r.finish()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    #[test]
    fn tls_needs_https_and_roots_need_a_ca() {
        let tls = UpstreamTls {
            replace_roots: true,
            server_name: Some("not a name".into()),
            ..UpstreamTls::default()
        };
        assert_eq!(
            problems(|r| check_tls(r, "upstreams[0].tls", "http://x:80", &tls)),
            [
                "upstreams[0].tls",
                "upstreams[0].tls.replace_roots",
                "upstreams[0].tls.server_name"
            ]
        );
        let tls = UpstreamTls {
            ca: Some(FileSource::ConfigMap(ConfigMapRef {
                name: "internal-ca".into(),
                key: "ca.crt".into(),
            })),
            replace_roots: true,
            client_certificate: Some(ClientCertificate {
                certificate: secret("mtls", "tls.crt"),
                key: secret("mtls", "tls.key"),
            }),
            server_name: Some("10.0.0.7".into()),
        };
        assert!(problems(|r| check_tls(r, "t", "https://10.0.0.7/v1", &tls)).is_empty());
    }

    #[test]
    fn the_proxy_url_carries_no_credentials() {
        let check = |url: &str| {
            let egress = Egress {
                https_proxy: Some(url.into()),
                ..Egress::default()
            };
            problems(|r| check_egress(r, &egress)).is_empty()
        };
        assert!(check("http://egress.corp.internal:3128"));
        assert!(check("http://10.1.2.3:8080/"));
        assert!(!check("http://user:pass@egress:3128"));
        assert!(!check("https://egress:3128"));
        assert!(!check("http://egress:3128/path"));
        assert!(!check("egress:3128"));
    }

    #[test]
    fn no_proxy_lists_domains_addresses_and_ranges() {
        let egress = Egress {
            https_proxy: Some("http://egress:3128".into()),
            no_proxy: vec![
                "llm.internal".into(),
                ".corp.example.com".into(),
                "10.0.0.0/8".into(),
                "192.168.1.7".into(),
            ],
            basic_auth: None,
        };
        let direct = |url: &str| !egress.proxies(url);
        assert!(!direct("https://api.openai.com/v1"));
        assert!(direct("https://llm.internal/v1"));
        assert!(direct("https://a.LLM.internal:8443/v1"));
        assert!(!direct("https://notllm.internal/v1"));
        assert!(direct("https://corp.example.com/v1"));
        assert!(direct("https://x.corp.example.com/v1"));
        assert!(direct("https://10.20.30.40/v1"));
        assert!(!direct("https://11.0.0.1/v1"));
        assert!(direct("https://192.168.1.7:9000/v1"));
        assert!(!direct("https://192.168.1.8/v1"));
        assert!(direct("http://api.openai.com/v1"), "plain HTTP is direct");
        let all = Egress {
            no_proxy: vec!["*".into()],
            ..egress.clone()
        };
        assert!(!all.proxies("https://api.openai.com/v1"));
        assert!(!Egress::default().proxies("https://api.openai.com/v1"));
    }

    #[test]
    fn basic_auth_needs_a_proxy_and_a_plain_user() {
        let egress = Egress {
            https_proxy: None,
            no_proxy: vec!["a b".into(), ".internal".into()],
            basic_auth: Some(ProxyBasicAuth {
                username: "a:b".into(),
                password: KeySource::Secret(secret("egress-proxy", "password")),
            }),
        };
        assert_eq!(
            problems(|r| check_egress(r, &egress)),
            [
                "egress.no_proxy[0]",
                "egress.basic_auth",
                "egress.basic_auth.username"
            ]
        );
    }
}
