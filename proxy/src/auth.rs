//! Client authentication: bearer keys checked against a file of SHA-256 hashes.
//!
//! The key file holds one `<id>:<sha256 hex of the key>` line per client; blank lines and lines
//! starting with `#` are ignored. Only the id ever reaches logs and metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};

use crate::error::ProxyError;
use crate::guard::Check;
use crate::settings::StartError;
use crate::state::AppState;

/// Who is calling: a configured client id, or an anonymous caller identified by IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A client from the key file.
    Key(Arc<str>),
    /// No authentication configured: the peer address stands for the client.
    Anonymous(std::net::IpAddr),
}

impl Client {
    /// The id for logs: the key id, or `anonymous`.
    pub fn id(&self) -> &str {
        match self {
            Self::Key(id) => id,
            Self::Anonymous(_) => "anonymous",
        }
    }
}

/// How clients are checked.
#[derive(Debug)]
pub enum Authenticator {
    /// Hash of each accepted key → client id.
    Keys(HashMap<[u8; 32], Arc<str>>),
    /// Everyone is let in (explicitly configured).
    Anonymous,
}

impl Authenticator {
    /// Parses the key file text; `source_name` only labels errors.
    pub fn from_key_file(text: &str, source_name: &str) -> Result<Self, StartError> {
        let mut keys = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message| StartError::KeyFile {
                source_name: source_name.to_owned(),
                line: i + 1,
                message,
            };
            let (id, hex) = line
                .split_once(':')
                .ok_or_else(|| err("expected `<id>:<sha256 hex>`"))?;
            let (id, hex) = (id.trim(), hex.trim());
            if id.is_empty() {
                return Err(err("the client id is empty"));
            }
            let hash = parse_hex32(hex).ok_or_else(|| err("expected 64 hex digits after `:`"))?;
            if keys.insert(hash, Arc::from(id)).is_some() {
                return Err(err("this key hash is listed twice"));
            }
        }
        if keys.is_empty() {
            return Err(StartError::KeyFile {
                source_name: source_name.to_owned(),
                line: 0,
                message: "no client keys: every request would be refused",
            });
        }
        Ok(Self::Keys(keys))
    }

    /// Identifies the caller of `request`, or says why not.
    pub fn authenticate(&self, request: &Request) -> Result<Client, ProxyError> {
        match self {
            Self::Anonymous => {
                let ip = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
                Ok(Client::Anonymous(ip))
            }
            Self::Keys(keys) => {
                let header = request
                    .headers()
                    .get(AUTHORIZATION)
                    .ok_or(ProxyError::MissingKey)?;
                let token = header
                    .as_bytes()
                    .strip_prefix(b"Bearer ")
                    .or_else(|| header.as_bytes().strip_prefix(b"bearer "))
                    .ok_or(ProxyError::MissingKey)?;
                let token = token.trim_ascii();
                if token.is_empty() {
                    return Err(ProxyError::MissingKey);
                }
                let hash: [u8; 32] = Sha256::digest(token).into();
                keys.get(&hash)
                    .map(|id| Client::Key(id.clone()))
                    .ok_or(ProxyError::InvalidKey)
            }
        }
    }
}

/// SHA-256 of `key` in lowercase hex: what goes in the key file.
#[cfg(test)]
pub fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Guard: every route needs a known client unless its path is on the explicit
/// unauthenticated list (health, readiness, metrics), so a new route cannot skip it by accident.
#[derive(Clone)]
pub struct Authenticate(pub Arc<AppState>);

impl Check for Authenticate {
    fn check(&self, request: &mut Request) -> Result<Option<Client>, ProxyError> {
        if self.0.is_unauthenticated(request.uri().path()) {
            return Ok(None);
        }
        let client = self.0.auth.authenticate(request)?;
        request.extensions_mut().insert(client.clone());
        Ok(Some(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/v1/models");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn accepts_listed_keys_only() {
        let file = format!("# comment\n\nteam-a:{}\n", hash_hex("sk-a"));
        let auth = Authenticator::from_key_file(&file, "test").unwrap();
        let ok = auth.authenticate(&request(Some("Bearer sk-a"))).unwrap();
        assert_eq!(ok.id(), "team-a");
        assert!(matches!(
            auth.authenticate(&request(Some("Bearer sk-b"))),
            Err(ProxyError::InvalidKey)
        ));
        assert!(matches!(
            auth.authenticate(&request(None)),
            Err(ProxyError::MissingKey)
        ));
        assert!(matches!(
            auth.authenticate(&request(Some("Basic x"))),
            Err(ProxyError::MissingKey)
        ));
    }

    #[test]
    fn rejects_bad_lines_without_echoing_them() {
        let err = Authenticator::from_key_file("team:nothex", "f").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 1"), "{msg}");
        assert!(!msg.contains("nothex"), "{msg}");
        assert!(Authenticator::from_key_file("# only comments\n", "f").is_err());
    }
}
