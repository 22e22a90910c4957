//! The ConfigMap holding the proxy's configuration, exactly as `ProxyConfig::to_json` renders it.

use std::collections::BTreeMap;

use ai_api_proxy_config::CONFIG_FILE_NAME;
use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};

use super::labels;
use crate::config::Environment;

/// The ConfigMap with one key, `proxy.json`.
pub fn config_map(env: &Environment, env_name: &str) -> ConfigMap {
    ConfigMap {
        metadata: labels::metadata(env, env_name),
        data: Some(BTreeMap::from([(
            CONFIG_FILE_NAME.to_owned(),
            env.proxy.to_json(),
        )])),
        ..Default::default()
    }
}

/// SHA-256 (lowercase hex) of the rendered proxy configuration: the pod template carries it,
/// so any change of the ConfigMap's content rolls the pods.
pub fn config_hash(env: &Environment) -> String {
    Sha256::digest(env.proxy.to_json().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn holds_the_rendered_proxy_config() {
        let env = load("production");
        let cm = config_map(&env, "production");
        let data = cm.data.unwrap_or_default();
        assert_eq!(data.len(), 1);
        assert_eq!(data.get(CONFIG_FILE_NAME), Some(&env.proxy.to_json()));
        assert!(cm.binary_data.is_none() && cm.immutable.is_none());
    }

    #[test]
    fn hash_is_sha256_hex_and_follows_the_config() {
        let env = load("production");
        let hash = config_hash(&env);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let mut other = env.clone();
        other.proxy.rate_limit.burst += 1;
        assert_ne!(config_hash(&other), hash);
    }
}
