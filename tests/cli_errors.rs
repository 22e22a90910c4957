//! Bad input through the real `infra` binary: every error exits 1, writes nothing under `--out`,
//! and names the layer (file, variable or `--set`), the key path and what was expected.
//!
//! Each test copies the committed `environments/` into its own temporary folder and breaks one
//! thing there.

#![expect(
    clippy::unwrap_used,
    reason = "test set-up that cannot go on after a failed step stops the test there"
)]

use std::process::Output;

const SECRET: &str = "sk-ant-api03-Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm";

mod sandbox;

use sandbox::Sandbox;

impl Sandbox {
    /// Runs `infra --environments <tmp> --out <tmp>/out <args>` with only `vars` of INFRA_*.
    fn run(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        self.infra()
            .envs(vars.iter().copied())
            .arg("--environments")
            .arg(self.root().join("environments"))
            .arg("--out")
            .arg(self.out())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `args`, asserts exit code 1 and that `--out` was not created; returns stderr.
    fn fails(&self, vars: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run(vars, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}\nstderr:\n{stderr}");
        assert!(
            !self.out().exists(),
            "{args:?} wrote {}",
            self.out().display()
        );
        stderr
    }

    /// `render --env production` with `args` after it must fail; returns stderr.
    fn render_fails(&self, args: &[&str]) -> String {
        let mut all = vec!["render", "--env", "production"];
        all.extend_from_slice(args);
        self.fails(&[], &all)
    }
}

/// Asserts `stderr` holds every fact.
fn assert_says(stderr: &str, facts: &[&str]) {
    for fact in facts {
        assert!(stderr.contains(fact), "stderr lacks {fact:?}:\n{stderr}");
    }
}

#[test]
fn the_untouched_copy_renders() {
    let s = Sandbox::new();
    let out = s.run(&[], &["render", "--env", "production"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s.out()
            .join("production")
            .join("kustomization.yaml")
            .exists()
    );
}

#[test]
fn unknown_env_lists_the_available_ones() {
    let s = Sandbox::new();
    let err = s.fails(&[], &["render", "--env", "prod"]);
    assert_says(
        &err,
        &["`prod`", "prod.toml", "development, production, staging"],
    );
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let s = Sandbox::new();
    let line = s.edit("production.toml", "[topology_spread]", "[topology_spread");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &["production.toml", &format!("line {line}"), "expected"],
    );
}

#[test]
fn typo_key_suggests_the_nearest() {
    let s = Sandbox::new();
    s.edit("production.toml", "max_replicas = 10", "max_replica = 10");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "autoscaling.max_replica:",
            "did you mean `max_replicas`?",
        ],
    );
}

#[test]
fn missing_key_names_where_it_belongs() {
    let s = Sandbox::new();
    s.edit(
        "base.toml",
        "ingress_controller_namespace = \"ingress-nginx\"\n",
        "",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "network_policy.ingress_controller_namespace",
            "missing",
            "base.toml",
        ],
    );
}

#[test]
fn unknown_enum_value_suggests_the_nearest() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "pull_policy = \"IfNotPresent\"",
        "pull_policy = \"IfNotPresnt\"",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "image.pull_policy",
            "`IfNotPresnt`",
            "did you mean `IfNotPresent`?",
        ],
    );
}

#[test]
fn wrong_type_says_what_was_expected() {
    let s = Sandbox::new();
    s.edit("production.toml", "max_skew = 1", "max_skew = \"one\"");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "topology_spread.max_skew",
            "expected a whole number",
            "\"one\"",
        ],
    );
}

#[test]
fn bad_quantity() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "requests = { cpu = \"250m\"",
        "requests = { cpu = \"250 m\"",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "resources.requests.cpu",
            "`250 m`",
            "`250m`",
        ],
    );
}

#[test]
fn bad_dns_label() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "namespace = \"ai-services\"",
        "namespace = \"AI_Services\"",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "namespace:",
            "`AI_Services`",
            "DNS-1123 label",
        ],
    );
}

#[test]
fn bad_host() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "host = \"api.ai.example.com\"",
        "host = \"api_ai\"",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "ingress.hosts[0].host",
            "`api_ai`",
            "host name",
        ],
    );
}

#[test]
fn port_out_of_range() {
    let s = Sandbox::new();
    s.append("production.toml", "[service]\nport = 70000");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &["production.toml", "service.port", "70000", "1 to 65535"],
    );
}

#[test]
fn duration_without_unit() {
    let s = Sandbox::new();
    s.edit("production.toml", "period = \"15s\"", "period = \"15\"");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "autoscaling.behavior.scale_up.period",
            "`15`",
            "`30s`",
        ],
    );
}

#[test]
fn request_above_limit() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "requests = { cpu = \"250m\"",
        "requests = { cpu = \"2\"",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "resources.requests.cpu",
            "`2`",
            "`1`",
            "at most the limit",
        ],
    );
}

#[test]
fn min_replicas_above_max() {
    let s = Sandbox::new();
    s.edit("production.toml", "min_replicas = 2", "min_replicas = 20");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "autoscaling.max_replicas",
            "got 10",
            "min_replicas (20)",
        ],
    );
}

#[test]
fn pdb_blocking_every_drain() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "disruption_budget.max_unavailable=0"]);
    assert_says(
        &err,
        &[
            "--set disruption_budget.max_unavailable",
            "disruption_budget.max_unavailable:",
            "drain",
            "at least 1",
        ],
    );
}

#[test]
fn tls_host_not_served_by_any_rule() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "hosts = [\"api.ai.example.com\"]",
        "hosts = [\"api.ai.example.com\", \"www.ai.example.com\"]",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "ingress.tls[0].hosts[1]",
            "`www.ai.example.com`",
            "api.ai.example.com",
        ],
    );
}

#[test]
fn utilization_target_without_request() {
    let s = Sandbox::new();
    for file in ["base.toml", "production.toml"] {
        s.edit(
            file,
            "cpu = \"250m\", memory = \"128Mi\" }",
            "cpu = \"250m\" }",
        );
    }
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "resources.requests.memory",
            "target_memory_utilization (80%)",
            "memory request",
        ],
    );
}

#[test]
fn ingress_timeout_below_the_proxy_total() {
    let s = Sandbox::new();
    s.edit(
        "production.toml",
        "annotations = { ",
        "annotations = { \"nginx.ingress.kubernetes.io/proxy-read-timeout\" = \"60\", ",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "nginx.ingress.kubernetes.io/proxy-read-timeout",
            "`60`",
            "proxy.timeouts.total",
            "at least 600",
        ],
    );
}

#[test]
fn ingress_path_must_be_absolute() {
    let s = Sandbox::new();
    s.edit("production.toml", "path = \"/\"", "path = \"v1\"");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "production.toml",
            "ingress.hosts[0].paths[0].path",
            "`v1`",
            "starting with `/`",
        ],
    );
}

#[test]
fn moving_image_tag() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "image.tag=latest"]);
    assert_says(
        &err,
        &["--set image.tag", "image.tag:", "`latest`", "version tag"],
    );
}

#[test]
fn invalid_upstream_cidr() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "network_policy.upstream_cidrs=[10.0.0.1/8]"]);
    assert_says(
        &err,
        &[
            "--set network_policy.upstream_cidrs",
            "network_policy.upstream_cidrs[0]",
            "`10.0.0.1/8`",
            "`10.0.0.0/8`",
        ],
    );
}

#[test]
fn env_key_source_in_an_environment_file() {
    let s = Sandbox::new();
    s.edit(
        "base.toml",
        "[proxy.auth.api_keys.keys.secret]\nname = \"ai-api-client-keys\"\nkey = \"keys\"",
        "[proxy.auth.api_keys]\nkeys = { env = \"CLIENT_KEYS\" }",
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "base.toml",
            "proxy.auth.api_keys.keys.env",
            "`CLIENT_KEYS`",
            "secret = {",
        ],
    );
}

#[test]
fn leaving_out_client_auth_is_an_error_not_an_open_proxy() {
    let s = Sandbox::new();
    s.edit(
        "base.toml",
        "[proxy.auth.api_keys.keys.secret]\nname = \"ai-api-client-keys\"\nkey = \"keys\"",
        "",
    );
    let err = s.render_fails(&[]);
    assert_says(&err, &["proxy.auth", "is required", "\"anonymous\""]);
}

#[test]
fn proxy_rules_name_the_file() {
    let s = Sandbox::new();
    s.edit("base.toml", "first_byte = \"120s\"", "first_byte = \"20m\"");
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "base.toml",
            "proxy.timeouts.first_byte",
            "20m",
            "timeouts.total (10m)",
        ],
    );
}

#[test]
fn secret_value_is_reported_but_never_shown() {
    let s = Sandbox::new();
    s.edit(
        "base.toml",
        "api_key = { secret = { name = \"holysheep-api-key\", key = \"api-key\" } }",
        &format!(
            "api_key = {{ secret = {{ name = \"holysheep-api-key\", key = \"api-key\" }} }}\nheaders = {{ \"X-Org-Key\" = \"{SECRET}\" }}"
        ),
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "base.toml",
            "proxy.upstreams[0].headers.X-Org-Key",
            "value not shown",
            "Secret",
        ],
    );
    assert!(!err.contains(SECRET) && !err.contains("Zx9Qw3"), "{err}");
}

#[test]
fn secret_in_a_rejected_value_is_never_shown() {
    // Serde stops at the first value of a wrong type, so one file at a time.
    for (from, path) in [
        ("max_skew = 1", "topology_spread.max_skew"),
        ("namespace = \"ai-services\"", "namespace"),
    ] {
        let s = Sandbox::new();
        let key = from.split(' ').next().unwrap();
        s.edit("production.toml", from, &format!("{key} = \"{SECRET}\""));
        let err = s.render_fails(&[]);
        assert_says(&err, &["production.toml", path, "value not shown"]);
        assert!(!err.contains("Zx9Qw3"), "{err}");
    }
}

#[test]
fn secret_on_a_broken_line_is_never_shown() {
    let s = Sandbox::new();
    s.append("production.toml", &format!("token = \"{SECRET}"));
    let err = s.render_fails(&[]);
    assert_says(&err, &["production.toml", "line"]);
    assert!(!err.contains("Zx9Qw3"), "{err}");
}

#[test]
fn url_with_credentials_is_a_secret() {
    let s = Sandbox::new();
    let url = "https://svc:hunter2hunter2@api.holysheep.ai/v1";
    s.edit(
        "base.toml",
        "base_url = \"https://api.holysheep.ai/v1\"",
        &format!("base_url = \"{url}\""),
    );
    let err = s.render_fails(&[]);
    assert_says(
        &err,
        &[
            "base.toml",
            "proxy.upstreams[0].base_url",
            "value not shown",
        ],
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn bad_variable_names_the_variable() {
    let s = Sandbox::new();
    let err = s.fails(
        &[("INFRA_AUTOSCALING__MAX_REPLICAS", "many")],
        &["render", "--env", "production"],
    );
    assert_says(
        &err,
        &[
            "INFRA_AUTOSCALING__MAX_REPLICAS",
            "autoscaling.max_replicas",
            "expected a whole number",
            "\"many\"",
        ],
    );
}

#[test]
fn variable_breaking_a_rule_names_the_variable() {
    let s = Sandbox::new();
    let err = s.fails(
        &[("INFRA_RESOURCES__REQUESTS__MEMORY", "1Gi")],
        &["plan", "--env", "production"],
    );
    assert_says(
        &err,
        &[
            "INFRA_RESOURCES__REQUESTS__MEMORY",
            "resources.requests.memory",
            "`1Gi`",
            "`512Mi`",
        ],
    );
}

#[test]
fn bad_set_value_names_the_flag() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "autoscaling.max_replicas=lots"]);
    assert_says(
        &err,
        &[
            "--set autoscaling.max_replicas",
            "autoscaling.max_replicas:",
            "expected a whole number",
            "\"lots\"",
        ],
    );
}

#[test]
fn typo_in_set_suggests_the_key() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "autoscaling.max_replica=3"]);
    assert_says(
        &err,
        &[
            "--set autoscaling.max_replica",
            "did you mean `max_replicas`?",
        ],
    );
}

#[test]
fn malformed_set_shows_the_form() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", "autoscaling.max_replicas"]);
    assert_says(
        &err,
        &[
            "--set autoscaling.max_replicas",
            "expected `key.path=value`",
        ],
    );
}

#[test]
fn secret_pasted_as_a_set_flag_is_never_shown() {
    let s = Sandbox::new();
    let err = s.render_fails(&["--set", SECRET]);
    assert_says(
        &err,
        &["--set", "value not shown", "expected `key.path=value`"],
    );
    assert!(!err.contains("Zx9Qw3"), "{err}");
    let err = s.render_fails(&["--set", &format!("proxy.{SECRET}=1")]);
    assert_says(&err, &["--set", "value not shown", "unknown key"]);
    assert!(!err.contains("Zx9Qw3"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let s = Sandbox::new();
    s.edit("production.toml", "min_replicas = 2", "min_replicas = 20");
    let err = s.render_fails(&[
        "--set",
        "disruption_budget.max_unavailable=0",
        "--set",
        "image.tag=latest",
    ]);
    assert_says(
        &err,
        &[
            "3 problems",
            "autoscaling.max_replicas",
            "disruption_budget.max_unavailable",
            "image.tag",
        ],
    );
}

#[test]
fn plan_fails_the_same_way() {
    let s = Sandbox::new();
    let err = s.fails(
        &[],
        &[
            "plan",
            "--env",
            "production",
            "--set",
            "replicas=0",
            "--set",
            "autoscaling.enabled=false",
        ],
    );
    assert_says(
        &err,
        &["--set replicas", "replicas:", "got 0", "at least 1"],
    );
}

#[test]
fn existing_output_is_left_alone() {
    let s = Sandbox::new();
    let dir = s.out().join("production");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker.yaml"), "kept: true\n").unwrap();
    let out = s.run(
        &[],
        &["render", "--env", "production", "--set", "image.tag=latest"],
    );
    assert_eq!(out.status.code(), Some(1));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["marker.yaml"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("marker.yaml")).unwrap(),
        "kept: true\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let s = Sandbox::new();
    let out = s.run(&[], &["render"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--env"));
    assert!(!s.out().exists());
}
