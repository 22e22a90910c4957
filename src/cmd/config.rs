//! `infra config`: the merged environment as TOML, each value followed by where it came from.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Map, Value};

use super::EnvArgs;
use crate::config::explain::{self, Explained, Step, is_leaf, key_of};

/// Arguments of `infra config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Print JSON for scripts: the merged tree, and one entry per value with its key, value and
    /// origin.
    #[arg(long)]
    json: bool,
}

impl ConfigArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let explained = explain::explain(&self.env.layers(environments))?;
        if self.json {
            println!("{}", json(&self.env.env, &explained)?);
        } else {
            print!("{}", toml(&self.env.env, &explained));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `{"environment", "config": <tree>, "values": [{"key", "value", "origin"}]}`.
fn json(env: &str, explained: &Explained) -> serde_json::Result<String> {
    let values: Vec<Value> = explained
        .leaves()
        .into_iter()
        .map(|(path, value)| {
            serde_json::json!({
                "key": key_of(&path),
                "value": value,
                "origin": explained.origin(&path),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "environment": env,
        "config": explained.value,
        "values": values,
    }))
}

/// Comments of a value line start in this column at most (longer lines push theirs right).
const COMMENT_COLUMN: usize = 44;

fn toml(env: &str, explained: &Explained) -> String {
    let mut out = format!(
        "# The merged environment `{env}`: base.toml, then {env}.toml, then INFRA_* variables,\n\
         # then --set flags; later wins. After each value: the file and line, the variable or\n\
         # the flag that set it, or `default`.\n"
    );
    if let Value::Object(map) = &explained.value {
        table(&mut out, None, &mut Vec::new(), map, explained);
    }
    out
}

/// Writes one table: its header (unless it is the root or has only sub-tables), its values
/// with their origins, then its sub-tables and arrays of tables.
fn table(
    out: &mut String,
    header: Option<String>,
    path: &mut Vec<Step>,
    map: &Map<String, Value>,
    explained: &Explained,
) {
    let mut lines = Vec::new();
    for (key, value) in map.iter().filter(|(_, v)| is_leaf(v) && !v.is_null()) {
        path.push(Step::Key(key.clone()));
        let origin = explained.origin(path).to_string();
        path.pop();
        let key = key_of(&[Step::Key(key.clone())]);
        lines.push((format!("{key} = {}", inline(value)), origin));
    }
    let array_item = header.as_deref().is_some_and(|h| h.starts_with("[["));
    if let Some(header) = header
        && (array_item || !lines.is_empty())
    {
        let _ = writeln!(out, "\n{header}");
    }
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .filter(|n| *n <= COMMENT_COLUMN)
        .max()
        .unwrap_or(0);
    for (line, origin) in lines {
        let _ = writeln!(out, "{line:<width$}  # {origin}");
    }
    for (key, value) in map.iter().filter(|(_, v)| !is_leaf(v)) {
        path.push(Step::Key(key.clone()));
        let name = header_key(path);
        match value {
            Value::Object(sub) => table(out, Some(format!("[{name}]")), path, sub, explained),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(sub) = item {
                        path.push(Step::Index(i));
                        table(out, Some(format!("[[{name}]]")), path, sub, explained);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// A table header's key: the path's keys without array indices (TOML's `[[a.b]]` then `[a.b.c]`
/// address the last item).
fn header_key(path: &[Step]) -> String {
    let keys: Vec<Step> = path
        .iter()
        .filter(|s| matches!(s, Step::Key(_)))
        .cloned()
        .collect();
    key_of(&keys)
}

/// A value as TOML on one line.
fn inline(value: &Value) -> String {
    fn convert(value: &Value) -> toml_edit::Value {
        match value {
            Value::String(s) => s.as_str().into(),
            Value::Bool(b) => (*b).into(),
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.into(),
                None => n.as_f64().unwrap_or(f64::NAN).into(),
            },
            Value::Array(items) => {
                let mut array: toml_edit::Array = items.iter().map(convert).collect();
                array.fmt();
                array.into()
            }
            Value::Object(map) => {
                let mut table: toml_edit::InlineTable =
                    map.iter().map(|(k, v)| (k.as_str(), convert(v))).collect();
                table.fmt();
                table.into()
            }
            Value::Null => "".into(),
        }
    }
    convert(value).to_string().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_written_as_toml() {
        assert_eq!(inline(&json!("a\"b")), r#"'a"b'"#);
        assert_eq!(inline(&json!(20)), "20");
        assert_eq!(inline(&json!(["a", "b"])), r#"["a", "b"]"#);
        assert_eq!(inline(&json!({})), "{}");
        assert_eq!(
            inline(&json!({"a/b": "c", "k": 1})),
            r#"{ "a/b" = "c", k = 1 }"#
        );
    }
}
