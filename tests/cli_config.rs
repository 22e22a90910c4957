//! What a platform engineer reads before changing an environment, with the real `infra` binary
//! on a temporary copy of the environments: the schema editors check files against, and
//! `infra config` (the merged values and where each came from).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a broken fixture stops the test loudly"
)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod sandbox;

use sandbox::Sandbox;

fn run(s: &Sandbox, args: &[&str]) -> Output {
    s.infra().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects success; returns stdout.
fn ok(s: &Sandbox, args: &[&str]) -> String {
    let o = run(s, args);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The 1-based line of the one occurrence of `needle` in a sandbox file.
fn line_of(s: &Sandbox, file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(s.file(file)).unwrap();
    assert_eq!(text.matches(needle).count(), 1, "{needle:?} in {file}");
    text[..text.find(needle).unwrap()].lines().count() + 1
}

#[test]
fn committed_schema_file_is_what_infra_schema_prints() {
    let s = Sandbox::new();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/schema.json");
    assert_eq!(
        std::fs::read_to_string(committed).unwrap(),
        ok(&s, &["schema"]),
        "environments/schema.json is stale: run `infra schema > environments/schema.json`"
    );
    let taplo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".taplo.toml")).unwrap();
    assert!(
        taplo.contains("path = \"environments/schema.json\""),
        "{taplo}"
    );
}

#[test]
fn layer_schema_makes_keys_optional_and_merged_schema_requires_them() {
    let s = Sandbox::new();
    let layer = json(&ok(&s, &["schema"]));
    assert_eq!(layer["title"], "Environment layer");
    assert!(
        layer.get("required").is_none(),
        "a layer file requires nothing"
    );
    assert_eq!(layer["additionalProperties"], false, "unknown keys refused");
    let image = &layer["$defs"]["ImageLayer"];
    assert!(image.get("required").is_none());
    assert_eq!(
        image["properties"]["pull_policy"]["default"],
        "IfNotPresent"
    );
    assert_eq!(
        image["properties"]["repository"]["examples"][0],
        "ghcr.io/example/ai-api-proxy"
    );
    assert!(image["properties"]["repository"]["description"].is_string());
    let text = layer.to_string();
    assert!(
        text.contains("\"enum\"") || text.contains("\"const\""),
        "enums kept"
    );

    let merged = json(&ok(&s, &["schema", "--merged"]));
    assert_eq!(merged["title"], "Environment");
    let required = merged["required"].as_array().unwrap();
    for key in ["name", "namespace", "image", "proxy"] {
        assert!(required.contains(&Value::from(key)), "{key}");
    }
}

#[test]
fn config_shows_each_value_with_its_file_and_line_variable_flag_or_default() {
    let s = Sandbox::new();
    let o = s
        .infra()
        .env("INFRA_IMAGE__TAG", "0.2.0")
        .args([
            "config",
            "--env",
            "production",
            "--set",
            "autoscaling.max_replicas=20",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let prod = "environments/production.toml";
    let expect = [
        "max_replicas = 20".to_owned() + " ",
        format!(
            "# {prod}:{}\n",
            line_of(&s, "production.toml", "min_replicas = 2")
        ),
        "# --set autoscaling.max_replicas\n".into(),
        "# environment variable INFRA_IMAGE__TAG\n".into(),
        format!(
            "repository = \"ghcr.io/example/ai-api-proxy\"  # environments/base.toml:{}\n",
            line_of(&s, "base.toml", "repository = ")
        ),
        "secrets_dir = \"/var/run/secrets/ai-api-proxy\"  # default\n".into(),
        "[[proxy.upstreams]]\n".into(),
        "[proxy.upstreams.api_key.secret]\n".into(),
    ];
    for e in &expect {
        assert!(text.contains(e.as_str()), "missing {e:?} in\n{text}");
    }
    // The output is TOML: every line parses, and it holds the merged values.
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    assert_eq!(doc["autoscaling"]["max_replicas"].as_integer(), Some(20));
    assert_eq!(doc["image"]["tag"].as_str(), Some("0.2.0"));
    assert_eq!(
        doc["proxy"]["upstreams"][0]["api_key"]["secret"]["name"].as_str(),
        Some("holysheep-api-key")
    );

    let j = json(&ok(&s, &["config", "--env", "production", "--json"]));
    assert_eq!(j["environment"], "production");
    assert_eq!(j["config"]["autoscaling"]["max_replicas"], 10);
    let entry = j["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == "autoscaling.max_replicas")
        .unwrap();
    assert_eq!(entry["value"], 10);
    assert_eq!(entry["origin"]["layer"], "file");
    assert_eq!(entry["origin"]["path"], prod);
    assert_eq!(
        entry["origin"]["line"],
        line_of(&s, "production.toml", "max_replicas = 10")
    );
}

#[test]
fn config_of_an_invalid_environment_is_its_errors_and_never_a_secret() {
    let s = Sandbox::new();
    let key = "sk-proj-Zr4xQm8Lw2Nv6Tb1Yc5Hd9Kf3Jg7Ps0";
    let o = run(
        &s,
        &[
            "config",
            "--env",
            "production",
            "--set",
            &format!("image.tag={key}"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "no partial output");
    assert!(stderr(&o).contains("image.tag"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains(key) && !stderr(&o).contains("Zr4xQm8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stream_failover_is_rendered_per_model_and_needs_a_second_upstream() {
    let s = Sandbox::new();
    s.append(
        "base.toml",
        r#"[[proxy.upstreams]]
name = "backup"
base_url = "https://backup.example.com/v1"
api_key = { secret = { name = "backup-api-key", key = "api-key" } }"#,
    );
    s.edit(
        "base.toml",
        "name = \"gpt-4.1\"\nupstreams = [\"holysheep\"]",
        "name = \"gpt-4.1\"\nupstreams = [\"holysheep\", \"backup\"]\non_stream_failure = \"continue\"",
    );
    let out = s.out();
    ok(&s, &["render", "--env", "development"]);
    let yaml =
        std::fs::read_to_string(out.join("development/configmap-ai-api-proxy.yaml")).unwrap();
    let cm: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let proxy = json(cm["data"]["proxy.json"].as_str().unwrap());
    let models = proxy["models"].as_array().unwrap();
    assert_eq!(models[0]["name"], "gpt-4.1");
    assert_eq!(models[0]["on_stream_failure"], "continue");
    assert!(
        models[1..]
            .iter()
            .all(|m| m.get("on_stream_failure").is_none()),
        "the default (`error`) is not written: {models:?}"
    );

    s.edit(
        "base.toml",
        "upstreams = [\"holysheep\", \"backup\"]",
        "upstreams = [\"holysheep\"]",
    );
    let o = run(&s, &["render", "--env", "development"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("models[0].on_stream_failure")
            && stderr(&o).contains("`continue` needs a second upstream"),
        "{}",
        stderr(&o)
    );
}
