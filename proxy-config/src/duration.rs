//! A duration written the way people write them (`30s`, `5m`, `1h 30m`), in every format.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration, serialized as a human-readable string such as `90s` or `5m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// The standard-library value.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole seconds, rounded up (Kubernetes and NGINX fields take whole seconds).
    pub fn as_secs_ceil(self) -> u64 {
        let d = self.0;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(Self)
            .map_err(|e| format!("invalid duration `{s}` ({e}): expected a number with a unit, like `500ms`, `30s`, `5m` or `1h 30m`"))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like `30s` or `5m`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number with a unit (ms, s, m, h), e.g. `500ms`, `30s`, `5m`, `1h 30m`.",
            "pattern": r"^\s*([0-9]+\s*(ns|us|ms|s|sec|m|min|h|hr|d)\s*)+$",
            "examples": ["30s", "5m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_string_form() {
        for s in ["500ms", "30s", "5m", "1h 30m"] {
            let d: Duration = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn rejects_numbers_without_units() {
        let err = "30".parse::<Duration>().unwrap_err();
        assert!(err.contains("expected a number with a unit"), "{err}");
    }

    #[test]
    fn rounds_seconds_up() {
        assert_eq!(Duration::from_millis(1500).as_secs_ceil(), 2);
        assert_eq!(Duration::from_secs(2).as_secs_ceil(), 2);
    }
}
