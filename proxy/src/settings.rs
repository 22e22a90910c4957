//! Loading: the configuration file `infra` renders, and the secrets it points to.

use std::path::{Path, PathBuf};

use ai_api_proxy_config::{KeySource, LoadError, ProxyConfig};

/// Why the proxy cannot start. Messages name files and variables, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is malformed or inconsistent.
    #[error("configuration file {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: LoadError,
    },
    /// A secret file is missing or unreadable.
    #[error("cannot read secret file {path}: {source}")]
    ReadSecret {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable holding a secret is not set.
    #[error("environment variable {0} is not set (or not UTF-8)")]
    MissingEnv(String),
    /// A secret is empty.
    #[error("the secret from {0} is empty")]
    EmptySecret(String),
    /// The client key file has a bad line.
    #[error("client key file from {source_name}, line {line}: {message}")]
    KeyFile {
        /// Where the file came from.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the line itself).
        message: &'static str,
    },
    /// A header value or URL from the configuration cannot be used.
    #[error("upstream {upstream}: {message}")]
    Upstream {
        /// Upstream name.
        upstream: String,
        /// What is wrong.
        message: String,
    },
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads and validates the configuration file.
pub fn load_config(path: &Path) -> Result<ProxyConfig, StartError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    ProxyConfig::from_json(&text).map_err(|source| StartError::Config {
        path: path.to_owned(),
        source,
    })
}

/// Reads a secret value: a mounted Secret file or an environment variable, trailing whitespace
/// trimmed. The value is returned, never logged.
pub fn read_secret(source: &KeySource, secrets_dir: &Path) -> Result<String, StartError> {
    let value = match source {
        KeySource::Secret(r) => {
            let path = r.path(secrets_dir);
            std::fs::read_to_string(&path)
                .map_err(|source| StartError::ReadSecret { path, source })?
        }
        KeySource::Env(var) => {
            std::env::var(var).map_err(|_| StartError::MissingEnv(var.clone()))?
        }
    };
    let trimmed = value.trim_end();
    if trimmed.is_empty() {
        return Err(StartError::EmptySecret(describe(source)));
    }
    Ok(trimmed.to_owned())
}

/// Names a key source for messages: `secret name/key` or `env VAR`.
pub fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Secret(r) => format!("secret {}/{}", r.name, r.key),
        KeySource::Env(var) => format!("env {var}"),
    }
}
