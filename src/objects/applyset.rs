//! ApplySet labels (kubectl's `applyset.kubernetes.io/*`), so kubectl users see our set.
//!
//! Every namespaced object carries `applyset.kubernetes.io/part-of: <id>`; `infra apply`
//! keeps a parent ConfigMap (`applyset-<name>`, labelled `applyset.kubernetes.io/id: <id>`,
//! annotated with the tooling and the member group-kinds) and prunes by the `part-of` label.
//! The id is kubectl's: `applyset-` + base64url(sha256(`<name>.<namespace>.<kind>.<group>`)) +
//! `-v1` of the parent. The Namespace is not a member: a set must never prune its own namespace.
//! The parent is written by `apply` only, never rendered: Argo CD and Flux track their own sets.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::labels;
use crate::config::Environment;

/// Label on every member: the id of its set.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// Label on the parent: the id of the set it records.
pub const ID: &str = "applyset.kubernetes.io/id";
/// Annotation on the parent: the tool that owns the set (`<tool>/<semver>`); tools refuse to
/// change sets another tool owns.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// Annotation on the parent: the member group-kinds (`Kind.group`, sorted, comma-separated).
pub const CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";

/// The tool part of [`TOOLING`].
pub const TOOL: &str = "infra";

/// Name of the parent ConfigMap, in `env.namespace`.
pub fn parent_name(env: &Environment) -> String {
    parent_name_of(env.name.as_str())
}

/// Name of the parent ConfigMap of the application named `name` (the environment's `name`).
pub fn parent_name_of(name: &str) -> String {
    format!("applyset-{name}")
}

/// The set's id: `applyset-<base64url(sha256(<name>.<namespace>.ConfigMap.))>-v1`, as kubectl
/// computes it for a ConfigMap parent (the core group is the empty string).
pub fn id(env: &Environment) -> String {
    let gknn = format!("{}.{}.ConfigMap.", parent_name(env), env.namespace.as_str());
    format!("applyset-{}-v1", base64url(&Sha256::digest(gknn)))
}

/// The labels of our members: [`labels::selector`], `managed-by=infra` and [`PART_OF`]; what
/// `apply` prunes by.
pub fn member_selector(env: &Environment, env_name: &str) -> BTreeMap<String, String> {
    let mut selector = labels::selector(env, env_name);
    selector.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
    selector.insert(PART_OF.into(), id(env));
    selector
}

/// The parent ConfigMap recording a set of `group_kinds`: our recommended labels plus [`ID`],
/// and the [`TOOLING`] and [`CONTAINS_GROUP_KINDS`] annotations. It has no data.
pub fn parent(env: &Environment, env_name: &str, group_kinds: &BTreeSet<String>) -> ConfigMap {
    let mut labels = labels::recommended(env, env_name);
    labels.insert(ID.into(), id(env));
    let annotations = BTreeMap::from([
        (
            TOOLING.to_owned(),
            format!("{TOOL}/v{}", env!("CARGO_PKG_VERSION")),
        ),
        (
            CONTAINS_GROUP_KINDS.to_owned(),
            group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
        ),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(parent_name(env)),
            namespace: Some(env.namespace.as_str().into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `parent` recording `group_kinds` (in its [`CONTAINS_GROUP_KINDS`] annotation) instead of
/// what it recorded.
pub fn recording(parent: &ConfigMap, group_kinds: &BTreeSet<String>) -> ConfigMap {
    let mut parent = parent.clone();
    parent.metadata.annotations.get_or_insert_default().insert(
        CONTAINS_GROUP_KINDS.to_owned(),
        group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
    );
    parent
}

/// Unpadded base64 with the URL-safe alphabet (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;
    use crate::objects::{Kind, Object, objects};

    #[test]
    fn base64url_matches_rfc_4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn the_id_is_kubectls_for_a_configmap_parent_and_a_valid_label_value() {
        let env = load("production");
        // printf %s 'applyset-ai-api-proxy.ai-services.ConfigMap.' | sha256sum | cut -d' ' -f1 \
        //   | xxd -r -p | basenc --base64url | tr -d =
        let expected = "applyset-jAaSmi-V8MfU0eDSkAuwfauQFEnTg14w8fbrfg4zINo-v1";
        assert_eq!(id(&env), expected);
        assert_eq!(id(&env).len(), "applyset-".len() + 43 + "-v1".len());
        assert_eq!(labels::label_value(&id(&env)), id(&env));
    }

    #[test]
    fn every_namespaced_object_is_a_member_and_the_namespace_is_not() {
        let env = load("production");
        for object in objects(&env, "production") {
            let labels = object.metadata().labels.clone().unwrap_or_default();
            match object {
                Object::Namespace(_) => assert!(!labels.contains_key(PART_OF)),
                _ => assert_eq!(labels.get(PART_OF), Some(&id(&env)), "{}", object.kind()),
            }
        }
    }

    #[test]
    fn the_parent_names_its_id_tooling_and_group_kinds() {
        let env = load("production");
        let kinds = BTreeSet::from([
            Kind::Deployment.meta().group_kind(),
            Kind::ConfigMap.meta().group_kind(),
        ]);
        let parent = parent(&env, "production", &kinds);
        assert_eq!(
            parent.metadata.name.as_deref(),
            Some("applyset-ai-api-proxy")
        );
        let labels = parent.metadata.labels.unwrap();
        assert_eq!(labels[ID], id(&env));
        assert!(!labels.contains_key(PART_OF));
        let annotations = parent.metadata.annotations.unwrap();
        assert_eq!(
            annotations[CONTAINS_GROUP_KINDS],
            "ConfigMap,Deployment.apps"
        );
        assert!(annotations[TOOLING].starts_with("infra/v"));
    }
}
