//! Prune: delete objects of our kinds, with our labels, that are no longer in the plan.
//!
//! What is ours: an object of a kind `infra` builds, in the environment's namespace, carrying
//! the selector labels (`app.kubernetes.io/name` and `instance`),
//! `app.kubernetes.io/managed-by=infra` and `applyset.kubernetes.io/part-of=<our set>` (see
//! [`crate::build::applyset::member_selector`]). The Namespace is never pruned (deleting it
//! would delete the Secrets and everything else in it), and no other kind (a Secret) ever is.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{DeleteParams, ListParams};

use super::{Action, Error, Outcome, Result, api_resource, display_name, dynamic_api};
use crate::build::{Kind, Object};

/// The kinds that may be pruned: every kind we build except the Namespace, in reverse render
/// order (what depends on others goes first).
pub fn prunable_kinds() -> impl Iterator<Item = Kind> {
    Kind::ALL.iter().rev().copied().filter(|k| k.prunable())
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

/// Deletes (or, with `dry_run`, has the server validate deleting) every object in `namespace`
/// of a prunable kind that carries every label of `selector` and is not in `keep`.
pub async fn prune(
    client: &kube::Client,
    namespace: &str,
    selector: &BTreeMap<String, String>,
    keep: &[Object],
    dry_run: bool,
    report: &mut impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let keep: BTreeSet<(&str, &str)> = keep.iter().map(|o| (o.kind(), o.name())).collect();
    let list = ListParams::default().labels(&label_selector(selector));
    let mut delete = DeleteParams::background();
    delete.dry_run = dry_run;
    let mut outcomes = Vec::new();
    for kind in prunable_kinds() {
        let api = dynamic_api(client, &api_resource(kind), Some(namespace));
        let kind = kind.meta().kind;
        let found = match api.list(&list).await {
            Ok(found) => found,
            // A custom resource whose CRD the cluster does not have: nothing of it to prune.
            Err(kube::Error::Api(status)) if status.is_not_found() => continue,
            Err(error) => return Err(Error::kube(format!("list {kind} in {namespace}"))(error)),
        };
        let mut names: Vec<String> = found
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .filter(|name| !keep.contains(&(kind, name.as_str())))
            .collect();
        names.sort();
        for name in names {
            let shown = display_name(Some(namespace), &name);
            match api.delete(&name, &delete).await {
                Ok(_) => {}
                // Gone between the list and the delete: what we wanted.
                Err(kube::Error::Api(status)) if status.is_not_found() => continue,
                Err(error) => return Err(Error::kube(format!("prune {kind} {shown}"))(error)),
            }
            let outcome = Outcome {
                action: Action::Pruned,
                kind: kind.to_owned(),
                name: shown,
                dry_run,
            };
            report(&outcome);
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::applyset;
    use crate::build::tests::load;

    #[test]
    fn the_namespace_is_never_prunable() {
        let kinds: Vec<_> = prunable_kinds().collect();
        assert!(!kinds.contains(&Kind::Namespace));
        assert_eq!(kinds.len(), Kind::ALL.len() - 1);
        assert_eq!(kinds.first(), Some(&Kind::PrometheusRule));
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
