//! The `infra` binary end to end on a temporary copy of the committed environments:
//! render writes, plan reports and checks, envs lists, schema describes.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a broken fixture stops the test loudly"
)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

mod sandbox;

use sandbox::Sandbox;

impl Sandbox {
    fn run(&self, args: &[&str]) -> Output {
        self.infra().args(args).output().unwrap()
    }

    fn env_out(&self, env: &str) -> PathBuf {
        self.out().join(env)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn render_writes_one_file_per_object_and_a_kustomization() {
    let s = Sandbox::new();
    let o = s.run(&["render", "--env", "production"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = fs::read_dir(s.env_out("production"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"kustomization.yaml".to_owned()));
    assert!(
        names.contains(&"deployment-ai-api-proxy.yaml".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"networkpolicy-ai-api-proxy.yaml".to_owned()),
        "{names:?}"
    );
    let kustomization =
        fs::read_to_string(s.env_out("production").join("kustomization.yaml")).unwrap();
    for name in names.iter().filter(|n| *n != "kustomization.yaml") {
        assert!(
            kustomization.contains(&format!("- {name}\n")),
            "{name} missing from kustomization.yaml"
        );
    }
    assert!(stdout(&o).contains(&format!("wrote {} files", names.len())));
}

#[test]
fn render_is_byte_identical_and_removes_stale_files() {
    let s = Sandbox::new();
    assert!(s.run(&["render", "--env", "staging"]).status.success());
    let first = infra::output::read(&s.env_out("staging")).unwrap();
    fs::write(s.env_out("staging").join("stale.yaml"), "kind: Leftover\n").unwrap();
    assert!(s.run(&["render", "--env", "staging"]).status.success());
    assert_eq!(infra::output::read(&s.env_out("staging")).unwrap(), first);
}

#[test]
fn plan_reports_create_update_delete_and_check_fails_when_stale() {
    let s = Sandbox::new();
    let o = s.run(&["plan", "--env", "production"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("+ create     deployment-ai-api-proxy.yaml"),
        "{}",
        stdout(&o)
    );
    let check = s.run(&["plan", "--env", "production", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stderr(&check).contains("is stale: run `infra render --env production`"));
    assert!(!s.env_out("production").exists(), "plan must not write");

    assert!(s.run(&["render", "--env", "production"]).status.success());
    let o = s.run(&["plan", "--env", "production", "--check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("0 to create, 0 to update, 0 to delete"),
        "{}",
        stdout(&o)
    );

    s.edit("production.toml", "max_replicas = 10", "max_replicas = 12");
    fs::write(s.env_out("production").join("stale.yaml"), "x: 1\n").unwrap();
    let o = s.run(&["plan", "--env", "production"]);
    let text = stdout(&o);
    assert!(
        text.contains("~ update     horizontalpodautoscaler-ai-api-proxy.yaml"),
        "{text}"
    );
    assert!(
        text.contains("-  maxReplicas: 10") && text.contains("+  maxReplicas: 12"),
        "{text}"
    );
    assert!(text.contains("- delete     stale.yaml"), "{text}");
    assert!(
        text.contains("0 to create, 1 to update, 1 to delete"),
        "{text}"
    );
}

#[test]
fn plan_colours_only_when_asked() {
    let s = Sandbox::new();
    let plain = s.run(&["plan", "--env", "development"]);
    assert!(!stdout(&plain).contains('\x1b'));
    let coloured = s.run(&["plan", "--env", "development", "--color", "always"]);
    assert!(stdout(&coloured).contains("\x1b[32m+ create"));
}

#[test]
fn set_and_variables_override_the_files_and_are_named_in_the_header() {
    let s = Sandbox::new();
    let o = s.run(&[
        "render",
        "--env",
        "production",
        "--stdout",
        "--set",
        "autoscaling.max_replicas=7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("maxReplicas: 7"), "{text}");
    assert!(
        text.contains("# Overrides: --set autoscaling.max_replicas."),
        "{text}"
    );
    assert!(!s.out().exists(), "--stdout writes no files");

    let o = Command::new(env!("CARGO_BIN_EXE_infra"))
        .current_dir(s.root())
        .env("INFRA_AUTOSCALING__MAX_REPLICAS", "8")
        .args(["render", "--env", "production", "--stdout"])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("maxReplicas: 8"), "{}", stderr(&o));
    // --set wins over the variable
    let o = Command::new(env!("CARGO_BIN_EXE_infra"))
        .current_dir(s.root())
        .env("INFRA_AUTOSCALING__MAX_REPLICAS", "8")
        .args([
            "render",
            "--env",
            "production",
            "--stdout",
            "--set",
            "autoscaling.max_replicas=9",
        ])
        .output()
        .unwrap();
    assert!(stdout(&o).contains("maxReplicas: 9"), "{}", stderr(&o));
}

#[test]
fn stdout_stream_has_one_document_per_object() {
    let s = Sandbox::new();
    let o = s.run(&["render", "--env", "production", "--stdout"]);
    let text = stdout(&o);
    let docs = text.matches("\n---\n").count() + usize::from(text.starts_with("---\n"));
    assert!(s.run(&["render", "--env", "production"]).status.success());
    let files = fs::read_dir(s.env_out("production")).unwrap().count() - 1;
    assert_eq!(docs, files, "{text}");
}

#[test]
fn envs_lists_the_environment_files() {
    let s = Sandbox::new();
    let o = s.run(&["envs"]);
    assert_eq!(stdout(&o), "development\nproduction\nstaging\n");
}

#[test]
fn schema_describes_the_environment_file() {
    let s = Sandbox::new();
    let o = s.run(&["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(schema["title"], "Environment layer");
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are rejected by the schema too"
    );
    for key in ["namespace", "image", "autoscaling", "ingress", "proxy"] {
        assert!(schema["properties"][key].is_object(), "{key}");
    }
}

#[test]
fn every_command_has_complete_help() {
    let s = Sandbox::new();
    for args in [
        vec!["--help"],
        vec!["render", "--help"],
        vec!["plan", "--help"],
        vec!["envs", "--help"],
        vec!["schema", "--help"],
        vec!["config", "--help"],
        vec!["diff", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        let o = s.run(&args);
        assert!(o.status.success());
        assert!(stdout(&o).contains("Usage: infra"), "{args:?}");
    }
    let plan = stdout(&s.run(&["plan", "--help"]));
    for flag in [
        "--env",
        "--set",
        "--check",
        "--color",
        "--environments",
        "--out",
    ] {
        assert!(plan.contains(flag), "plan --help lacks {flag}");
    }
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::process::Stdio;
    let s = Sandbox::new();
    let mut child = s
        .infra()
        .args(["render", "--env", "production", "--stdout"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes, as `| head -c0` would.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
