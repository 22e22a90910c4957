//! Preflight: every Secret key the proxy reads exists in the namespace, before anything changes.
//!
//! The seed's "403 Invalid API Key" came from a missing Secret or a key under another name.
//! Here the Secret is a reference in config, so `apply` can check it before it rolls a pod
//! that would start without its key. Only key *names* are read and printed, never values.

use std::fmt::Write as _;

use ai_api_proxy_config::SecretRef;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;

use super::{Error, Result};

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

/// Checks that every referenced Secret exists in `namespace` and holds its key (in `data`:
/// `stringData` is write-only and never returned). All problems are reported at once.
pub async fn check_secrets(
    client: &kube::Client,
    namespace: &str,
    refs: &[&SecretRef],
) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut problems = Vec::new();
    for r in refs {
        let secret = secrets
            .get_opt(&r.name)
            .await
            .map_err(Error::kube(format!("read Secret {namespace}/{}", r.name)))?;
        if let Some(problem) = check(r, secret.as_ref()) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let namespace_exists = if problems
        .iter()
        .any(|p| matches!(p, SecretProblem::MissingSecret { .. }))
    {
        Api::<Namespace>::all(client.clone())
            .get_metadata_opt(namespace)
            .await
            .map_err(Error::kube(format!("read Namespace {namespace}")))?
            .is_some()
    } else {
        true
    };
    Err(Error::MissingSecrets {
        namespace: namespace.to_owned(),
        namespace_exists,
        problems,
    })
}

/// What is wrong with `secret` as the holder of `r`, if anything. Only key names are read.
pub fn check(r: &SecretRef, secret: Option<&Secret>) -> Option<SecretProblem> {
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

/// The error message: every problem, and the `kubectl` command that fixes it.
pub(super) fn describe(
    namespace: &str,
    namespace_exists: bool,
    problems: &[SecretProblem],
) -> String {
    let mut out = format!(
        "preflight failed, nothing was applied: {} Secret key{} the proxy reads {} missing in namespace `{namespace}`",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        if problems.len() == 1 { "is" } else { "are" },
    );
    if !namespace_exists {
        let _ = write!(
            out,
            "\n  namespace `{namespace}` does not exist yet, so no Secret can be in it; create it first:\n    kubectl create namespace {namespace}"
        );
    }
    for problem in problems {
        match problem {
            SecretProblem::MissingSecret { name, key } => {
                let _ = write!(
                    out,
                    "\n  Secret `{name}` (key `{key}`) does not exist in namespace `{namespace}`; create it with:\n    kubectl -n {namespace} create secret generic {name} --from-literal={key}=\"$VALUE\""
                );
            }
            SecretProblem::MissingKey { name, key, present } => {
                let present = if present.is_empty() {
                    "no keys".to_owned()
                } else {
                    format!("keys {}", present.join(", "))
                };
                let _ = write!(
                    out,
                    "\n  Secret `{name}` in namespace `{namespace}` has no key `{key}` (it has {present}); add it with:\n    kubectl -n {namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"{key}\":\"'\"$VALUE\"'\"}}}}'"
                );
            }
        }
    }
    out
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
            check(&reference(), Some(&secret(&["api-key", "other"]))),
            None
        );
    }

    #[test]
    fn a_missing_secret_or_key_is_a_problem() {
        assert_eq!(
            check(&reference(), None),
            Some(SecretProblem::MissingSecret {
                name: "holysheep-api-key".into(),
                key: "api-key".into()
            })
        );
        assert_eq!(
            check(&reference(), Some(&secret(&["apikey"]))),
            Some(SecretProblem::MissingKey {
                name: "holysheep-api-key".into(),
                key: "api-key".into(),
                present: vec!["apikey".into()]
            })
        );
        assert!(matches!(
            check(&reference(), Some(&Secret::default())),
            Some(SecretProblem::MissingKey { present, .. }) if present.is_empty()
        ));
    }

    #[test]
    fn the_message_names_secret_key_namespace_and_the_fix_but_no_value() {
        let problems = [
            check(&reference(), None).unwrap(),
            check(&reference(), Some(&secret(&["apikey"]))).unwrap(),
        ];
        let text = describe("ai-services", true, &problems);
        assert!(text.contains("2 Secret keys"), "{text}");
        assert!(text.contains("Secret `holysheep-api-key` (key `api-key`) does not exist in namespace `ai-services`"), "{text}");
        assert!(text.contains("kubectl -n ai-services create secret generic holysheep-api-key --from-literal=api-key=\"$VALUE\""), "{text}");
        assert!(
            text.contains("has no key `api-key` (it has keys apikey)"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains("does not exist yet"), "{text}");
        let text = describe("ai-services", false, &problems[..1]);
        assert!(
            text.contains("namespace `ai-services` does not exist yet"),
            "{text}"
        );
        assert!(
            text.contains("kubectl create namespace ai-services"),
            "{text}"
        );
    }
}
