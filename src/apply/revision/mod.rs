//! Revisions: every apply and rollback that wrote to the cluster is recorded there, beside the
//! ApplySet parent, so `history`, `rollback` and `apply --atomic` work from the cluster alone.
//!
//! [`store`] is the format (`infra.revision/v1`, pure encode and decode), [`history`] reads and
//! writes it, [`provenance`] says where an environment came from.

pub mod history;
pub mod provenance;
pub mod store;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::apply::{Action, Outcome};

pub use history::History;
pub use provenance::Provenance;
pub use store::{FormatError, Revision};

/// Where a revision stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Applied and ready: what the cluster runs now (at most one revision is).
    Deployed,
    /// Was deployed, then a later apply replaced it (a rollback may return to it).
    Superseded,
    /// Its apply failed after writing; nothing has undone it.
    Failed,
    /// A rollback undid it (it had failed, or was deployed).
    RolledBack,
}

impl Status {
    /// The name in the store and in `infra history`, e.g. `rolled-back`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deployed => "deployed",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::RolledBack => "rolled-back",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Status::Deployed,
            Status::Superseded,
            Status::Failed,
            Status::RolledBack,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one-line summary of what an apply changed, e.g. `2 applied (ConfigMap ai-api-proxy,
/// Deployment ai-api-proxy), 11 unchanged`.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut parts = Vec::new();
    for (action, word) in [
        (Action::Created, "created"),
        (Action::Applied, "applied"),
        (Action::Pruned, "pruned"),
    ] {
        let names: Vec<String> = outcomes
            .iter()
            .filter(|o| o.action == action)
            .map(|o| format!("{} {}", o.kind, short_name(&o.name)))
            .collect();
        if !names.is_empty() {
            parts.push(format!("{} {word} ({})", names.len(), names.join(", ")));
        }
    }
    let unchanged = outcomes
        .iter()
        .filter(|o| o.action == Action::Unchanged)
        .count();
    if unchanged > 0 || parts.is_empty() {
        parts.push(format!("{unchanged} unchanged"));
    }
    parts.join(", ")
}

/// `name` of `namespace/name`.
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `failed: ` and `error` on one line (its lines joined), at most 200 characters, for a
/// failed revision's summary, e.g. `failed: not ready within 5m: Deployment ns/app: 1 of 2
/// replicas updated …`.
pub fn failure_summary(error: &impl fmt::Display) -> String {
    const MAX: usize = 200;
    let text = error.to_string();
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut line: String = joined.chars().take(MAX).collect();
    if joined.chars().count() > MAX {
        line.push('…');
    }
    format!("failed: {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(action: Action, kind: &str) -> Outcome {
        Outcome {
            action,
            kind: kind.into(),
            name: "ns/ai-api-proxy".into(),
            dry_run: false,
        }
    }

    #[test]
    fn the_summary_names_what_changed_and_counts_the_rest() {
        assert_eq!(
            summary(&[
                outcome(Action::Unchanged, "Service"),
                outcome(Action::Applied, "ConfigMap"),
                outcome(Action::Applied, "Deployment"),
                outcome(Action::Pruned, "Ingress"),
            ]),
            "2 applied (ConfigMap ai-api-proxy, Deployment ai-api-proxy), \
             1 pruned (Ingress ai-api-proxy), 1 unchanged"
        );
        assert_eq!(summary(&[]), "0 unchanged");
    }

    #[test]
    fn statuses_round_trip_by_name() {
        for s in [
            Status::Deployed,
            Status::Superseded,
            Status::Failed,
            Status::RolledBack,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("pending"), None);
        let long = "x".repeat(300);
        assert!(failure_summary(&format!("{long}\nsecond")).ends_with('…'));
        assert_eq!(
            failure_summary(&"not ready within 5m:\n  Deployment ns/app: 1 of 2 updated"),
            "failed: not ready within 5m: Deployment ns/app: 1 of 2 updated"
        );
    }
}
