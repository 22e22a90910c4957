//! The egress proxy: which upstreams are reached through it (the configuration's `egress`, or
//! else the process's `HTTPS_PROXY` and `NO_PROXY`), and the `Proxy-Authorization` its
//! CONNECT requests carry (replaced when the password's Secret changes).

use std::sync::Arc;

use ai_api_proxy_config::Egress;
use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

/// Where upstream connections go, decided once per upstream (its host never changes).
pub struct EgressPlan {
    /// The settings in force: the configuration's, or those of the process's variables.
    egress: Egress,
    /// The proxy's address, parsed.
    proxy: Option<Uri>,
    /// `Basic …` for the proxy: from `egress.basic_auth`, or the credentials in `HTTPS_PROXY`.
    auth: ArcSwapOption<HeaderValue>,
}

impl EgressPlan {
    /// The plan of `egress` (its password already read), or, when the configuration has no
    /// `egress`, of the process's `HTTPS_PROXY` / `https_proxy` and `NO_PROXY` / `no_proxy`.
    pub fn new(egress: Option<&Egress>, password: Option<&str>) -> Result<Self, String> {
        let egress = match egress {
            Some(e) => e.clone(),
            None => Egress {
                https_proxy: Some(first_env(&["HTTPS_PROXY", "https_proxy"]))
                    .filter(|s| !s.trim().is_empty()),
                no_proxy: first_env(&["NO_PROXY", "no_proxy"])
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                basic_auth: None,
            },
        };
        // hyper-util reads the URL as curl does (a missing scheme is `http://`; credentials
        // in it become a `Basic` value).
        let intercept = match &egress.https_proxy {
            Some(url) => {
                let probe = Uri::from_static("https://upstream.invalid/");
                let found = Matcher::builder()
                    .https(url.clone())
                    .build()
                    .intercept(&probe);
                Some(found.ok_or("the egress proxy is not a URL like `http://host:port`")?)
            }
            None => None,
        };
        let plan = Self {
            proxy: intercept.as_ref().map(|i| i.uri().clone()),
            auth: ArcSwapOption::from(
                intercept
                    .as_ref()
                    .and_then(|i| i.basic_auth().cloned())
                    .map(Arc::new),
            ),
            egress,
        };
        if let Some(p) = password {
            plan.set_password(p)?;
        }
        Ok(plan)
    }

    /// The proxy to tunnel through towards the upstream at `base_url`, if any
    /// ([`Egress::proxies`] decides: `https://` upstreams that `no_proxy` does not list).
    pub fn proxy_for(&self, base_url: &str) -> Option<Uri> {
        self.proxy.clone().filter(|_| self.egress.proxies(base_url))
    }

    /// The `Proxy-Authorization` value in force.
    pub fn authorization(&self) -> Option<HeaderValue> {
        self.auth.load().as_deref().cloned()
    }

    /// Replaces the password of `egress.basic_auth` (the Secret changed).
    pub fn set_password(&self, password: &str) -> Result<(), String> {
        let Some(user) = self.egress.basic_auth.as_ref().map(|a| &a.username) else {
            return Err("no egress.basic_auth to use a password with".into());
        };
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        let token = BASE64_STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::try_from(format!("Basic {token}"))
            .map_err(|_| "the password cannot be sent in a header")?;
        value.set_sensitive(true);
        self.auth.store(Some(Arc::new(value)));
        Ok(())
    }
}

fn first_env(names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{KeySource, ProxyBasicAuth};

    use super::*;

    fn egress(no_proxy: &[&str]) -> Egress {
        Egress {
            https_proxy: Some("http://egress.corp:3128".into()),
            no_proxy: no_proxy.iter().map(|s| (*s).to_owned()).collect(),
            basic_auth: Some(ProxyBasicAuth {
                username: "svc".into(),
                password: KeySource::Env("X".into()),
            }),
        }
    }

    #[test]
    fn https_upstreams_go_through_the_proxy_unless_listed() {
        let plan =
            EgressPlan::new(Some(&egress(&["llm.internal", "10.0.0.0/8"])), Some("pw")).unwrap();
        let via = |u: &str| plan.proxy_for(u).map(|p| p.to_string());
        assert_eq!(
            via("https://api.openai.com/v1").as_deref(),
            Some("http://egress.corp:3128/")
        );
        assert_eq!(via("https://a.llm.internal/v1"), None);
        assert_eq!(via("https://10.2.3.4:8443/v1"), None);
        assert_eq!(
            via("http://api.openai.com/v1"),
            None,
            "plain HTTP goes direct"
        );
        let auth = plan.authorization().unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth, "Basic c3ZjOnB3");
        plan.set_password("new").unwrap();
        assert_eq!(plan.authorization().unwrap(), "Basic c3ZjOm5ldw==");
        assert!(plan.set_password("").is_err());
    }

    #[test]
    fn an_egress_without_a_proxy_connects_directly() {
        let plan = EgressPlan::new(Some(&Egress::default()), None).unwrap();
        assert_eq!(plan.proxy_for("https://api.openai.com"), None);
        assert!(plan.authorization().is_none());
    }
}
