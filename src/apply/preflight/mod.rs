//! Preflight, before any write: the server answers and serves every kind we apply (discovery),
//! we may use every verb we need on every kind (SelfSubjectAccessReview), the namespace exists
//! when Secrets must be in it, and every referenced Secret and ConfigMap holds its key. Every
//! problem is reported at once, and nothing is written.

mod access;
mod config_maps;
mod secrets;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ai_api_proxy_config::{ConfigMapRef, SecretRef};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ApiResource;

use super::discovery::Discovery;
use super::owner::{self, Owner};
use super::{Error, Result};
use crate::objects::Object;

pub use access::Need;
pub use config_maps::ConfigMapProblem;
pub use secrets::SecretProblem;

/// One thing the cluster lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The server does not serve a kind we apply at its `apiVersion`.
    NotServed {
        /// `apiVersion`, e.g. `monitoring.coreos.com/v1`.
        api_version: String,
        /// The kind, e.g. `ServiceMonitor`.
        kind: String,
        /// The environment setting that asks for it, if one does.
        setting: Option<&'static str>,
    },
    /// We may not use a verb on a resource.
    Forbidden {
        /// The verb, e.g. `delete`.
        verb: &'static str,
        /// `plural` or `plural.group`, e.g. `deployments.apps`.
        resource: String,
        /// The namespace (`None`: cluster-wide).
        namespace: Option<String>,
        /// The authorizer's reason, if it gave one.
        reason: Option<String>,
    },
    /// The namespace the Secrets must be in does not exist.
    NoNamespace(String),
    /// A GitOps engine writes the environment's objects (`apply --force-conflicts` goes on).
    ManagedBy {
        /// The engine's object, e.g. a Flux Kustomization.
        owner: Owner,
        /// `Kind namespace/name` of the live objects it manages.
        objects: Vec<String>,
    },
    /// A Secret or a key the proxy reads is missing.
    Secret {
        /// Its namespace.
        namespace: String,
        /// What is missing.
        problem: SecretProblem,
    },
    /// A ConfigMap or a key the proxy reads (a CA bundle) is missing.
    ConfigMap {
        /// Its namespace.
        namespace: String,
        /// What is missing.
        problem: ConfigMapProblem,
    },
}

/// The keys the proxy reads from its namespace: preflight checks they exist.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reads<'a> {
    /// Secret keys (values are never read).
    pub secrets: &'a [&'a SecretRef],
    /// ConfigMap keys (CA bundles).
    pub config_maps: &'a [&'a ConfigMapRef],
}

/// What preflight learnt that later steps use.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    /// Whether the environment's namespace exists.
    pub namespace_exists: bool,
}

/// The permissions applying `objects` needs: get, create and patch on each kind; list and
/// delete on each of `prune` in `namespace`; get on Secrets (ConfigMaps) when the proxy reads
/// some.
pub fn needs(
    objects: &[Object],
    prune: Option<&[ApiResource]>,
    namespace: &str,
    secrets: bool,
    config_maps: bool,
) -> Vec<Need> {
    let mut needs = BTreeSet::new();
    let mut add = |verbs: &[&'static str], group: &str, resource: &str, namespaced: bool| {
        for verb in verbs {
            needs.insert(Need {
                verb,
                group: group.to_owned(),
                resource: resource.to_owned(),
                namespace: namespaced.then(|| namespace.to_owned()),
            });
        }
    };
    for object in objects {
        let meta = object.kind_of().meta();
        add(
            &["get", "create", "patch"],
            meta.group,
            meta.plural,
            meta.namespaced,
        );
    }
    for resource in prune.into_iter().flatten() {
        add(&["list", "delete"], &resource.group, &resource.plural, true);
    }
    if secrets {
        add(&["get"], "", "secrets", true);
    }
    if config_maps {
        add(&["get"], "", "configmaps", true);
    }
    needs.into_iter().collect()
}

/// Runs every check for applying `objects` (and pruning over `prune`, when pruning) into
/// `namespace`, with the Secret and ConfigMap keys the proxy `reads`, given what the server
/// serves; with `refuse_managed`, live objects a GitOps engine manages are a
/// problem too.
pub async fn run(
    client: &kube::Client,
    discovery: &Discovery,
    objects: &[Object],
    prune: Option<&[ApiResource]>,
    namespace: &str,
    reads: Reads<'_>,
    refuse_managed: bool,
) -> Result<Checked> {
    let (refs, maps) = (reads.secrets, reads.config_maps);
    let needs = needs(
        objects,
        prune,
        namespace,
        !refs.is_empty(),
        !maps.is_empty(),
    );
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for object in objects {
        let meta = object.kind_of().meta();
        if discovery.exact(meta.api_version, meta.kind).is_none()
            && seen.insert((meta.api_version, meta.kind))
        {
            problems.push(Problem::NotServed {
                api_version: meta.api_version.into(),
                kind: meta.kind.into(),
                setting: object.kind_of().setting(),
            });
        }
    }
    let (access, namespace_exists, secrets, config_maps, owners) = futures_util::join!(
        access::review(client, &needs),
        async {
            Api::<Namespace>::all(client.clone())
                .get_metadata_opt(namespace)
                .await
                .map_err(Error::kube(format!("read Namespace {namespace}")))
                .map(|ns| ns.is_some())
        },
        secrets::check(client, namespace, refs),
        config_maps::check(client, namespace, maps),
        async {
            match refuse_managed {
                true => owner::owners(client, objects).await,
                false => Ok(Default::default()),
            }
        },
    );
    problems.extend(
        owners?
            .into_iter()
            .map(|(owner, objects)| Problem::ManagedBy { owner, objects }),
    );
    problems.extend(access?);
    let namespace_exists = namespace_exists?;
    let reads_some = !refs.is_empty() || !maps.is_empty();
    if !namespace_exists && reads_some {
        problems.push(Problem::NoNamespace(namespace.to_owned()));
    }
    problems.extend(secrets?.into_iter().map(|problem| Problem::Secret {
        namespace: namespace.to_owned(),
        problem,
    }));
    problems.extend(config_maps?.into_iter().map(|problem| Problem::ConfigMap {
        namespace: namespace.to_owned(),
        problem,
    }));
    if problems.is_empty() {
        Ok(Checked { namespace_exists })
    } else {
        Err(Error::Preflight(problems))
    }
}

/// The error message: every problem, and what fixes it. Never a Secret's value.
pub(super) fn describe(problems: &[Problem]) -> String {
    let mut out = format!(
        "preflight failed, nothing was applied ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        out.push_str("\n  ");
        match problem {
            Problem::NotServed {
                api_version,
                kind,
                setting,
            } => {
                let _ = write!(out, "the API server does not serve {kind} ({api_version})");
                if let Some(setting) = setting {
                    let _ = write!(out, ", which `{setting}` asks for");
                }
                out.push_str(
                    ": install its CustomResourceDefinition or API, or turn the setting off",
                );
            }
            Problem::Forbidden {
                verb,
                resource,
                namespace,
                reason,
            } => {
                let _ = write!(out, "not allowed to {verb} {resource}");
                match namespace {
                    Some(ns) => {
                        let _ = write!(out, " in namespace `{ns}`");
                    }
                    None => out.push_str(" (cluster-wide)"),
                }
                if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty()) {
                    let _ = write!(out, ": {reason}");
                }
                let _ = write!(
                    out,
                    "; check with: kubectl auth can-i {verb} {resource}{}",
                    namespace
                        .as_ref()
                        .map(|ns| format!(" -n {ns}"))
                        .unwrap_or_default()
                );
            }
            Problem::NoNamespace(ns) => {
                let _ = write!(
                    out,
                    "namespace `{ns}` does not exist yet, so no Secret or ConfigMap can be in it; create it first:\n    kubectl create namespace {ns}"
                );
            }
            Problem::ManagedBy { owner, objects } => {
                let _ = write!(
                    out,
                    "{owner} manages {} of these objects ({}{}), not infra apply: {}",
                    objects.len(),
                    objects.first().map(String::as_str).unwrap_or_default(),
                    if objects.len() > 1 { ", ..." } else { "" },
                    owner.how_to_take_over()
                );
            }
            Problem::Secret { namespace, problem } => {
                out.push_str(&secrets::describe(namespace, problem));
            }
            Problem::ConfigMap { namespace, problem } => {
                out.push_str(&config_maps::describe(namespace, problem));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_with_its_fix() {
        let text = describe(&[
            Problem::NotServed {
                api_version: "monitoring.coreos.com/v1".into(),
                kind: "ServiceMonitor".into(),
                setting: Some("metrics.service_monitor"),
            },
            Problem::Forbidden {
                verb: "delete",
                resource: "deployments.apps".into(),
                namespace: Some("ai-services".into()),
                reason: None,
            },
            Problem::NoNamespace("ai-services".into()),
        ]);
        assert!(
            text.starts_with("preflight failed, nothing was applied (3 problems):"),
            "{text}"
        );
        assert!(
            text.contains("does not serve ServiceMonitor (monitoring.coreos.com/v1), which `metrics.service_monitor` asks for"),
            "{text}"
        );
        assert!(
            text.contains("not allowed to delete deployments.apps in namespace `ai-services`; check with: kubectl auth can-i delete deployments.apps -n ai-services"),
            "{text}"
        );
        assert!(
            text.contains("kubectl create namespace ai-services"),
            "{text}"
        );
    }
}
