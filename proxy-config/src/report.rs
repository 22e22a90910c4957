//! The one validation report of both crates: `ProxyConfig::validate` and `infra`'s
//! environment rules collect their [`Problem`]s in a [`Report`], with one helper for lists
//! whose names must each appear once.

use std::collections::BTreeMap;
use std::fmt;

/// One broken rule: the key path and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `timeouts.first_byte` or `models[2].upstreams`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `  - path: message` lines.
pub(crate) fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems in the order the rules run.
#[derive(Debug, Default)]
pub struct Report(Vec<Problem>);

impl Report {
    /// Reports `message` at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Reports `message` at `path` unless `ok` (the message is only built when it is shown).
    pub fn check(&mut self, ok: bool, path: impl Into<String>, message: impl FnOnce() -> String) {
        if !ok {
            self.push(path, message());
        }
    }

    /// Each of `names` once: a name that comes again is reported at its path
    /// (`<list>[<i>]<field>`), naming where it came first.
    pub fn each_once<'a>(
        &mut self,
        list: &str,
        field: &str,
        what: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) {
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, name) in names.into_iter().enumerate() {
            match first.get(name) {
                Some(j) => self.push(
                    format!("{list}[{i}]{field}"),
                    format!("`{name}` is also {list}[{j}]{field}: expected each {what} once"),
                ),
                None => {
                    first.insert(name, i);
                }
            }
        }
    }

    /// Every problem found, in order.
    pub fn into_problems(self) -> Vec<Problem> {
        self.0
    }

    /// Every problem found, or `Ok` when there is none.
    pub fn finish(self) -> Result<(), Vec<Problem>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_comes_again_is_reported_where_it_comes_again() {
        let mut r = Report::default();
        r.each_once("models", ".name", "model", ["a", "b", "a", "a"]);
        r.check(true, "x", || unreachable!("only built when shown"));
        let problems = r.into_problems();
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "models[2].name: `a` is also models[0].name: expected each model once",
                "models[3].name: `a` is also models[0].name: expected each model once",
            ]
        );
    }
}
