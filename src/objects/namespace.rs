//! The Namespace everything lives in, enforcing the `restricted` Pod Security Standard.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels;
use crate::config::Environment;

/// Pod Security Admission: the level the namespace enforces, audits and warns about.
const POD_SECURITY: [(&str, &str); 3] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/audit", "restricted"),
    ("pod-security.kubernetes.io/warn", "restricted"),
];

/// The Namespace `env.namespace`. Our pods meet the restricted profile by construction, so the
/// namespace enforces it: anything else started there is refused.
pub fn namespace(env: &Environment, env_name: &str) -> Namespace {
    let mut labels = labels::recommended(env, env_name);
    labels.extend(POD_SECURITY.map(|(k, v)| (k.to_owned(), v.to_owned())));
    Namespace {
        metadata: ObjectMeta {
            name: Some(env.namespace.as_str().into()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn named_after_the_environment_namespace_and_restricted() {
        let env = load("staging");
        let ns = namespace(&env, "staging");
        assert_eq!(ns.metadata.name.as_deref(), Some("ai-services-staging"));
        assert_eq!(ns.metadata.namespace, None);
        let labels = ns.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str),
            Some("restricted")
        );
        assert!(ns.spec.is_none());
    }
}
