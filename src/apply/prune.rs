//! Prune: delete members of our set that left the plan.
//!
//! Over the kinds we build (except the Namespace, see [`Kind::prunable`]) and the kinds the
//! parent records (resolved through discovery, so a kind an older version applied is still
//! found). What is ours: in the environment's namespace, carrying the selector labels
//! (`app.kubernetes.io/name` and `instance`), `app.kubernetes.io/managed-by=infra` and
//! `applyset.kubernetes.io/part-of=<our set>` (see
//! [`crate::objects::applyset::member_selector`]); each listed object is checked for them again
//! before it is deleted. Never a Secret, never the Namespace.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};

use super::discovery::Discovery;
use super::{Action, Error, Outcome, Result, api_resource, display_name, dynamic_api};
use crate::objects::{Kind, Object};

/// The resources to prune over: ours in reverse render order (what depends on others goes
/// first), then every other namespaced kind the parent records and the server still serves.
pub fn kinds(recorded: &BTreeSet<String>, discovery: &Discovery) -> Vec<ApiResource> {
    let ours: Vec<ApiResource> = Kind::ALL
        .iter()
        .rev()
        .copied()
        .filter(|k| k.prunable())
        .map(api_resource)
        .collect();
    let known: BTreeSet<String> = Kind::ALL.iter().map(|k| k.meta().group_kind()).collect();
    let others = recorded
        .iter()
        .filter(|gk| !known.contains(*gk))
        .filter_map(|gk| discovery.preferred(gk))
        .filter(|served| served.namespaced)
        .map(|served| served.resource.clone());
    others.chain(ours).collect()
}

/// A label selector matching every label of `labels`, e.g.
/// `app.kubernetes.io/instance=ai-api-proxy-production,app.kubernetes.io/managed-by=infra,…`.
pub fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One object a prune would delete.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Its resource.
    pub resource: ApiResource,
    /// The live object.
    pub object: DynamicObject,
}

impl Candidate {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Every object in `namespace` of `resources` that carries every label of `selector` and is
/// not in `keep` (listed concurrently).
pub async fn candidates(
    client: &kube::Client,
    namespace: &str,
    resources: &[ApiResource],
    selector: &BTreeMap<String, String>,
    keep: &[Object],
) -> Result<Vec<Candidate>> {
    let keep: BTreeSet<(&str, &str)> = keep.iter().map(|o| (o.kind(), o.name())).collect();
    let list = ListParams::default().labels(&label_selector(selector));
    let lists = join_all(resources.iter().map(|r| {
        let list = &list;
        async move {
            match dynamic_api(client, r, Some(namespace)).list(list).await {
                // A custom resource whose CRD the cluster does not have: nothing of it to prune.
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(kube::api::ObjectList {
                    types: Default::default(),
                    metadata: Default::default(),
                    items: Vec::new(),
                }),
                listed => listed.map_err(Error::kube(format!("list {} in {namespace}", r.kind))),
            }
        }
    }))
    .await;
    let mut found = Vec::new();
    for (resource, listed) in resources.iter().zip(lists) {
        let mut items: Vec<DynamicObject> = listed?
            .items
            .into_iter()
            .filter(|o| carries(o, selector))
            .filter(|o| {
                let name = o.metadata.name.as_deref().unwrap_or_default();
                !keep.contains(&(resource.kind.as_str(), name))
            })
            .collect();
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        found.extend(items.into_iter().map(|object| Candidate {
            resource: resource.clone(),
            object,
        }));
    }
    Ok(found)
}

/// Whether `object` carries every label of `selector` (checked again on what the server listed).
fn carries(object: &DynamicObject, selector: &BTreeMap<String, String>) -> bool {
    let labels = object.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Deletes (or, with `dry_run`, has the server validate deleting) every candidate.
pub async fn delete(
    client: &kube::Client,
    namespace: &str,
    candidates: &[Candidate],
    dry_run: bool,
    report: &mut impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let mut params = DeleteParams::background();
    params.dry_run = dry_run;
    let mut outcomes = Vec::new();
    for c in candidates {
        let kind = &c.resource.kind;
        let shown = display_name(Some(namespace), c.name());
        match dynamic_api(client, &c.resource, Some(namespace))
            .delete(c.name(), &params)
            .await
        {
            Ok(_) => {}
            // Gone between the list and the delete: what we wanted.
            Err(kube::Error::Api(status)) if status.is_not_found() => continue,
            Err(error) => return Err(Error::kube(format!("prune {kind} {shown}"))(error)),
        }
        let outcome = Outcome {
            action: Action::Pruned,
            kind: kind.clone(),
            name: shown,
            dry_run,
        };
        report(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::applyset;
    use crate::objects::tests::load;

    #[test]
    fn the_namespace_is_never_pruned_and_ours_go_in_reverse_order() {
        let kinds: Vec<_> = kinds(&BTreeSet::new(), &Discovery::default())
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert!(!kinds.contains(&"Namespace".to_owned()));
        assert!(!kinds.contains(&"Secret".to_owned()));
        assert_eq!(kinds.len(), Kind::ALL.len() - 1);
        let last = Kind::ALL.last().map(|k| k.meta().kind);
        assert_eq!(kinds.first().map(String::as_str), last);
    }

    #[test]
    fn only_objects_with_every_label_are_candidates() {
        let env = load("production");
        let selector = applyset::member_selector(&env, "production");
        let mut object = DynamicObject::new("a", &api_resource(Kind::ConfigMap));
        object.metadata.labels = Some(selector.clone());
        assert!(carries(&object, &selector));
        object
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(applyset::PART_OF);
        assert!(!carries(&object, &selector));
    }

    #[test]
    fn the_selector_is_name_instance_managed_by_and_the_applyset() {
        let env = load("production");
        assert_eq!(
            label_selector(&applyset::member_selector(&env, "production")),
            format!(
                "app.kubernetes.io/instance=ai-api-proxy-production,\
                 app.kubernetes.io/managed-by=infra,app.kubernetes.io/name=ai-api-proxy,\
                 applyset.kubernetes.io/part-of={}",
                applyset::id(&env)
            )
        );
    }
}
