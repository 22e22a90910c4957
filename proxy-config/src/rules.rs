//! The rules more than one part of the configuration shares (key sources, DNS names): the
//! bottom of the crate's validation, importing nothing of it but the report.

use crate::KeySource;
use crate::report::Report;

pub(crate) fn check_key_source(r: &mut Report, at: &str, source: &KeySource) {
    match source {
        KeySource::Secret(s) => {
            r.check(
                is_dns_subdomain(&s.name),
                format!("{at}.secret.name"),
                || {
                    format!(
                        "expected a Secret name (DNS-1123 subdomain), got `{}`",
                        s.name
                    )
                },
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
                || {
                    format!(
                        "expected a Secret key of letters, digits, `-`, `_` and `.`, got `{}`",
                        s.key
                    )
                },
            );
        }
        KeySource::Env(var) => r.check(
            !var.is_empty()
                && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !var.as_bytes()[0].is_ascii_digit(),
            format!("{at}.env"),
            || format!("expected an environment variable name like `OPENAI_API_KEY`, got `{var}`"),
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
