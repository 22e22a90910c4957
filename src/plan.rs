//! Compares what `render` would write with what `out/<env>/` holds, file by file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use similar::TextDiff;

use crate::render::File;

/// What rendering would do to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The file is new.
    Create,
    /// The file exists with other content: the unified diff from old to new.
    Update(String),
    /// The file exists but no object renders to it any more.
    Delete,
    /// Byte-identical.
    Unchanged,
}

/// The plan for one environment folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One entry per file, rendered files first (in render order), then deletions.
    pub changes: Vec<(String, Action)>,
}

/// Compares `current` (file name → content on disk) with the `rendered` files.
pub fn compare(current: &BTreeMap<String, String>, rendered: &[File]) -> Plan {
    let mut changes: Vec<(String, Action)> = rendered
        .iter()
        .map(|file| {
            let action = match current.get(&file.name) {
                None => Action::Create,
                Some(old) if *old == file.content => Action::Unchanged,
                Some(old) => Action::Update(unified_diff(&file.name, old, &file.content)),
            };
            (file.name.clone(), action)
        })
        .collect();
    let deleted = current
        .keys()
        .filter(|name| !rendered.iter().any(|f| &f.name == *name));
    changes.extend(deleted.map(|name| (name.clone(), Action::Delete)));
    Plan { changes }
}

fn unified_diff(name: &str, old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

impl Plan {
    /// Whether rendering would change anything.
    pub fn is_empty(&self) -> bool {
        self.changes.iter().all(|(_, a)| *a == Action::Unchanged)
    }

    fn count(&self, pick: fn(&Action) -> bool) -> usize {
        self.changes.iter().filter(|(_, a)| pick(a)).count()
    }

    /// `N to create, N to update, N to delete, N unchanged`.
    pub fn summary(&self) -> String {
        format!(
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.count(|a| *a == Action::Create),
            self.count(|a| matches!(a, Action::Update(_))),
            self.count(|a| *a == Action::Delete),
            self.count(|a| *a == Action::Unchanged),
        )
    }

    /// The plan as text: one line per file, the diff under each update, ANSI colours if asked.
    pub fn report(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut out = String::new();
        for (name, action) in &self.changes {
            let line = match action {
                Action::Create => paint("32", &format!("+ create     {name}")),
                Action::Update(_) => paint("33", &format!("~ update     {name}")),
                Action::Delete => paint("31", &format!("- delete     {name}")),
                Action::Unchanged => format!("  unchanged  {name}"),
            };
            let _ = writeln!(out, "{line}");
            if let Action::Update(diff) = action {
                for l in diff.lines() {
                    let painted = match l.chars().next() {
                        _ if l.starts_with("+++") || l.starts_with("---") => paint("1", l),
                        Some('+') => paint("32", l),
                        Some('-') => paint("31", l),
                        Some('@') => paint("36", l),
                        _ => l.to_owned(),
                    };
                    let _ = writeln!(out, "    {painted}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn file(name: &str, content: &str) -> File {
        File {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn classifies_every_file() {
        let current = BTreeMap::from([
            ("same.yaml".to_owned(), "a: 1\n".to_owned()),
            ("changed.yaml".to_owned(), "a: 1\nb: 2\n".to_owned()),
            ("gone.yaml".to_owned(), "x: 1\n".to_owned()),
        ]);
        let rendered = [
            file("same.yaml", "a: 1\n"),
            file("changed.yaml", "a: 1\nb: 3\n"),
            file("new.yaml", "n: 1\n"),
        ];
        let plan = compare(&current, &rendered);
        assert_eq!(
            plan.summary(),
            "1 to create, 1 to update, 1 to delete, 1 unchanged"
        );
        assert!(!plan.is_empty());
        let report = plan.report(false);
        assert_eq!(
            report,
            "  unchanged  same.yaml\n~ update     changed.yaml\n    --- a/changed.yaml\n    +++ b/changed.yaml\n    @@ -1,2 +1,2 @@\n     a: 1\n    -b: 2\n    +b: 3\n+ create     new.yaml\n- delete     gone.yaml\n"
        );
    }

    #[test]
    fn identical_folders_plan_nothing() {
        let current = BTreeMap::from([("a.yaml".to_owned(), "a\n".to_owned())]);
        assert!(compare(&current, &[file("a.yaml", "a\n")]).is_empty());
    }

    #[test]
    fn colour_is_only_added_when_asked() {
        let plan = compare(&BTreeMap::new(), &[file("a.yaml", "a\n")]);
        assert!(plan.report(true).contains("\x1b[32m+ create"));
        assert!(!plan.report(false).contains('\x1b'));
    }
}
