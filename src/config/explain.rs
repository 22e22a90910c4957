//! The merged environment, value by value, with where each value came from (`infra config`).
//!
//! Values are those of the validated [`Environment`] (defaults filled in), so what is shown is
//! what `render` builds from. Each leaf's origin is the layer figment recorded for it; a file's
//! line is found by reading that file again. Strings are passed through the redaction rules, so
//! nothing a secret-looking value would show is ever printed.

use std::collections::BTreeMap;
use std::ops::Range;

use figment::value::Value as FigValue;
use serde_json::Value;
use toml_edit::{ImDocument, TableLike};

use super::load::{ConfigError, Layers, figment, load};
use super::origin::Origin;
use super::validate::{key_path, looks_like_secret, redact_text};

/// What a value that looks like a credential is shown as.
pub const REDACTED: &str = "(redacted)";

/// One step of a key path: a key of a table, or an index into an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// The dotted key of a path (`proxy.upstreams[0].name`, `ingress.annotations."a/b"`).
pub fn key_of(path: &[Step]) -> String {
    path.iter().fold(String::new(), |acc, step| match step {
        Step::Key(k) => key_path(&acc, k),
        Step::Index(i) => format!("{acc}[{i}]"),
    })
}

/// A merged environment with the origin of every leaf.
#[derive(Clone, Debug)]
pub struct Explained {
    /// The merged, validated environment as a tree (unset optional keys left out).
    pub value: Value,
    origins: BTreeMap<String, Origin>,
}

impl Explained {
    /// Where the leaf at `path` came from.
    pub fn origin(&self, path: &[Step]) -> &Origin {
        self.origins.get(&key_of(path)).unwrap_or(&Origin::Default)
    }

    /// Every leaf in tree order: scalars, arrays of scalars and empty tables; arrays of tables
    /// are walked item by item.
    pub fn leaves(&self) -> Vec<(Vec<Step>, &Value)> {
        let mut out = Vec::new();
        collect(&self.value, &mut Vec::new(), &mut out);
        out
    }
}

/// Whether `value` is shown whole on one line (not as a table or an array of tables).
pub fn is_leaf(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty() || !items.iter().all(Value::is_object),
        _ => true,
    }
}

fn collect<'a>(value: &'a Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, &'a Value)>) {
    if is_leaf(value) {
        if !value.is_null() {
            out.push((path.clone(), value));
        }
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Step::Key(k.clone()));
                collect(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                collect(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Loads and validates the environment of `layers` and finds the origin of each of its values.
pub fn explain(layers: &Layers) -> Result<Explained, ConfigError> {
    let env = load(layers)?;
    let figment = figment(layers)?;
    let merged = figment.find_value("").ok();
    let value = redacted(serde_json::to_value(&env).unwrap_or_default());
    let mut explained = Explained {
        value,
        origins: BTreeMap::new(),
    };
    let mut files = Files::default();
    let paths: Vec<Vec<Step>> = explained.leaves().into_iter().map(|(p, _)| p).collect();
    for path in paths {
        let Some(md) = merged
            .as_ref()
            .and_then(|m| find(m, &path))
            .and_then(|v| figment.get_metadata(v.tag()))
        else {
            continue;
        };
        let mut origin = Origin::of(md, &key_of(&path));
        if let Origin::File { path: file, line } = &mut origin {
            *line = files.line(file, &path);
        }
        explained.origins.insert(key_of(&path), origin);
    }
    Ok(explained)
}

/// The figment value at `path`, if a layer set it.
fn find<'a>(value: &'a FigValue, path: &[Step]) -> Option<&'a FigValue> {
    path.iter().try_fold(value, |v, step| match (step, v) {
        (Step::Key(k), FigValue::Dict(_, dict)) => dict.get(k),
        (Step::Index(i), FigValue::Array(_, items)) => items.get(*i),
        _ => None,
    })
}

/// Every string (keys too) through the redaction rules, a secret-looking value replaced;
/// unset optional keys (`null`) left out, as TOML has no null.
fn redacted(value: Value) -> Value {
    match value {
        Value::String(s) if looks_like_secret(&s) => Value::from(REDACTED),
        Value::String(s) => Value::from(redact_text(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (redact_text(&k), redacted(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Environment files read again for line numbers, each parsed once.
#[derive(Default)]
struct Files(BTreeMap<String, Option<(String, ImDocument<String>)>>);

impl Files {
    fn line(&mut self, file: &str, path: &[Step]) -> Option<usize> {
        let entry = self.0.entry(file.to_owned()).or_insert_with(|| {
            let text = std::fs::read_to_string(file).ok()?;
            let doc = ImDocument::parse(text.clone()).ok()?;
            Some((text, doc))
        });
        let (text, doc) = entry.as_ref()?;
        let span = key_span(doc.as_table(), path)?;
        Some(text.get(..span.start)?.matches('\n').count() + 1)
    }
}

/// Where the key of the leaf at `path` is written in a parsed file.
fn key_span(table: &dyn TableLike, path: &[Step]) -> Option<Range<usize>> {
    let (Step::Key(k), rest) = path.split_first()? else {
        return None;
    };
    let (key, item) = table.get_key_value(k)?;
    match rest.split_first() {
        None => key.span().or_else(|| item.span()),
        Some((Step::Key(_), _)) => key_span(item.as_table_like()?, rest),
        Some((Step::Index(i), rest)) => {
            if let Some(tables) = item.as_array_of_tables() {
                let t = tables.get(*i)?;
                return if rest.is_empty() {
                    t.span()
                } else {
                    key_span(t, rest)
                };
            }
            let v = item.as_array()?.get(*i)?;
            if rest.is_empty() {
                v.span()
            } else {
                key_span(v.as_inline_table()?, rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn explain_production(sets: &[&str]) -> Explained {
        let layers = Layers {
            dir: PathBuf::from("environments"),
            env: "production".into(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
        };
        // Tests run in the package root, so origins read like the CLI's.
        explain(&layers).unwrap()
    }

    fn origin_of(e: &Explained, key: &str) -> String {
        let (path, _) = e
            .leaves()
            .into_iter()
            .find(|(p, _)| key_of(p) == key)
            .unwrap_or_else(|| panic!("no leaf {key}"));
        e.origin(&path).to_string()
    }

    fn line_of(file: &str, needle: &str) -> usize {
        let text = std::fs::read_to_string(file).unwrap();
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    #[test]
    fn each_value_names_its_file_and_line_its_flag_or_the_default() {
        let e = explain_production(&["proxy.rate_limit.burst=50"]);
        let prod = "environments/production.toml";
        assert_eq!(
            origin_of(&e, "autoscaling.max_replicas"),
            format!("{prod}:{}", line_of(prod, "max_replicas = 10"))
        );
        assert_eq!(
            origin_of(&e, "image.repository"),
            format!(
                "environments/base.toml:{}",
                line_of("environments/base.toml", "repository =")
            )
        );
        assert_eq!(
            origin_of(&e, "proxy.rate_limit.burst"),
            "--set proxy.rate_limit.burst"
        );
        assert_eq!(origin_of(&e, "proxy.secrets_dir"), "default");
        // Inline tables and arrays of tables find their line too.
        assert_eq!(
            origin_of(&e, "resources.requests.cpu"),
            format!("{prod}:{}", line_of(prod, "requests = {"))
        );
        assert_eq!(
            origin_of(&e, "ingress.hosts[0].paths[0].path"),
            format!("{prod}:{}", line_of(prod, "paths = ["))
        );
        assert_eq!(
            origin_of(&e, "ingress.annotations.\"cert-manager.io/cluster-issuer\""),
            format!("{prod}:{}", line_of(prod, "annotations = {"))
        );
    }
}
