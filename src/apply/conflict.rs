//! Field-manager conflicts: what the API server says when a server-side apply (without force)
//! would change a field another manager owns, read into object, field and manager.

use std::fmt;

use kube::core::Status;

/// One field another manager owns with another value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// `Kind namespace/name`.
    pub object: String,
    /// The field path, e.g. `.spec.replicas`.
    pub field: String,
    /// The manager that owns it, e.g. `kubectl`.
    pub manager: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} is owned by field manager `{}`",
            self.object, self.field, self.manager
        )
    }
}

/// The conflicts in an API server answer, if it is a 409 Conflict from server-side apply.
/// Each cause reads `conflict with "<manager>"` (then ` using <apiVersion>` or `with subresource
/// …`) for one field.
pub fn conflicts(object: &str, status: &Status) -> Option<Vec<Conflict>> {
    if status.code != 409 {
        return None;
    }
    let causes = &status.details.as_ref()?.causes;
    let found: Vec<Conflict> = causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| Conflict {
            object: object.to_owned(),
            field: c.field.clone(),
            manager: manager(&c.message).unwrap_or(&c.message).to_owned(),
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// The error message: every conflict, and how to take the fields over.
pub(super) fn describe(conflicts: &[Conflict]) -> String {
    let mut out = format!(
        "fields that other field managers own would change, nothing was applied ({} conflict{}):",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" }
    );
    for c in conflicts {
        out.push_str(&format!("\n  {c}"));
    }
    out.push_str(
        "\nMake the environment agree with the cluster, or take the fields over with `infra apply --force-conflicts`.",
    );
    out
}

/// `kubectl` from `conflict with "kubectl" using apps/v1`.
fn manager(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("conflict with \"")?;
    rest.split_once('"').map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_object_field_and_manager() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "code": 409,
            "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas",
            "details": {"causes": [{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl\" with subresource \"scale\" using apps/v1",
                "field": ".spec.replicas"
            }]}
        }))
        .unwrap();
        let found = conflicts("Deployment ai-services/ai-api-proxy", &status).unwrap();
        assert_eq!(
            found[0].to_string(),
            "Deployment ai-services/ai-api-proxy: .spec.replicas is owned by field manager `kubectl`"
        );
        assert!(
            conflicts(
                "x",
                &Status {
                    code: 403,
                    ..Default::default()
                }
            )
            .is_none()
        );
    }
}
