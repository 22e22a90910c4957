//! The validation report and the rules more than one part of the configuration shares
//! (key sources, DNS names): the bottom of the crate's validation, importing nothing of it.

use std::fmt;

use crate::KeySource;

/// One broken rule: the key path inside the proxy configuration and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `timeouts.first_byte` or `models[2].upstreams`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

pub(crate) fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems in document order.
#[derive(Default)]
pub(crate) struct Report(Vec<Problem>);

impl Report {
    pub(crate) fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.0.push(Problem {
                path: path.into(),
                message: message.into(),
            });
        }
    }

    /// Every problem found, or `Ok` when there is none.
    pub(crate) fn finish(self) -> Result<(), Vec<Problem>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

pub(crate) fn check_key_source(r: &mut Report, at: &str, source: &KeySource) {
    match source {
        KeySource::Secret(s) => {
            r.check(
                is_dns_subdomain(&s.name),
                format!("{at}.secret.name"),
                format!(
                    "expected a Secret name (DNS-1123 subdomain), got `{}`",
                    s.name
                ),
            );
            r.check(
                !s.key.is_empty()
                    && s.key.len() <= 253
                    && s.key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && s.key != "."
                    && s.key != "..",
                format!("{at}.secret.key"),
                format!(
                    "expected a Secret key of letters, digits, `-`, `_` and `.`, got `{}`",
                    s.key
                ),
            );
        }
        KeySource::Env(var) => r.check(
            !var.is_empty()
                && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !var.as_bytes()[0].is_ascii_digit(),
            format!("{at}.env"),
            format!("expected an environment variable name like `OPENAI_API_KEY`, got `{var}`"),
        ),
    }
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, starting and ending alphanumeric, ≤ 63.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain: dot-separated labels, ≤ 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}
