//! JSON Schemas of the environment format: one for a layer file, one for the merged environment.
//!
//! The merged environment ([`merged`]) has required keys; a single file does not: `production.toml`
//! may set only what differs from `base.toml`. [`layer`] is the same schema with every key made
//! optional where layers merge key by key (tables and maps), so editors stop flagging valid
//! files. What does not merge stays as strict as before: unknown keys are still refused
//! everywhere, and an array (`[[proxy.upstreams]]`, `[[ingress.hosts]]`) replaces the one below
//! it as a whole, so each of its items must be complete in the file that writes it.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Environment;

/// Suffix of the relaxed copy of a definition (`ImageLayer` for `Image`).
const LAYER: &str = "Layer";

/// The schema of the merged environment: what every key must be after all layers.
pub fn merged() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Environment)).unwrap_or_default();
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "description".into(),
            Value::from(
                "The merged environment (base.toml + <env>.toml + INFRA_* + --set), as `infra` \
                 checks it. For a single environment file, use the layer schema (`infra schema`).",
            ),
        );
    }
    schema
}

/// The schema of one layer file (`base.toml`, `<env>.toml`): every key optional where layers
/// merge, unknown keys refused, descriptions, enums, defaults and examples kept.
pub fn layer() -> Value {
    let mut schema = merged();
    let Some(root) = schema.as_object_mut() else {
        return schema;
    };
    let mut defs = match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    relax(root, &mut defs);
    root.insert("title".into(), Value::from("Environment layer"));
    root.insert(
        "description".into(),
        Value::from(
            "One layer of an environment (environments/base.toml or environments/<env>.toml): \
             every key is optional, since later layers override earlier ones key by key, but \
             unknown keys are refused and arrays replace the array below them as a whole, so \
             each array item is complete. `infra schema --merged` is the merged environment's \
             schema; `infra config --env <env>` shows the merged values and where each comes from.",
        ),
    );
    let mut kept = BTreeSet::new();
    collect_refs(&Value::Object(root.clone()), &defs, &mut kept);
    defs.retain(|name, _| kept.contains(name));
    root.insert("$defs".into(), Value::Object(defs));
    schema
}

/// Makes `schema` a layer schema in place: drops `required`, relaxes what merges key by key
/// (properties, map values, alternatives), points references at relaxed definitions, and
/// leaves array items strict.
fn relax(schema: &mut Map<String, Value>, defs: &mut Map<String, Value>) {
    schema.remove("required");
    if let Some(Value::String(reference)) = schema.get("$ref")
        && let Some(name) = reference.strip_prefix("#/$defs/")
    {
        let name = name.to_owned();
        schema.insert("$ref".into(), Value::from(layer_def(&name, defs)));
    }
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for property in properties.values_mut() {
            if let Value::Object(p) = property {
                relax(p, defs);
            }
        }
    }
    if let Some(Value::Object(values)) = schema.get_mut("additionalProperties") {
        relax(values, defs);
    }
    // Relaxed alternatives may overlap (`{}` fits several), so "exactly one" becomes "any".
    if let Some(one_of) = schema.remove("oneOf") {
        schema.insert("anyOf".into(), one_of);
    }
    for key in ["anyOf", "allOf"] {
        if let Some(Value::Array(alternatives)) = schema.get_mut(key) {
            for alternative in alternatives {
                if let Value::Object(a) = alternative {
                    relax(a, defs);
                }
            }
        }
    }
}

/// The name of the relaxed copy of definition `name`, creating it on first use.
fn layer_def(name: &str, defs: &mut Map<String, Value>) -> String {
    let relaxed = format!("{name}{LAYER}");
    let reference = format!("#/$defs/{relaxed}");
    if defs.contains_key(&relaxed) {
        return reference;
    }
    let Some(Value::Object(original)) = defs.get(name).cloned() else {
        return format!("#/$defs/{name}");
    };
    // Insert a placeholder first so a definition that refers to itself terminates.
    defs.insert(relaxed.clone(), Value::Bool(true));
    let mut copy = original;
    relax(&mut copy, defs);
    defs.insert(relaxed, Value::Object(copy));
    reference
}

/// Every definition reachable from `value`.
fn collect_refs(value: &Value, defs: &Map<String, Value>, seen: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    if seen.insert(name.to_owned())
                        && let Some(def) = defs.get(name)
                    {
                        collect_refs(def, defs, seen);
                    }
                } else {
                    collect_refs(v, defs, seen);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, defs, seen)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
        &schema["$defs"][name]
    }

    #[test]
    fn the_merged_schema_requires_what_the_types_require() {
        let schema = merged();
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&Value::from("namespace")));
        assert!(def(&schema, "Image")["required"].is_array());
    }

    #[test]
    fn a_layer_requires_nothing_where_layers_merge_but_refuses_unknown_keys() {
        let schema = layer();
        assert!(schema.get("required").is_none());
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["image"]["$ref"], "#/$defs/ImageLayer");
        let image = def(&schema, "ImageLayer");
        assert!(image.get("required").is_none());
        assert_eq!(image["additionalProperties"], false);
        assert!(
            def(&schema, "Image").is_null(),
            "unused strict copies are dropped"
        );
    }

    #[test]
    fn array_items_stay_complete() {
        let schema = layer();
        // `[[proxy.upstreams]]` items keep their required keys: an array replaces the one below.
        assert!(def(&schema, "Upstream")["required"].is_array());
        assert!(def(&schema, "IngressHost")["required"].is_array());
    }
}
