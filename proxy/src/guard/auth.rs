//! Client authentication: `Authorization: Bearer <key>` (OpenAI's SDKs) or `x-api-key: <key>`
//! (Anthropic's) checked against the key store.
//!
//! Every request on the API port is checked: health, readiness and metrics live on the admin
//! listener, so there is no list of exceptions for a new route to slip onto.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use http::Response;
use http::header::AUTHORIZATION;

use super::keys::KeyStore;
use super::{Check, Client};
use crate::answer::Answer;
use crate::error_answer::ProxyError;
use crate::upstream::headers::X_API_KEY;

/// How clients are checked.
#[derive(Clone)]
pub enum Authenticate {
    /// Keys from the (reloadable) key store.
    Keys(Arc<KeyStore>),
    /// Everyone is let in (explicitly configured); the peer address stands for the client.
    Anonymous,
}

/// The credentials of an `Authorization` value with the `Bearer` scheme, matched without
/// regard to case as RFC 9110 (section 11.1) says; `None` for any other scheme.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let split = value.iter().position(|b| *b == b' ' || *b == b'\t')?;
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

impl Authenticate {
    /// Identifies the caller of `request`, or says why not.
    pub fn identify(&self, request: &Request) -> Result<Client, ProxyError> {
        match self {
            Self::Anonymous => {
                let ip = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
                Ok(Client::Anonymous(ip))
            }
            Self::Keys(store) => {
                let headers = request.headers();
                let token = headers
                    .get(AUTHORIZATION)
                    .and_then(|h| bearer(h.as_bytes()))
                    .or_else(|| {
                        headers
                            .get(X_API_KEY)
                            .map(|h| h.as_bytes().trim_ascii())
                            .filter(|k| !k.is_empty())
                    })
                    .ok_or(ProxyError::MissingKey)?;
                store
                    .lookup(token)
                    .map(Client::Key)
                    .ok_or(ProxyError::InvalidKey)
            }
        }
    }
}

impl Check for Authenticate {
    type Pass = Client;

    fn check(&self, request: &mut Request) -> Result<Client, ProxyError> {
        let client = self.identify(request)?;
        request.extensions_mut().insert(client.clone());
        Ok(client)
    }

    /// The client's id goes into the answer's facts, for the access log.
    fn answer(client: Client, mut response: Response<Answer>) -> Response<Answer> {
        response.body_mut().facts.client = Some(client.log_id());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::keys::{hash_hex, parse};

    fn request(auth: Option<&str>) -> Request {
        with_headers(auth.map(|a| (AUTHORIZATION.as_str(), a)))
    }

    fn with_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Request {
        let mut b = http::Request::builder().uri("/v1/models");
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn accepts_anthropic_x_api_key_when_there_is_no_bearer() {
        let file = format!("team-a:{}\nteam-b:{}\n", hash_hex("sk-a"), hash_hex("sk-b"));
        let auth = Authenticate::Keys(Arc::new(KeyStore::new(parse(&file).unwrap())));
        let id = |h: &[(&str, &str)]| auth.identify(&with_headers(h.iter().copied()));
        assert_eq!(id(&[("x-api-key", "sk-a")]).unwrap().id(), "team-a");
        assert_eq!(id(&[("x-api-key", " sk-b ")]).unwrap().id(), "team-b");
        // A bearer key wins over x-api-key; a non-bearer Authorization leaves x-api-key.
        let both = [("authorization", "Bearer sk-b"), ("x-api-key", "sk-a")];
        assert_eq!(id(&both).unwrap().id(), "team-b");
        let basic = [("authorization", "Basic eA=="), ("x-api-key", "sk-a")];
        assert_eq!(id(&basic).unwrap().id(), "team-a");
        assert!(matches!(
            id(&[("x-api-key", "sk-c")]),
            Err(ProxyError::InvalidKey)
        ));
        assert!(matches!(
            id(&[("x-api-key", "")]),
            Err(ProxyError::MissingKey)
        ));
    }

    #[test]
    fn accepts_listed_keys_only_with_any_case_of_bearer() {
        let file = format!("# comment\n\nteam-a:{}\n", hash_hex("sk-a"));
        let auth = Authenticate::Keys(Arc::new(KeyStore::new(parse(&file).unwrap())));
        for ok in [
            "Bearer sk-a",
            "bearer sk-a",
            "BEARER  sk-a ",
            "bEaReR\tsk-a",
        ] {
            let client = auth.identify(&request(Some(ok))).unwrap();
            assert_eq!(client.id(), "team-a", "{ok}");
        }
        assert!(matches!(
            auth.identify(&request(Some("Bearer sk-b"))),
            Err(ProxyError::InvalidKey)
        ));
        for missing in [
            None,
            Some("Basic x"),
            Some("Bearer"),
            Some("Bearer  "),
            Some("Bearersk-a"),
        ] {
            assert!(
                matches!(
                    auth.identify(&request(missing)),
                    Err(ProxyError::MissingKey)
                ),
                "{missing:?}"
            );
        }
    }
}
