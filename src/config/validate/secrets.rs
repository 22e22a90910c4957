//! Credentials do not belong in environment files: finding them, and never repeating them.

use serde_json::Value;

use super::{Report, key_path};
use crate::config::Environment;

/// Prefixes of provider credentials, with the fewest characters that follow in a real one.
const PREFIXES: &[(&str, usize)] = &[
    ("sk-ant-", 16),
    ("sk-proj-", 16),
    ("sk-", 20),
    ("sk_live_", 16),
    ("sk_test_", 16),
    ("rk_live_", 16),
    ("ghp_", 30),
    ("gho_", 30),
    ("ghu_", 30),
    ("ghs_", 30),
    ("ghr_", 30),
    ("github_pat_", 30),
    ("glpat-", 16),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("xoxa-", 10),
    ("xapp-", 10),
    ("AKIA", 16),
    ("ASIA", 16),
    ("AIza", 30),
    ("hf_", 30),
    ("npm_", 30),
    ("pypi-", 30),
    ("dop_v1_", 30),
    ("SG.", 30),
];

/// Query parameters and `key=value` words that carry credentials.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "sig",
];

/// Whether a string looks like a credential rather than configuration.
///
/// Recognized: provider key prefixes (`sk-`, `ghp_`, `xoxb-`, `AKIA`…), `Bearer`/`Basic`
/// credentials, PEM blocks, JWTs, URLs with a user or password or a credential in the query,
/// `password=…`-style assignments, and long random-looking tokens. Not secrets: URLs without
/// credentials, paths, host names, image digests (`sha256:…`), names and durations.
pub fn looks_like_secret(s: &str) -> bool {
    let s = s.trim();
    if s.len() < 8 {
        return false;
    }
    if s.contains("-----BEGIN ") {
        return true;
    }
    if let Some(url) = url_secret(s) {
        return url;
    }
    let lower = s.to_ascii_lowercase();
    for scheme in ["bearer ", "basic ", "token "] {
        if let Some(rest) = lower.strip_prefix(scheme) {
            return rest.trim().len() >= 8 && !rest.trim().contains(' ');
        }
    }
    if assignment(&lower) {
        return true;
    }
    if s.contains(char::is_whitespace) {
        return false;
    }
    PREFIXES.iter().any(|(prefix, min)| {
        // Generated keys mix letters and digits; `sk-some-long-model-name` does not.
        s.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= *min
                && rest.bytes().any(|b| b.is_ascii_digit())
                && rest.bytes().any(|b| b.is_ascii_alphabetic())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
    }) || jwt(s)
        || random_token(s)
}

/// `Some(verdict)` for URLs: credentials in the user info or the query are secrets.
fn url_secret(s: &str) -> Option<bool> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some(true);
    }
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or_default();
    Some(query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        !v.is_empty() && SECRET_WORDS.contains(&k.to_ascii_lowercase().as_str())
    }))
}

/// `password=hunter22`, `api_key: abc…`: a credential word assigned a value.
fn assignment(lower: &str) -> bool {
    SECRET_WORDS.iter().any(|word| {
        lower.match_indices(word).any(|(i, _)| {
            let before_ok = lower[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            let rest = lower[i + word.len()..].trim_start();
            let value = rest
                .strip_prefix('=')
                .or_else(|| rest.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next());
            // A value is one word of token characters (`secret = { name … }` is a reference).
            before_ok
                && value.is_some_and(|v| {
                    v.len() >= 6
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=_.~!@#$%^*-".contains(&b))
                })
        })
    })
}

fn jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.starts_with("eyJ")
        && parts.iter().all(|p| {
            p.len() >= 4
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
        })
}

/// At least 24 characters from a token alphabet, mixing letters and digits, that are as varied as
/// random text (hex: ≥ 32 characters).
fn random_token(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 24
        || s.starts_with('/')
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-'))
    {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    let hex = b.iter().all(u8::is_ascii_hexdigit);
    if hex {
        return b.len() >= 32 && digits > 0 && entropy(b) >= 3.0;
    }
    // Words joined by `-` or `_` (names, model ids) are not tokens, however long.
    let longest_run = s.split(['-', '_']).map(str::len).max().unwrap_or_default();
    digits > 0 && upper && lower && longest_run >= 16 && entropy(b) >= 3.5
}

/// Shannon entropy in bits per character.
fn entropy(b: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Replaces every part of `text` that looks like a secret with `(value not shown)`: quoted
/// values first (`` `…` `` and `"…"`), then single words.
pub fn redact_text(text: &str) -> String {
    let mut out = redact_quoted(text, '`');
    out = redact_quoted(&out, '"');
    out.split_inclusive(char::is_whitespace)
        .map(|word| {
            let core = word.trim_matches(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '"' | '\'' | '`' | ',' | ';' | ':' | '(' | ')' | '[' | ']' | '{' | '}'
                    )
            });
            if looks_like_secret(core) {
                return word.replace(core, "(value not shown)");
            }
            // A key path or assignment may carry one: `proxy.<key>`, `X-Key=<key>`.
            let mut word = word.to_owned();
            for part in core.split(['.', '/', '=']) {
                if looks_like_secret(part) {
                    word = word.replace(part, "(value not shown)");
                }
            }
            word
        })
        .collect()
}

fn redact_quoted(text: &str, quote: char) -> String {
    let parts: Vec<&str> = text.split(quote).collect();
    if parts.len() < 3 {
        return text.to_owned();
    }
    let last = parts.len() - 1;
    let q = quote.to_string();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // Odd parts are inside a pair of quotes (an unpaired trailing quote opens nothing).
            if i % 2 == 1 && i < last && looks_like_secret(part) {
                "(value not shown)"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(&q)
}

/// Every string of the environment (keys included) that looks like a credential is reported at
/// its path, without its value. Secret *references* (`{ secret = { name, key } }`) are names and
/// pass; values belong in Kubernetes Secrets.
pub(super) fn no_secret_values(r: &mut Report, env: &Environment) {
    match serde_json::to_value(env) {
        Ok(value) => walk(r, "", &value),
        Err(e) => r.push(
            "",
            format!("cannot inspect the environment for secrets: {e}"),
        ),
    }
}

fn walk(r: &mut Report, path: &str, value: &Value) {
    match value {
        Value::String(s) if looks_like_secret(s) => r.push(
            path,
            "looks like a credential (value not shown): expected no secrets in environment files; \
             store it in a Kubernetes Secret and reference it, e.g. `{ secret = { name = \"…\", key = \"…\" } }`",
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(r, &format!("{path}[{i}]"), item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if looks_like_secret(key) {
                    r.push(
                        path,
                        "has a key that looks like a credential (key not shown): expected no \
                         secrets in environment files; store it in a Kubernetes Secret",
                    );
                    continue;
                }
                walk(r, &key_path(path, key), item);
            }
        }
        _ => {}
    }
}
