//! Merges the layers of an environment and reports every error against the layer it came from.
//!
//! Layers, later wins: `environments/base.toml` → `environments/<env>.toml` → `INFRA_*`
//! variables (nested keys joined by `__`) → `--set key.path=value`.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::origin::{ENV_PREFIX, Origin};
use super::{Environment, validate};

/// What to merge: the environments folder, the environment's name and the `--set` overrides.
#[derive(Clone, Debug)]
pub struct Layers {
    /// Folder holding `base.toml` and `<env>.toml`.
    pub dir: PathBuf,
    /// Environment name (file stem).
    pub env: String,
    /// `key.path=value` overrides, applied last, in order.
    pub sets: Vec<String>,
}

/// One problem, located in the layer that set the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File, variable or `--set` the value came from.
    pub origin: String,
    /// Dotted key path.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `<env>.toml` in the folder.
    #[error("unknown environment `{name}`: there is no {file}\n  available environments: {}", list_or_none(.available))]
    UnknownEnv {
        /// Requested name.
        name: String,
        /// The file that was looked for.
        file: String,
        /// Environments that exist.
        available: Vec<String>,
    },
    /// The folder or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A `--set` argument without `=`.
    #[error("--set {0}: expected `key.path=value`, e.g. `--set autoscaling.max_replicas=20`")]
    BadSet(String),
    /// Values that are malformed, of the wrong type, unknown, or inconsistent.
    #[error("environment `{env}` is invalid ({} problem{}):\n{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, format_problems(.problems))]
    Invalid {
        /// Environment name.
        env: String,
        /// Every problem found.
        problems: Vec<Diagnostic>,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

fn format_problems(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|d| format!("  {}: {}: {}", d.origin, d.path, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The environments defined in `dir` (every `*.toml` but `base.toml`), sorted.
pub fn environments(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "toml" && stem != "base").then_some(stem)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// The merged figment of all layers (without extracting it).
pub fn figment(layers: &Layers) -> Result<Figment, ConfigError> {
    let available = environments(&layers.dir)?;
    let env_file = layers.dir.join(format!("{}.toml", layers.env));
    if !available.contains(&layers.env) {
        return Err(ConfigError::UnknownEnv {
            name: layers.env.clone(),
            file: env_file.display().to_string(),
            available,
        });
    }
    let base = layers.dir.join("base.toml");
    for file in [&base, &env_file] {
        std::fs::metadata(file).map_err(|source| ConfigError::Io {
            path: file.display().to_string(),
            source,
        })?;
    }
    let mut figment = Figment::new()
        .merge(Toml::file_exact(&base))
        .merge(Toml::file_exact(&env_file))
        .merge(Env::prefixed(ENV_PREFIX).split("__"));
    for set in &layers.sets {
        figment = figment.merge(SetFlag::parse(set)?);
    }
    Ok(figment)
}

/// Loads, merges, type-checks and validates one environment.
pub fn load(layers: &Layers) -> Result<Environment, ConfigError> {
    let figment = figment(layers)?;
    let invalid = |problems| ConfigError::Invalid {
        env: layers.env.clone(),
        problems,
    };
    let env: Environment = figment
        .extract()
        .map_err(|e| invalid(e.into_iter().map(|e| diagnose(&figment, e)).collect()))?;
    let problems: Vec<Diagnostic> = validate::check(&env)
        .into_iter()
        .map(|p| {
            let origin = origin_of(&figment, &p.path);
            let message = name_other_origins(&figment, &origin, p.message);
            Diagnostic {
                origin,
                path: p.path,
                message,
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(env)
    } else {
        Err(invalid(problems))
    }
}

/// A `--set key.path=value` override; the value is read like an environment variable's
/// (`20` is a number, `true` a boolean, `[a, b]` a list, anything else a string).
struct SetFlag {
    arg: String,
    key: String,
    value: Value,
}

impl SetFlag {
    fn parse(arg: &str) -> Result<Self, ConfigError> {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| ConfigError::BadSet(validate::redact_text(arg)))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::BadSet(validate::redact_text(arg)));
        }
        let value = value
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(value.to_owned()));
        Ok(Self {
            arg: arg.to_owned(),
            key: key.to_owned(),
            value,
        })
    }
}

impl Provider for SetFlag {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("--set {}", self.key))
            .source(Source::Custom(format!("--set {}", self.arg)))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(&self.key, self.value.clone());
        let dict = nested.into_dict().unwrap_or_default();
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

/// Names a layer the way a user finds it: the file path, the variable, or the `--set` flag.
fn origin_name(metadata: Option<&Metadata>, path: &str) -> String {
    match metadata {
        Some(md) => Origin::of(md, path).to_string(),
        None => "(no layer sets it)".into(),
    }
}

/// The layer that set `path` (or its nearest parent that some layer set).
fn origin_of(figment: &Figment, path: &str) -> String {
    let mut key = path.split('[').next().unwrap_or(path).to_owned();
    loop {
        if let Some(md) = figment.find_metadata(&key) {
            return origin_name(Some(md), &key);
        }
        match key.rsplit_once('.') {
            Some((parent, _)) => key = parent.to_owned(),
            None => return "(no layer sets it)".into(),
        }
    }
}

/// A rule that compares two keys (max ≥ min, request ≤ limit, one timeout within another)
/// quotes the other key's path in its message; when a different layer set that key, say
/// which, so the user finds both values.
fn name_other_origins(figment: &Figment, origin: &str, mut message: String) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    for token in message.split(|c: char| !is_key_char(c)) {
        let token = token.trim_matches('.');
        if !token.contains('.') || seen.contains(&token) {
            continue;
        }
        seen.push(token);
        if let Some(md) = figment.find_metadata(token) {
            let other = origin_name(Some(md), token);
            if other != origin {
                notes.push(format!("`{token}` comes from {other}"));
            }
        }
    }
    for note in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    message
}

fn diagnose(figment: &Figment, e: figment::Error) -> Diagnostic {
    use figment::error::Kind;
    let path = e
        .path
        .iter()
        .fold(String::new(), |acc, k| match k.parse::<usize>() {
            Ok(i) => format!("{acc}[{i}]"),
            Err(_) if acc.is_empty() => k.clone(),
            Err(_) => format!("{acc}.{k}"),
        });
    let origin = match e.metadata.as_ref() {
        Some(md) => origin_name(Some(md), &path),
        None => origin_of(figment, &path),
    };
    let (path, message) = match &e.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path may already end with the unknown key.
            let full = if path.is_empty() || path == *field {
                field.clone()
            } else if path.ends_with(&format!(".{field}")) {
                path
            } else {
                format!("{path}.{field}")
            };
            (
                full,
                format!("unknown key `{field}`{}", suggest(field, expected)),
            )
        }
        Kind::UnknownVariant(variant, expected) => (
            path,
            format!("unknown value `{variant}`{}", suggest(variant, expected)),
        ),
        Kind::MissingField(field) => {
            let full = if path.is_empty() || path == *field {
                field.to_string()
            } else if path.ends_with(&format!(".{field}")) {
                path
            } else {
                format!("{path}.{field}")
            };
            (
                full,
                "missing: this key is required and no layer sets it; expected it in base.toml or the environment's file".into(),
            )
        }
        Kind::InvalidType(actual, expected) => (
            path,
            format!("expected {}, found {}", plain(expected), redact(actual)),
        ),
        Kind::InvalidValue(actual, expected) => (
            path,
            format!(
                "invalid value {}: expected {}",
                redact(actual),
                plain(expected)
            ),
        ),
        Kind::Message(msg) if path.is_empty() && e.metadata.is_some() => {
            ("(file)".into(), msg.clone())
        }
        _ => (path, e.kind.to_string()),
    };
    let origin = if origin == "(no layer sets it)" && message.starts_with("missing") {
        "all layers".into()
    } else {
        origin
    };
    // Messages quote what they reject, TOML syntax errors quote the line, a pasted key can
    // even become a key path: none of them may repeat a secret.
    Diagnostic {
        origin: validate::redact_text(&origin),
        path: validate::redact_text(&path),
        message: validate::redact_text(&message),
    }
}

/// Serde's names for number types, in words.
fn plain(expected: &str) -> String {
    let range = match expected {
        "u8" => " from 0 to 255",
        "u16" => " from 0 to 65535",
        "u32" => " from 0 to 4294967295",
        "u64" => " of 0 or more",
        "i32" | "i64" => "",
        _ => return expected.to_owned(),
    };
    format!("a whole number{range} ({expected})")
}

fn redact(actual: &figment::error::Actual) -> String {
    match actual {
        figment::error::Actual::Str(s) if validate::looks_like_secret(s) => {
            "a string that looks like a secret (value not shown)".into()
        }
        other => other.to_string(),
    }
}

/// `; did you mean `x`?` for the closest candidate, or the list of valid ones.
fn suggest(word: &str, candidates: &[&str]) -> String {
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => format!("; did you mean `{c}`?"),
        None if candidates.is_empty() => String::new(),
        None => format!("; expected one of: {}", candidates.join(", ")),
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(env: &str, sets: &[&str]) -> Layers {
        Layers {
            dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/environments")),
            env: env.into(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The problems `production` has with one `--set`, as printed.
    fn problems_with(set: &str) -> Vec<String> {
        match load(&layers("production", &[set])) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("--set {set} must be refused as invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_rule_comparing_two_keys_names_where_each_was_set() {
        // min 12 > max 10: max is reported where it was set, min's layer is named.
        let text = problems_with("autoscaling.min_replicas=12");
        assert!(
            text.iter().any(
                |t| t.contains("production.toml: autoscaling.max_replicas: got 10")
                    && t.ends_with(
                        "; `autoscaling.min_replicas` comes from --set autoscaling.min_replicas"
                    )
            ),
            "{text:#?}"
        );

        // The README's example: the limit the request is compared with comes from a file.
        let text = problems_with("resources.requests.cpu=4");
        assert!(
            text.iter()
                .any(|t| t.starts_with("--set resources.requests.cpu: ")
                    && t.contains("(resources.limits.cpu)")
                    && t.contains("; `resources.limits.cpu` comes from ")
                    && t.ends_with("environments/production.toml")),
            "{text:#?}"
        );
    }

    #[test]
    fn committed_environments_load() {
        for env in ["development", "staging", "production"] {
            if let Err(e) = load(&layers(env, &[])) {
                panic!("{e}");
            }
        }
    }
}
