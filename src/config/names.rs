//! Names Kubernetes restricts (DNS-1123 labels, hostnames) and ports, checked as they are read.

use std::borrow::Cow;
use std::fmt;

use ai_api_proxy_config::{is_dns_label, is_dns_subdomain};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr, $expected:literal, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A name known to be valid when written in the code.
            pub fn known(s: &'static str) -> Self {
                debug_assert!(($check as fn(&str) -> bool)(s), "{s}");
                Self(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!(concat!("invalid value `{}`: expected ", $expected), s))
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "description": concat!("Expected: ", $expected), "pattern": $pattern })
            }
        }
    };
}

checked_string!(
    /// A DNS-1123 label: what Kubernetes accepts as a namespace or Service name.
    DnsLabel,
    is_dns_label,
    "a DNS-1123 label (lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters)",
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
);

checked_string!(
    /// A DNS-1123 subdomain: what Kubernetes accepts as a Secret or ConfigMap name.
    DnsSubdomain,
    is_dns_subdomain,
    "a DNS-1123 subdomain (lowercase dot-separated labels, at most 253 characters)",
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
);

checked_string!(
    /// A host name an Ingress serves: a DNS-1123 subdomain, optionally with a leading `*.`.
    Hostname,
    |s| is_dns_subdomain(s.strip_prefix("*.").unwrap_or(s)) && s.contains('.'),
    "a fully qualified host name like `api.example.com` (a leading `*.` is allowed)",
    "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
);

/// A TCP port, 1 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    /// 8080, the conventional unprivileged HTTP port.
    pub const HTTP_ALT: Port = Port(8080);

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Self(p)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid port {n}: expected a number from 1 to 65535"
            ))),
        }
    }
}

impl JsonSchema for Port {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": 65535 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_dns_1123() {
        assert!(DnsLabel::try_from("ai-services".to_owned()).is_ok());
        for bad in ["AI", "-a", "a-", "a_b", "a.b", ""] {
            assert!(DnsLabel::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_need_a_dot_and_allow_a_wildcard() {
        assert!(Hostname::try_from("api.ai.example.com".to_owned()).is_ok());
        assert!(Hostname::try_from("*.example.com".to_owned()).is_ok());
        assert!(Hostname::try_from("localhost".to_owned()).is_err());
        assert!(Hostname::try_from("api..example.com".to_owned()).is_err());
        assert!(Hostname::try_from("Api.example.com".to_owned()).is_err());
    }

    #[test]
    fn ports_are_in_range() {
        let port = |n: i64| Port::deserialize(serde_json::json!(n));
        assert!(port(8080).is_ok());
        assert!(port(0).is_err());
        assert!(port(70000).is_err());
    }
}
