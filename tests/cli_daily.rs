//! The platform engineer's daily loop, with the real `infra` binary on a temporary copy of the
//! environments: a plan that shows only what changed (text, JSON, every environment at once),
//! `diff --against`, completions, the manual page, and the README's examples of them (and of
//! `infra config`) as real output.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a broken fixture stops the test loudly"
)]

use std::path::Path;
use std::process::{Command, Output};

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

#[test]
fn a_header_alone_is_not_an_update_and_the_summary_counts_real_changes() {
    let s = Sandbox::new();
    ok(&s, &["render", "--env", "production"]);
    let sets = [
        "--set",
        "autoscaling.max_replicas=20",
        "--set",
        "proxy.rate_limit.burst=50",
    ];
    let text = ok(&s, &[&["plan", "--env", "production"][..], &sets].concat());
    let updates: Vec<&str> = text.lines().filter(|l| l.starts_with("~ update")).collect();
    assert_eq!(
        updates,
        [
            "~ update     configmap-ai-api-proxy.yaml",
            "~ update     deployment-ai-api-proxy.yaml",
            "~ update     horizontalpodautoscaler-ai-api-proxy.yaml",
        ],
        "{text}"
    );
    assert!(
        !text.contains("# Overrides"),
        "headers are not in the diffs:\n{text}"
    );
    assert!(
        text.contains(
            "(10 unchanged files differ only in the provenance header: not counted as changes)"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "Plan for out/production: 0 to create, 3 to update, 0 to delete, 10 unchanged.\n"
        ),
        "{text}"
    );

    // Rendered with an override of the same value: only headers differ, and --check says so.
    ok(
        &s,
        &["render", "--env", "production", "--set", "replicas=1"],
    );
    let o = run(&s, &["plan", "--env", "production", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("0 to create, 0 to update, 0 to delete, 13 unchanged"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("out/production is stale (its provenance headers only)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_json_lists_object_action_and_diff_for_bots() {
    let s = Sandbox::new();
    ok(&s, &["render", "--env", "production"]);
    s.edit("production.toml", "max_replicas = 10", "max_replicas = 12");
    let j = json(&ok(
        &s,
        &["plan", "--env", "production", "--output", "json"],
    ));
    assert_eq!(j["environment"], "production");
    assert_eq!(j["folder"], "out/production");
    assert_eq!(
        j["summary"],
        serde_json::json!({"create": 0, "update": 1, "delete": 0, "unchanged": 12, "provenance_only": 0})
    );
    let changes = j["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 13);
    let hpa = changes.iter().find(|c| c["action"] == "update").unwrap();
    assert_eq!(hpa["object"], "HorizontalPodAutoscaler/ai-api-proxy");
    assert_eq!(hpa["file"], "horizontalpodautoscaler-ai-api-proxy.yaml");
    let diff = hpa["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  maxReplicas: 10\n+  maxReplicas: 12\n"),
        "{diff}"
    );
    let ns = changes
        .iter()
        .find(|c| c["file"] == "namespace-ai-services.yaml")
        .unwrap();
    assert_eq!(ns["action"], "unchanged");
    assert!(ns["diff"].is_null());
}

#[test]
fn plan_all_checks_every_environment_with_one_exit_status() {
    let s = Sandbox::new();
    ok(&s, &["render", "--env", "development"]);
    ok(&s, &["render", "--env", "production"]);
    let o = run(&s, &["plan", "--all", "--check"]);
    assert_eq!(o.status.code(), Some(1), "staging was never rendered");
    let text = stdout(&o);
    for env in ["development", "production", "staging"] {
        assert!(text.contains(&format!("Plan for out/{env}: ")), "{text}");
    }
    assert!(
        stderr(&o).contains("out/staging is stale"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("out/production"), "{}", stderr(&o));

    let plans = json(&ok(&s, &["plan", "--all", "--output", "json"]));
    let names: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["development", "production", "staging"]);

    ok(&s, &["render", "--env", "staging"]);
    ok(&s, &["plan", "--all", "--check"]);

    // One broken environment: reported, the others still planned, one failing status.
    s.append("staging.toml", "[metrics]\nscrape_annotation = true");
    let o = run(&s, &["plan", "--all", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("scrape_annotation"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Plan for out/production: "),
        "{}",
        stdout(&o)
    );
    let o = run(&s, &["plan", "--all", "--output", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let plans = json(&stdout(&o));
    assert!(plans[1]["summary"].is_object(), "{plans}");
    assert_eq!(plans[2]["environment"], "staging");
    let error = plans[2]["error"].as_str().unwrap();
    assert!(error.contains("scrape_annotation"), "{plans}");

    let o = run(&s, &["plan", "--all", "--env", "production"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--all and --env exclude each other"
    );
}

#[test]
fn diff_shows_what_promoting_staging_to_production_changes() {
    let s = Sandbox::new();
    let text = ok(&s, &["diff", "--env", "staging", "--against", "production"]);
    assert!(
        text.ends_with(
            "Promoting `staging`'s settings to `production`: 1 to create, 5 to update, 1 to delete, 7 unchanged.\n"
        ),
        "{text}"
    );
    for line in [
        "~ update     horizontalpodautoscaler-ai-api-proxy.yaml\n",
        "    --- production/horizontalpodautoscaler-ai-api-proxy.yaml\n",
        "    +++ staging/horizontalpodautoscaler-ai-api-proxy.yaml\n",
        "    -  maxReplicas: 10\n    +  maxReplicas: 4\n",
        "+ create     httproute-ai-api-proxy.yaml\n",
        "- delete     ingress-ai-api-proxy.yaml\n",
        "  unchanged  namespace-ai-services.yaml\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("ai-services-staging") && !text.contains("ai-api-proxy-staging"),
        "promotion keeps production's namespace and instance:\n{text}"
    );
    assert!(!out_exists(&s), "diff writes nothing");

    // --set applies to the promoted side; identical settings promote nothing.
    let j = json(&ok(
        &s,
        &[
            "diff",
            "--env",
            "production",
            "--against",
            "production",
            "--output",
            "json",
        ],
    ));
    assert_eq!(j["summary"]["update"], 0);
    assert_eq!(j["against"], "production");
}

fn out_exists(s: &Sandbox) -> bool {
    s.out().exists()
}

#[test]
fn completions_load_in_bash_and_exist_for_each_shell() {
    let s = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = ok(&s, &["completions", shell]);
        for word in ["plan", "config", "diff", "against"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let script = ok(&s, &["completions", "bash"]);
    let path = s.root().join("infra.bash");
    std::fs::write(&path, script).unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p infra && COMP_WORDS=(infra pl) && COMP_CWORD=1 && _infra infra pl infra && echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("-F _infra infra"), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with("plan"), "{}", stdout(&o));
}

#[test]
fn man_page_is_roff_for_infra_and_each_command() {
    let s = Sandbox::new();
    let page = ok(&s, &["man"]);
    assert!(page.contains(".TH infra 1"), "{page}");
    for command in [
        "render",
        "plan",
        "apply",
        "config",
        "diff",
        "schema",
        "completions",
    ] {
        assert!(page.contains(command), "{command}");
        let sub = ok(&s, &["man", command]);
        assert!(sub.contains(&format!(".TH infra-{command} 1")), "{sub}");
    }
    let o = run(&s, &["man", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no command `nope`"), "{}", stderr(&o));
}

/// The first fenced block of README.md after `marker`, without its fences.
fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let from = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in README.md"));
    let rest = &readme[from..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

/// Each line of an excerpt (`...` skips) is a line of the real output, in order.
fn assert_excerpt(excerpt: &str, real: &str) {
    let mut lines = real.lines();
    for want in excerpt.lines().filter(|l| *l != "...") {
        assert!(
            lines.any(|l| l == want),
            "README line {want:?} is not in the real output (in order):\n{real}"
        );
    }
}

#[test]
fn readme_examples_are_real_output() {
    let s = Sandbox::new();
    ok(&s, &["render", "--env", "production"]);
    let plan = ok(
        &s,
        &[
            "plan",
            "--env",
            "production",
            "--set",
            "autoscaling.max_replicas=20",
        ],
    );
    assert_eq!(readme_block("autoscaling.max_replicas=20`:"), plan);

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
    assert_excerpt(
        &readme_block("**Where did a value come from?**"),
        &stdout(&o),
    );

    // The JSON plan, its changes trimmed to the updates as the README says.
    let mut real = json(&ok(
        &s,
        &[
            "plan",
            "--env",
            "production",
            "--set",
            "autoscaling.max_replicas=20",
            "--output",
            "json",
        ],
    ));
    let updates: Vec<Value> = real["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .cloned()
        .collect();
    real["changes"] = Value::Array(updates);
    assert_eq!(
        json(&readme_block("`--output json` gives the same plan")),
        real
    );

    let diff = ok(&s, &["diff", "--env", "staging", "--against", "production"]);
    assert_excerpt(&readme_block("**What would promoting staging"), &diff);
}
