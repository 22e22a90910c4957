//! Server-side apply of built objects to a cluster: preflight, apply, prune, wait.
//!
//! The only module that talks to Kubernetes. Each step is its own function, so
//! `cmd/apply.rs` decides the order and what to print:
//! [`preflight::check_secrets`] (before anything changes), [`applyset::recorded_kinds`] (the
//! ApplySet parent's record), [`apply`] (one field manager, render order), [`prune::prune`]
//! (members of the set that left the plan) and [`wait::rollout`] (the Deployment, with a
//! timeout).

pub mod applyset;
pub mod handover;
pub mod preflight;
pub mod prune;
pub mod set;
pub mod wait;

use std::fmt;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

use crate::build::{Kind, Object};

pub use preflight::SecretProblem;

/// The field manager of every server-side apply: one name, so the API server tracks exactly
/// the fields `infra` sets and removes those it stops setting.
pub const FIELD_MANAGER: &str = crate::build::labels::MANAGER;

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Secrets the proxy reads are missing, or lack a key; nothing was changed.
    #[error("{}", preflight::describe(namespace, *namespace_exists, problems))]
    MissingSecrets {
        /// The namespace the Secrets must be in.
        namespace: String,
        /// Whether that namespace exists.
        namespace_exists: bool,
        /// One entry per missing Secret or key.
        problems: Vec<SecretProblem>,
    },
    /// The API server refused a request (its `Status`: message and reason, e.g. `Forbidden`).
    #[error("cannot {action}")]
    Api {
        /// What was being done, e.g. `apply Deployment ai-services/ai-api-proxy`.
        action: String,
        /// The API server's answer.
        #[source]
        status: Box<kube::core::Status>,
    },
    /// A request could not be made (connection, TLS, authentication, decoding).
    #[error("cannot {action}")]
    Kube {
        /// What was being done, e.g. `apply Deployment ai-services/ai-api-proxy`.
        action: String,
        /// The client's or the API server's error.
        #[source]
        source: kube::Error,
    },
    /// The ApplySet parent exists but belongs to another tool or set; nothing was changed.
    #[error(
        "{parent} is the parent of an ApplySet owned by {owner}, not by infra: refusing to change it \
         (remove it, or give this application another name)"
    )]
    ForeignApplySet {
        /// `ConfigMap namespace/name`.
        parent: String,
        /// The other tool or set.
        owner: String,
    },
    /// The Deployment's rollout failed or did not finish in time.
    #[error("{0}")]
    Rollout(String),
}

impl Error {
    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| match source {
            kube::Error::Api(status) => Self::Api { action, status },
            source => Self::Kube { action, source },
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and changed.
    Applied,
    /// It existed and the apply changed nothing (same resourceVersion).
    Unchanged,
    /// It left the plan and was deleted.
    Pruned,
}

/// One line of the report: what happened to which object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What happened.
    pub action: Action,
    /// The object's kind.
    pub kind: String,
    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub name: String,
    /// Whether this was a server-side dry run (nothing was persisted).
    pub dry_run: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Created => "created",
            Action::Applied => "applied",
            Action::Unchanged => "unchanged",
            Action::Pruned => "pruned",
        };
        write!(f, "{action} {} {}", self.kind, self.name)?;
        if self.dry_run {
            f.write_str(" (dry run)")?;
        }
        Ok(())
    }
}

/// The API resource (group, version, plural) of one of our kinds.
pub fn api_resource(kind: Kind) -> ApiResource {
    let meta = kind.meta();
    ApiResource {
        group: meta.group.into(),
        version: meta.version.into(),
        api_version: meta.api_version.into(),
        kind: meta.kind.into(),
        plural: meta.plural.into(),
    }
}

/// The dynamic API of `kind` in `namespace` (cluster-wide when `None`).
fn dynamic_api(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn display_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// The objects in render order: kind order (what others depend on first), then name; the
/// ApplySet parent right after the Namespace, so it records the set before any member changes.
pub fn in_order(objects: &[Object]) -> Vec<&Object> {
    let rank = |o: &Object| {
        let is_parent = o
            .metadata()
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crate::build::applyset::ID));
        match o.kind_of().rank() {
            0 => 0,
            _ if is_parent => 1,
            i => i + 1,
        }
    };
    let mut sorted: Vec<&Object> = objects.iter().collect();
    sorted.sort_by_key(|o| (rank(o), o.name().to_owned()));
    sorted
}

/// Server-side applies every object in render order, with [`FIELD_MANAGER`] and `force`;
/// with `dry_run`, the API server validates and admits but persists nothing.
///
/// Why `force`: `infra` is the single owner of every field it sets. Without force, a field
/// last written by `kubectl edit` or a Helm release would make the apply fail with a
/// conflict; with it, the field returns to what the environment files say, and ownership
/// moves to `infra`. Fields `infra` does not set (the HPA's `spec.replicas`) are never taken;
/// when autoscaling is switched on, `spec.replicas` is first handed over (see [`handover`]).
pub async fn apply(
    client: &kube::Client,
    objects: &[Object],
    dry_run: bool,
    report: &mut impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut outcomes = Vec::with_capacity(objects.len());
    for object in in_order(objects) {
        let kind = object.kind();
        let name = display_name(object.namespace(), object.name());
        let api = dynamic_api(client, &api_resource(object.kind_of()), object.namespace());
        let before = api
            .get_opt(object.name())
            .await
            .map_err(Error::kube(format!("read {kind} {name}")))?;
        if let Some(replicas) = before
            .as_ref()
            .and_then(|live| handover::replicas_to_hand_over(object, live))
        {
            handover::hand_over(&api, object, replicas, dry_run).await?;
        }
        let after = api
            .patch(object.name(), &params, &Patch::Apply(object))
            .await
            .map_err(Error::kube(format!("apply {kind} {name}")))?;
        let action = match before {
            None => Action::Created,
            Some(before) if unchanged(&before, &after, dry_run) => Action::Unchanged,
            Some(_) => Action::Applied,
        };
        let outcome = Outcome {
            action,
            kind: kind.to_owned(),
            name,
            dry_run,
        };
        report(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Whether an apply changed nothing. A real apply that changes nothing keeps the
/// resourceVersion; a dry run never gets a new one, so there the content is compared, without
/// what the server alone writes (resourceVersion, generation, managedFields, status).
fn unchanged(before: &DynamicObject, after: &DynamicObject, dry_run: bool) -> bool {
    if !dry_run {
        return before.metadata.resource_version == after.metadata.resource_version;
    }
    let strip = |o: &DynamicObject| {
        let mut o = o.clone();
        o.metadata.resource_version = None;
        o.metadata.generation = None;
        o.metadata.managed_fields = None;
        if let Some(data) = o.data.as_object_mut() {
            data.remove("status");
        }
        o
    };
    strip(before) == strip(after)
}

/// `1 created, 2 applied, 6 unchanged, 1 pruned`: counts of each action.
pub fn summary(outcomes: &[Outcome]) -> String {
    let count = |a: Action| outcomes.iter().filter(|o| o.action == a).count();
    format!(
        "{} created, {} applied, {} unchanged, {} pruned",
        count(Action::Created),
        count(Action::Applied),
        count(Action::Unchanged),
        count(Action::Pruned)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{applyset, objects, tests::load};

    #[test]
    fn api_resources_come_from_the_kind_table() {
        assert_eq!(api_resource(Kind::Deployment).plural, "deployments");
        assert_eq!(
            api_resource(Kind::HorizontalPodAutoscaler).api_version,
            "autoscaling/v2"
        );
    }

    #[test]
    fn objects_are_applied_in_render_order() {
        let built = objects(&load("production"), "production");
        let mut reversed = built.clone();
        reversed.reverse();
        let mut kinds: Vec<_> = in_order(&reversed).iter().map(|o| o.kind_of()).collect();
        kinds.dedup();
        let expected: Vec<_> = Kind::ALL
            .iter()
            .copied()
            .filter(|k| kinds.contains(k))
            .collect();
        assert_eq!(kinds, expected);
        let env = load("production");
        let parent = Object::ConfigMap(applyset::parent(&env, "production", &Default::default()));
        reversed.push(parent.clone());
        let sorted = in_order(&reversed);
        assert_eq!(sorted[0].kind(), "Namespace");
        assert_eq!(sorted[1], &parent);
        assert_eq!(sorted.len(), Kind::ALL.len() + 1);
    }

    #[test]
    fn outcomes_print_as_one_line_each() {
        let mut o = Outcome {
            action: Action::Applied,
            kind: "Deployment".into(),
            name: "ai-services/ai-api-proxy".into(),
            dry_run: false,
        };
        assert_eq!(o.to_string(), "applied Deployment ai-services/ai-api-proxy");
        o.action = Action::Pruned;
        o.dry_run = true;
        assert_eq!(
            o.to_string(),
            "pruned Deployment ai-services/ai-api-proxy (dry run)"
        );
        assert_eq!(summary(&[o]), "0 created, 0 applied, 0 unchanged, 1 pruned");
    }
}
