//! Every ConfigMap key the proxy reads (an upstream's CA bundle) exists in the namespace: a
//! missing one would keep the pod from starting (the kubelet cannot mount it), so `apply`
//! refuses before it rolls anything. Only key names are read.

use ai_api_proxy_config::ConfigMapRef;
use futures_util::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::apply::{Error, Result};

/// One ConfigMap reference the cluster cannot satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigMapProblem {
    /// There is no ConfigMap of that name.
    Missing {
        /// ConfigMap name.
        name: String,
        /// The key the proxy reads from it.
        key: String,
    },
    /// The ConfigMap exists but has no such key (in `data` or `binaryData`).
    MissingKey {
        /// ConfigMap name.
        name: String,
        /// The key the proxy reads from it.
        key: String,
        /// The keys it does have.
        present: Vec<String>,
    },
}

/// What is missing of `refs` in `namespace` (read concurrently).
pub async fn check(
    client: &kube::Client,
    namespace: &str,
    refs: &[&ConfigMapRef],
) -> Result<Vec<ConfigMapProblem>> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = join_all(refs.iter().map(|r| maps.get_opt(&r.name))).await;
    let mut problems = Vec::new();
    for (r, map) in refs.iter().zip(found) {
        let map = map.map_err(Error::kube(format!(
            "read ConfigMap {namespace}/{}",
            r.name
        )))?;
        problems.extend(missing(r, map.as_ref()));
    }
    Ok(problems)
}

/// What is wrong with `map` as the holder of `r`, if anything.
pub fn missing(r: &ConfigMapRef, map: Option<&ConfigMap>) -> Option<ConfigMapProblem> {
    let Some(map) = map else {
        return Some(ConfigMapProblem::Missing {
            name: r.name.clone(),
            key: r.key.clone(),
        });
    };
    let mut present: Vec<String> = map
        .data
        .iter()
        .flat_map(|d| d.keys().cloned())
        .chain(map.binary_data.iter().flat_map(|d| d.keys().cloned()))
        .collect();
    present.sort();
    (!present.contains(&r.key)).then(|| ConfigMapProblem::MissingKey {
        name: r.name.clone(),
        key: r.key.clone(),
        present,
    })
}

/// One problem, and the `kubectl` command that fixes it.
pub(super) fn describe(namespace: &str, problem: &ConfigMapProblem) -> String {
    match problem {
        ConfigMapProblem::Missing { name, key } => format!(
            "ConfigMap `{name}` (key `{key}`) does not exist in namespace `{namespace}`; create it with:\n    kubectl -n {namespace} create configmap {name} --from-file={key}=<file>"
        ),
        ConfigMapProblem::MissingKey { name, key, present } => {
            let present = if present.is_empty() {
                "no keys".to_owned()
            } else {
                format!("keys {}", present.join(", "))
            };
            format!(
                "ConfigMap `{name}` in namespace `{namespace}` has no key `{key}` (it has {present}); recreate it with that key:\n    kubectl -n {namespace} create configmap {name} --from-file={key}=<file> --dry-run=client -o yaml | kubectl apply -f -"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn reference() -> ConfigMapRef {
        ConfigMapRef {
            name: "internal-ca".into(),
            key: "ca.crt".into(),
        }
    }

    #[test]
    fn a_missing_config_map_or_key_is_named_with_its_fix() {
        let map = ConfigMap {
            data: Some(BTreeMap::from([("bundle.pem".into(), "…".into())])),
            ..Default::default()
        };
        assert_eq!(
            missing(&reference(), Some(&map))
                .map(|p| describe("ai-services", &p))
                .as_deref(),
            Some(
                "ConfigMap `internal-ca` in namespace `ai-services` has no key `ca.crt` (it has keys bundle.pem); recreate it with that key:\n    kubectl -n ai-services create configmap internal-ca --from-file=ca.crt=<file> --dry-run=client -o yaml | kubectl apply -f -"
            )
        );
        let text = describe("ai-services", &missing(&reference(), None).unwrap());
        assert!(
            text.starts_with(
                "ConfigMap `internal-ca` (key `ca.crt`) does not exist in namespace `ai-services`"
            ),
            "{text}"
        );
        let map = ConfigMap {
            binary_data: Some(BTreeMap::from([(
                "ca.crt".into(),
                k8s_openapi::ByteString(vec![1]),
            )])),
            ..Default::default()
        };
        assert_eq!(missing(&reference(), Some(&map)), None);
    }
}
