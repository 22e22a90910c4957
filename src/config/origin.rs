//! Where a value of an environment came from: a layer (a file, an `INFRA_*` variable, a `--set`
//! flag) or the format's default. The one place that names layers for users.

use std::fmt;

use figment::{Metadata, Source};
use serde::Serialize;

/// Prefix of environment variables that override keys.
pub const ENV_PREFIX: &str = "INFRA_";

/// The layer that set a value, or the default that filled it. As JSON:
/// `{"layer": "file", "path": "environments/production.toml", "line": 22}`,
/// `{"layer": "variable", "name": "INFRA_…"}`, `{"layer": "flag", "flag": "--set …"}` or
/// `{"layer": "default"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Origin {
    /// An environment file, and the line of the key when known.
    File {
        /// The path as given (`environments/production.toml`).
        path: String,
        /// 1-based line of the key.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
    },
    /// An `INFRA_*` environment variable (its name; never its value).
    Variable {
        /// `INFRA_AUTOSCALING__MAX_REPLICAS`.
        name: String,
    },
    /// A `--set key.path` flag (its key; never its value).
    Flag {
        /// `--set autoscaling.max_replicas`.
        flag: String,
    },
    /// No layer set it: the environment format's default.
    Default,
}

impl Origin {
    /// The origin figment recorded for the value at the dotted `path`.
    pub(crate) fn of(md: &Metadata, path: &str) -> Self {
        match &md.source {
            Some(Source::File(file)) => Self::File {
                path: file.display().to_string(),
                line: None,
            },
            Some(Source::Custom(_)) => Self::Flag {
                flag: md.name.to_string(),
            },
            _ if md.name.contains("environment variable") => {
                let var: Vec<String> = path
                    .split('.')
                    .map(|k| k.split('[').next().unwrap_or(k).to_ascii_uppercase())
                    .collect();
                Self::Variable {
                    name: format!("{ENV_PREFIX}{}", var.join("__")),
                }
            }
            _ => Self::Flag {
                flag: md.name.to_string(),
            },
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "{path}:{line}"),
            Self::File { path, line: None } => f.write_str(path),
            Self::Variable { name } => write!(f, "environment variable {name}"),
            Self::Flag { flag } => f.write_str(flag),
            Self::Default => f.write_str("default"),
        }
    }
}
