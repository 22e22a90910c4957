//! Server-side apply of built objects to a cluster: preflight, conflict check, apply, prune,
//! wait, and the live plan.
//!
//! The only module that talks to Kubernetes. [`set::run`] is one `infra apply` (the steps in
//! order, each its own module); [`live::plan`] is `infra plan --live`.

pub mod applyset;
pub mod conflict;
pub mod diagnose;
pub mod discovery;
pub mod handover;
pub mod live;
pub mod lock;
pub mod owner;
pub mod preflight;
pub mod prune;
pub mod release;
pub mod revision;
pub mod server_side;
pub mod set;
pub mod target;
pub mod wait;

use std::fmt;

use kube::api::{Api, ApiResource, DynamicObject};

use crate::objects::{Kind, Object};

pub use conflict::Conflict;
pub use preflight::Problem;

/// The field manager of every server-side apply: one name, so the API server tracks exactly
/// the fields `infra` sets and removes those it stops setting.
pub const FIELD_MANAGER: &str = crate::objects::labels::MANAGER;

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Preflight found what the cluster lacks; nothing was changed.
    #[error("{}", preflight::describe(.0))]
    Preflight(Vec<Problem>),
    /// Fields other managers own would change; nothing was changed.
    #[error("{}", conflict::describe(.0))]
    Conflicts(Vec<Conflict>),
    /// The server-side dry run of an object was refused; nothing was changed.
    #[error("the server-side dry run refused {object}, nothing was applied: {}", status_text(.status))]
    Refused {
        /// `Kind namespace/name`.
        object: String,
        /// The API server's answer.
        status: Box<kube::core::Status>,
    },
    /// Applying stopped partway: what was applied, and what was not.
    #[error("{}", describe_partial(.applied, .not_applied, .cause))]
    Partial {
        /// Objects applied (or pruned) before the failure.
        applied: Vec<Outcome>,
        /// `Kind namespace/name` of every object not applied.
        not_applied: Vec<String>,
        /// The failure.
        cause: Box<Error>,
    },
    /// The API server refused a request (its `Status`: message and reason, e.g. `Forbidden`).
    #[error("cannot {action}: {}", status_text(.status))]
    Api {
        /// What was being done, e.g. `apply Deployment ai-services/ai-api-proxy`.
        action: String,
        /// The API server's answer.
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
    /// The ApplySet parent exists but belongs to another tool, another set or no tool.
    #[error(
        "{parent} {owner}, not one infra manages: refusing to change it or its members \
         (remove it, or give this application another name)"
    )]
    ForeignApplySet {
        /// `ConfigMap namespace/name`.
        parent: String,
        /// Who manages it, e.g. ``managed by `kubectl/v1.35.4` ``.
        owner: String,
    },
    /// An object could not be shown as YAML (a bug: objects always serialize).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// An object did not become ready in time, or failed.
    #[error("{0}")]
    NotReady(String),
    /// Another apply or rollback of the environment holds its lock.
    #[error(
        "another apply of this environment is running: {}; wait for it with \
         --wait-for-lock <DURATION>, or try again later (a crashed holder's lease expires by itself)",
        lock::describe_holder(.0)
    )]
    Locked(lock::Holder),
    /// The revision asked for does not exist.
    #[error("{0}")]
    NoRevision(String),
    /// A stored revision cannot be read.
    #[error(transparent)]
    Store(#[from] revision::FormatError),
    /// `--atomic`: the apply failed after writing, and the last deployed revision was applied
    /// again, successfully.
    #[error(
        "{cause}\n\nrevision {failed} failed: rolled back to revision {to} (recorded as revision {recorded})"
    )]
    RolledBack {
        /// Why the apply failed.
        cause: Box<Error>,
        /// The failed revision.
        failed: u32,
        /// The revision applied again.
        to: u32,
        /// The revision recording the rollback.
        recorded: u32,
    },
    /// `--atomic`: the apply failed after writing, and rolling back failed too.
    #[error(
        "{cause}\n\nrevision {failed} failed, and rolling back to revision {to} failed too:\n{rollback}"
    )]
    RollbackFailed {
        /// Why the apply failed.
        cause: Box<Error>,
        /// The failed revision.
        failed: u32,
        /// The revision the rollback applied.
        to: u32,
        /// Why the rollback failed.
        rollback: Box<Error>,
    },
    /// `--atomic`: the apply failed after writing, and no earlier revision was deployed.
    #[error(
        "{cause}\n\nrevision {failed} failed, and there is no earlier deployed revision to roll \
         back to: it stays as it is (fix it and apply again)"
    )]
    NothingToRollBackTo {
        /// Why the apply failed.
        cause: Box<Error>,
        /// The failed revision.
        failed: u32,
    },
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

/// `message (reason)` of an API server answer.
fn status_text(status: &kube::core::Status) -> String {
    if status.reason.is_empty() {
        status.message.clone()
    } else {
        format!("{} ({})", status.message, status.reason)
    }
}

fn describe_partial(applied: &[Outcome], not_applied: &[String], cause: &Error) -> String {
    let mut out = format!("{cause}\napplying stopped partway:");
    if applied.is_empty() {
        out.push_str("\n  applied: nothing");
    }
    for o in applied {
        out.push_str(&format!("\n  applied: {o}"));
    }
    for name in not_applied {
        out.push_str(&format!("\n  not applied: {name}"));
    }
    out
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
    /// It existed and the apply would change nothing, so nothing was sent.
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

/// The dynamic API of `resource` in `namespace` (cluster-wide when `None`).
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

/// The dynamic API of `object`'s kind, in its namespace.
fn api_of(client: &kube::Client, object: &Object) -> Api<DynamicObject> {
    dynamic_api(client, &api_resource(object.kind_of()), object.namespace())
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn display_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// `Kind namespace/name`.
pub fn describe_object(object: &Object) -> String {
    format!(
        "{} {}",
        object.kind(),
        display_name(object.namespace(), object.name())
    )
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

    #[test]
    fn api_resources_come_from_the_kind_table() {
        assert_eq!(api_resource(Kind::Deployment).plural, "deployments");
        assert_eq!(
            api_resource(Kind::HorizontalPodAutoscaler).api_version,
            "autoscaling/v2"
        );
    }

    #[test]
    fn an_atomic_failure_says_what_failed_and_how_the_rollback_went() {
        let cause = || {
            Box::new(Error::NotReady(
                "not ready within 10s:\n  Deployment ns/app".into(),
            ))
        };
        let rolled = Error::RolledBack {
            cause: cause(),
            failed: 5,
            to: 4,
            recorded: 6,
        };
        assert_eq!(
            rolled.to_string(),
            "not ready within 10s:\n  Deployment ns/app\n\n\
             revision 5 failed: rolled back to revision 4 (recorded as revision 6)"
        );
        let both = Error::RollbackFailed {
            cause: cause(),
            failed: 5,
            to: 4,
            rollback: Box::new(Error::NotReady(
                "not ready within 10s:\n  Service ns/app".into(),
            )),
        };
        let text = both.to_string();
        assert!(
            text.starts_with("not ready within 10s:\n  Deployment ns/app\n\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "revision 5 failed, and rolling back to revision 4 failed too:\n\
                 not ready within 10s:\n  Service ns/app"
            ),
            "{text}"
        );
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
