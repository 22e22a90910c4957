//! Loading: the configuration file `infra` renders, and the secrets it points to.

use std::path::Path;

use ai_api_proxy_config::{KeySource, ProxyConfig};

use crate::start_error::StartError;

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
