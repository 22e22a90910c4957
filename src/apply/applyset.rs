//! The ApplySet parent in the cluster: what it records, and whether it is ours to change.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::{Error, Result};
use crate::objects::applyset::{CONTAINS_GROUP_KINDS, ID, TOOL, TOOLING};

/// The group-kinds the parent `namespace/name` records (empty when there is no parent yet).
/// Fails when the parent belongs to another tool or another set: per the ApplySet spec, a
/// tool must not change a set it does not own.
pub async fn recorded_kinds(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    id: &str,
) -> Result<BTreeSet<String>> {
    let parent = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("read ConfigMap {namespace}/{name}")))?;
    let Some(parent) = parent else {
        return Ok(BTreeSet::new());
    };
    check_owner(&parent, id).map_err(|owner| Error::ForeignApplySet {
        parent: format!("ConfigMap {namespace}/{name}"),
        owner,
    })?;
    Ok(parent
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONTAINS_GROUP_KINDS))
        .map(|kinds| {
            kinds
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// `Err(owner)` unless `parent` is the parent of our set (`id`) and infra manages it: another
/// set's id, another tool's tooling annotation, or none (no tool, or not a parent at all) is
/// refused, as KEP-3659 asks of every tool.
pub fn check_owner(parent: &ConfigMap, id: &str) -> Result<(), String> {
    let meta = &parent.metadata;
    match meta.labels.as_ref().and_then(|l| l.get(ID)) {
        Some(other) if other != id => {
            return Err(format!("is the parent of another set (`{other}`)"));
        }
        Some(_) => {}
        None => return Err(format!("is not an ApplySet parent (no `{ID}` label)")),
    }
    match meta.annotations.as_ref().and_then(|a| a.get(TOOLING)) {
        Some(tooling) if tooling.split('/').next() == Some(TOOL) => Ok(()),
        Some(tooling) => Err(format!(
            "is the parent of an ApplySet managed by `{tooling}`"
        )),
        None => Err(format!(
            "is the parent of an ApplySet managed by no tool (no `{TOOLING}` annotation)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parent(id: &str, tooling: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.labels = Some(BTreeMap::from([(ID.into(), id.into())]));
        cm.metadata.annotations = Some(BTreeMap::from([(TOOLING.into(), tooling.into())]));
        cm
    }

    #[test]
    fn only_our_own_set_may_be_changed() {
        assert_eq!(
            check_owner(&parent("applyset-a-v1", "infra/v0.1.0"), "applyset-a-v1"),
            Ok(())
        );
        assert!(check_owner(&ConfigMap::default(), "applyset-a-v1").is_err());
        let mut untooled = parent("applyset-a-v1", "infra/v0.1.0");
        untooled.metadata.annotations = None;
        assert_eq!(
            check_owner(&untooled, "applyset-a-v1"),
            Err("is the parent of an ApplySet managed by no tool (no `applyset.kubernetes.io/tooling` annotation)".into())
        );
        assert_eq!(
            check_owner(&parent("applyset-a-v1", "kubectl/v1.35"), "applyset-a-v1"),
            Err("is the parent of an ApplySet managed by `kubectl/v1.35`".into())
        );
        assert_eq!(
            check_owner(&parent("applyset-b-v1", "infra/v0.1.0"), "applyset-a-v1"),
            Err("is the parent of another set (`applyset-b-v1`)".into())
        );
    }
}
