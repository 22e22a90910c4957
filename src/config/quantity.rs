//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `1G`), parsed so they can be compared.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A quantity as written, plus its value in thousandths of the base unit for comparisons.
#[derive(Clone, Debug, Eq)]
pub struct Quantity {
    text: String,
    millis: u128,
}

impl Quantity {
    /// The text exactly as written (what goes into the manifest).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in thousandths of the base unit (millicores, millibytes).
    pub fn millis(&self) -> u128 {
        self.millis
    }
}

const SUFFIXES: &[(&str, u128, u128)] = &[
    // (suffix, numerator, denominator) of the multiplier, in thousandths
    ("Ki", 1 << 10, 1),
    ("Mi", 1 << 20, 1),
    ("Gi", 1 << 30, 1),
    ("Ti", 1 << 40, 1),
    ("Pi", 1 << 50, 1),
    ("Ei", 1 << 60, 1),
    ("m", 1, 1000),
    ("k", 1_000, 1),
    ("M", 1_000_000, 1),
    ("G", 1_000_000_000, 1),
    ("T", 1_000_000_000_000, 1),
    ("P", 1_000_000_000_000_000, 1),
    ("E", 1_000_000_000_000_000_000, 1),
    ("", 1, 1),
];

impl FromStr for Quantity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid Kubernetes quantity `{s}`: expected a non-negative number with an optional suffix, \
                 like `250m` or `1` (CPU) or `512Mi` or `1Gi` (memory)"
            )
        };
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        let &(_, num, den) = SUFFIXES
            .iter()
            .find(|(x, _, _)| *x == suffix)
            .ok_or_else(bad)?;
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        let digits = |d: &str| -> Result<u128, String> {
            if d.is_empty() {
                Ok(0)
            } else {
                d.parse::<u128>().map_err(|_| bad())
            }
        };
        let scale = 10u128.pow(frac.len() as u32);
        let value = digits(whole)?
            .checked_mul(scale)
            .and_then(|w| w.checked_add(digits(frac).ok()?))
            .ok_or_else(bad)?;
        // value/scale units × num/den × 1000 millis, rounded up like Kubernetes does.
        let millis = value
            .checked_mul(num)
            .and_then(|v| v.checked_mul(1000))
            .ok_or_else(bad)?
            .div_ceil(scale * den);
        Ok(Self {
            text: s.to_owned(),
            millis,
        })
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.millis == other.millis
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.millis.cmp(&other.millis))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity string like `250m` or `512Mi`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A Kubernetes quantity: `250m`, `1` (CPU cores), `512Mi`, `1Gi` (bytes).",
            "pattern": r"^[0-9]*(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$",
            "examples": ["250m", "512Mi"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn compares_across_notations() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("250m") < q("1"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("512Mi") < q("1Gi"));
        assert!(q("1G") < q("1Gi"));
        assert_eq!(q("1.5Gi").millis(), 1536 * (1 << 20) * 1000);
    }

    #[test]
    fn keeps_the_text_as_written() {
        assert_eq!(q("1.5Gi").to_string(), "1.5Gi");
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in ["", "-1", "1.2.3", "12x", "Mi", "1 Gi", "1mi", "."] {
            assert!(
                bad.parse::<Quantity>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
