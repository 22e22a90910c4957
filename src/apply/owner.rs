//! Who else writes an environment: a GitOps engine. Flux's kustomize-controller labels every
//! object it applies `kustomize.toolkit.fluxcd.io/name` and `/namespace` (its Kustomization);
//! Argo CD annotates `argocd.argoproj.io/tracking-id: <application>:<group>/<kind>:<ns>/<name>`.
//! An environment has one writer: `apply` refuses one an engine manages (preflight), and
//! `plan --live` compares it the engine's way (without `apply`'s own ApplySet parent).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Error, Result, api_of, describe_object};
use crate::objects::Object;

/// Flux's labels on what a Kustomization applied.
pub const FLUX_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
/// See [`FLUX_NAME`].
pub const FLUX_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Argo CD's annotation on what an Application synced.
pub const ARGOCD_TRACKING: &str = "argocd.argoproj.io/tracking-id";

/// The GitOps object that manages a live object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A Flux Kustomization.
    Flux {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An Argo CD Application (as its tracking id names it).
    ArgoCd {
        /// Its name.
        application: String,
    },
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Flux { namespace, name } => write!(f, "Flux Kustomization {namespace}/{name}"),
            Owner::ArgoCd { application } => write!(f, "Argo CD Application {application}"),
        }
    }
}

impl Owner {
    /// The engine's owner of an object with metadata `meta`, if any.
    pub fn of(meta: &ObjectMeta) -> Option<Self> {
        let label = |key: &str| meta.labels.as_ref()?.get(key).filter(|v| !v.is_empty());
        if let (Some(name), Some(namespace)) = (label(FLUX_NAME), label(FLUX_NAMESPACE)) {
            return Some(Owner::Flux {
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
        let tracking = meta.annotations.as_ref()?.get(ARGOCD_TRACKING)?;
        let application = tracking.split_once(':')?.0;
        (!application.is_empty()).then(|| Owner::ArgoCd {
            application: application.to_owned(),
        })
    }

    /// What takes the environment back from this owner.
    pub fn how_to_take_over(&self) -> String {
        match self {
            Owner::Flux { namespace, name } => format!(
                "change the environment in Git and let Flux apply it; to take it over, first \
                 `flux suspend kustomization {name} -n {namespace}` (or delete the \
                 Kustomization), then apply with --force-conflicts"
            ),
            Owner::ArgoCd { application } => format!(
                "change the environment in Git and let Argo CD sync it; to take it over, first \
                 turn off automated sync of Application {application} (or delete it), then \
                 apply with --force-conflicts"
            ),
        }
    }
}

/// The engines' objects that manage live objects among `objects`, each with the live objects
/// it manages (`Kind namespace/name`). Objects that do not exist yet are skipped.
pub async fn owners(
    client: &kube::Client,
    objects: &[Object],
) -> Result<BTreeMap<Owner, Vec<String>>> {
    let reads = objects.iter().map(|object| async move {
        let live = match api_of(client, object).get_metadata_opt(object.name()).await {
            Ok(live) => live,
            // A custom resource whose CRD the cluster lacks (the server answers 404 without a
            // Status): nothing of it exists, and preflight names the missing CRD.
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(e) => return Err(Error::kube(format!("read {}", describe_object(object)))(e)),
        };
        Ok::<_, Error>(
            live.and_then(|m| Owner::of(&m.metadata))
                .map(|o| (o, object)),
        )
    });
    let mut owners: BTreeMap<Owner, Vec<String>> = BTreeMap::new();
    for found in futures_util::future::join_all(reads).await {
        if let Some((owner, object)) = found? {
            owners
                .entry(owner)
                .or_default()
                .push(describe_object(object));
        }
    }
    Ok(owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        ObjectMeta {
            labels: map(labels),
            annotations: map(annotations),
            ..Default::default()
        }
    }

    #[test]
    fn flux_and_argo_cd_owners_are_read_from_their_marks() {
        let flux = meta(
            &[(FLUX_NAME, "app-prod"), (FLUX_NAMESPACE, "flux-system")],
            &[],
        );
        let owner = Owner::of(&flux);
        assert_eq!(
            owner.as_ref().map(ToString::to_string).as_deref(),
            Some("Flux Kustomization flux-system/app-prod")
        );
        let argo = meta(
            &[],
            &[(
                ARGOCD_TRACKING,
                "app-prod:apps/Deployment:ai-services/ai-api-proxy",
            )],
        );
        assert_eq!(
            Owner::of(&argo),
            Some(Owner::ArgoCd {
                application: "app-prod".into()
            })
        );
        assert_eq!(Owner::of(&meta(&[(FLUX_NAME, "x")], &[])), None);
        assert_eq!(
            Owner::of(&meta(&[("app.kubernetes.io/instance", "x")], &[])),
            None
        );
    }

    #[test]
    fn the_way_back_names_the_engine_object() {
        let owner = Owner::Flux {
            namespace: "flux-system".into(),
            name: "app-prod".into(),
        };
        assert!(
            owner
                .how_to_take_over()
                .contains("flux suspend kustomization app-prod -n flux-system"),
            "{}",
            owner.how_to_take_over()
        );
    }
}
