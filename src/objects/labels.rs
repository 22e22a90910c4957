//! The recommended `app.kubernetes.io/*` labels every object carries, and the stable subset selectors use.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::config::Environment;

/// `app.kubernetes.io/name`: the application (`env.name`).
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: this deployment of it (`<env.name>-<environment>`).
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/version`: the image tag, or a short form of its digest.
pub const VERSION: &str = "app.kubernetes.io/version";
/// `app.kubernetes.io/component`: the part of the architecture.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/part-of`: the application this belongs to.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`: the tool that owns the objects.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The value of `app.kubernetes.io/managed-by`.
pub const MANAGER: &str = "infra";
/// The value of `app.kubernetes.io/component`.
pub const COMPONENT_PROXY: &str = "proxy";

/// Longest label value Kubernetes accepts.
const MAX_LABEL_VALUE: usize = 63;

/// All recommended labels: on every object and on the pod template.
pub fn recommended(env: &Environment, env_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector(env, env_name);
    labels.insert(VERSION.into(), version(env));
    labels.insert(COMPONENT.into(), COMPONENT_PROXY.into());
    labels.insert(PART_OF.into(), env.name.as_str().into());
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels
}

/// The labels that never change between releases (name and instance): the only ones
/// selectors use, because a Deployment's selector is immutable and a Service that selected on
/// the version would drop the old pods' endpoints mid-rollout.
pub fn selector(env: &Environment, env_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.into(), env.name.as_str().into()),
        (INSTANCE.into(), instance(env, env_name)),
    ])
}

/// A `matchLabels` selector on [`selector`].
pub fn label_selector(env: &Environment, env_name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(env, env_name)),
        ..Default::default()
    }
}

/// Metadata of a namespaced object named after the application: name, namespace, labels
/// (the recommended ones, and membership of the environment's ApplySet).
pub fn metadata(env: &Environment, env_name: &str) -> ObjectMeta {
    let mut labels = recommended(env, env_name);
    labels.insert(super::applyset::PART_OF.into(), super::applyset::id(env));
    ObjectMeta {
        name: Some(env.name.as_str().into()),
        namespace: Some(env.namespace.as_str().into()),
        labels: Some(labels),
        ..Default::default()
    }
}

/// `<env.name>-<environment>`, made a valid label value.
pub fn instance(env: &Environment, env_name: &str) -> String {
    label_value(&format!("{}-{env_name}", env.name.as_str()))
}

/// The image tag, else the first 12 hex digits of the digest (`sha256-0123456789ab`).
fn version(env: &Environment) -> String {
    match (&env.image.tag, &env.image.digest) {
        (Some(tag), _) => label_value(tag),
        (None, Some(digest)) => {
            let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
            let short: String = hex.chars().take(12).collect();
            if algorithm.is_empty() {
                label_value(&short)
            } else {
                label_value(&format!("{algorithm}-{short}"))
            }
        }
        (None, None) => "unknown".into(),
    }
}

/// `s` as a label value: characters outside `[A-Za-z0-9._-]` become `-`, at most 63
/// characters, beginning and ending with an alphanumeric character.
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_LABEL_VALUE)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn selector_labels_are_the_stable_subset() {
        let env = load("production");
        let selector = selector(&env, "production");
        let all = recommended(&env, "production");
        assert_eq!(
            selector.keys().collect::<Vec<_>>(),
            [INSTANCE, NAME].iter().collect::<Vec<_>>()
        );
        assert!(selector.iter().all(|(k, v)| all.get(k) == Some(v)));
        assert!(!selector.contains_key(VERSION));
    }

    #[test]
    fn selector_does_not_change_with_the_image() {
        let env = load("production");
        let mut other = env.clone();
        other.image.tag = Some("9.9.9".into());
        other.image.digest = Some(format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(selector(&env, "production"), selector(&other, "production"));
        assert_ne!(
            recommended(&env, "production")[VERSION],
            recommended(&other, "production")[VERSION]
        );
    }

    #[test]
    fn version_is_the_tag_or_a_short_digest() {
        let mut env = load("production");
        assert_eq!(version(&env), "0.1.0");
        env.image.tag = None;
        env.image.digest = Some(format!("sha256:{}", "0123456789abcdef".repeat(4)));
        assert_eq!(version(&env), "sha256-0123456789ab");
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("feature/x+y"), "feature-x-y");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(
            recommended(&load("production"), "production")[INSTANCE],
            "ai-api-proxy-production"
        );
    }
}
