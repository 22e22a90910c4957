//! Every Secret key the proxy reads exists in the namespace.
//!
//! The seed's "403 Invalid API Key" came from a missing Secret or a key under another name.
//! Here the Secret is a reference in config, so `apply` can check it before it rolls a pod
//! that would start without its key. Only key *names* are read and printed, never values.

use ai_api_proxy_config::SecretRef;
use futures_util::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::apply::{Error, Result};

/// One Secret reference the cluster cannot satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretProblem {
    /// There is no Secret of that name.
    MissingSecret {
        /// Secret name.
        name: String,
        /// The key the proxy reads from it.
        key: String,
    },
    /// The Secret exists but has no such key.
    MissingKey {
        /// Secret name.
        name: String,
        /// The key the proxy reads from it.
        key: String,
        /// The keys it does have (names only).
        present: Vec<String>,
    },
}

/// What is missing of `refs` in `namespace` (read concurrently; `data` only: `stringData` is
/// write-only and never returned).
pub async fn check(
    client: &kube::Client,
    namespace: &str,
    refs: &[&SecretRef],
) -> Result<Vec<SecretProblem>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = join_all(refs.iter().map(|r| secrets.get_opt(&r.name))).await;
    let mut problems = Vec::new();
    for (r, secret) in refs.iter().zip(found) {
        let secret = secret.map_err(Error::kube(format!("read Secret {namespace}/{}", r.name)))?;
        problems.extend(missing(r, secret.as_ref()));
    }
    Ok(problems)
}

/// What is wrong with `secret` as the holder of `r`, if anything. Only key names are read.
pub fn missing(r: &SecretRef, secret: Option<&Secret>) -> Option<SecretProblem> {
    let Some(secret) = secret else {
        return Some(SecretProblem::MissingSecret {
            name: r.name.clone(),
            key: r.key.clone(),
        });
    };
    let present: Vec<String> = secret
        .data
        .iter()
        .flat_map(|data| data.keys().cloned())
        .collect();
    (!present.contains(&r.key)).then(|| SecretProblem::MissingKey {
        name: r.name.clone(),
        key: r.key.clone(),
        present,
    })
}

/// One problem, and the `kubectl` command that fixes it.
pub(super) fn describe(namespace: &str, problem: &SecretProblem) -> String {
    match problem {
        SecretProblem::MissingSecret { name, key } => format!(
            "Secret `{name}` (key `{key}`) does not exist in namespace `{namespace}`; create it with:\n    kubectl -n {namespace} create secret generic {name} --from-literal={key}=\"$VALUE\""
        ),
        SecretProblem::MissingKey { name, key, present } => {
            let present = if present.is_empty() {
                "no keys".to_owned()
            } else {
                format!("keys {}", present.join(", "))
            };
            format!(
                "Secret `{name}` in namespace `{namespace}` has no key `{key}` (it has {present}); add it with:\n    kubectl -n {namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"{key}\":\"'\"$VALUE\"'\"}}}}'"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(keys: &[&str]) -> Secret {
        Secret {
            data: Some(
                keys.iter()
                    .map(|k| ((*k).to_owned(), ByteString(b"s3cr3t-value".to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn reference() -> SecretRef {
        SecretRef {
            name: "holysheep-api-key".into(),
            key: "api-key".into(),
        }
    }

    #[test]
    fn a_secret_with_the_key_passes() {
        assert_eq!(
            missing(&reference(), Some(&secret(&["api-key", "other"]))),
            None
        );
    }

    #[test]
    fn a_missing_secret_or_key_is_a_problem() {
        assert_eq!(
            missing(&reference(), None),
            Some(SecretProblem::MissingSecret {
                name: "holysheep-api-key".into(),
                key: "api-key".into()
            })
        );
        assert_eq!(
            missing(&reference(), Some(&secret(&["apikey"]))),
            Some(SecretProblem::MissingKey {
                name: "holysheep-api-key".into(),
                key: "api-key".into(),
                present: vec!["apikey".into()]
            })
        );
        assert!(matches!(
            missing(&reference(), Some(&Secret::default())),
            Some(SecretProblem::MissingKey { present, .. }) if present.is_empty()
        ));
    }

    #[test]
    fn the_message_names_secret_key_namespace_and_the_fix_but_no_value() {
        let text = describe("ai-services", &missing(&reference(), None).unwrap());
        assert!(text.contains("Secret `holysheep-api-key` (key `api-key`) does not exist in namespace `ai-services`"), "{text}");
        assert!(text.contains("kubectl -n ai-services create secret generic holysheep-api-key --from-literal=api-key=\"$VALUE\""), "{text}");
        let text = describe(
            "ai-services",
            &missing(&reference(), Some(&secret(&["apikey"]))).unwrap(),
        );
        assert!(
            text.contains("has no key `api-key` (it has keys apikey)"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
