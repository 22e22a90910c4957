//! Command-line interface: one module per subcommand, each with its arguments and `run`.

mod apply;
mod cluster;
mod config;
mod diff;
mod docs;
mod envs;
mod gitops;
mod history;
mod plan;
mod render;
mod rollback;
mod schema;
mod screen;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Layers;
use crate::pipeline;

/// Typed Kubernetes manifests for the AI API proxy, from layered environment files.
///
/// Layers, later wins: <environments>/base.toml, then <environments>/<env>.toml, then
/// INFRA_* environment variables (nested keys joined by `__`, e.g.
/// INFRA_AUTOSCALING__MAX_REPLICAS=20), then `--set key.path=value` flags.
#[derive(Debug, Parser)]
#[command(name = "infra", version, propagate_version = true)]
pub struct Cli {
    /// Folder holding base.toml and one <env>.toml per environment.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "environments"
    )]
    environments: PathBuf,
    /// Folder that holds one rendered folder per environment (committed for GitOps).
    #[arg(long, global = true, value_name = "DIR", default_value = "out")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the manifests of an environment to <out>/<env>/ (replacing what was there).
    Render(render::RenderArgs),
    /// Show what `render` would change in <out>/<env>/, object by object; writes nothing.
    Plan(plan::PlanArgs),
    /// Apply an environment to the cluster: preflight, server-side apply, prune, wait.
    ///
    /// Builds exactly what `render` writes, then: (1) preflight, before any write: the server
    /// serves every kind (discovery), every verb on every kind is allowed
    /// (SelfSubjectAccessReview), the namespace and every Secret key the proxy reads exist;
    /// (2) a server-side dry run of every object: a field another manager owns fails here,
    /// naming object, field and manager, unless --force-conflicts; (3) server-side apply in
    /// render order, field manager `infra`, plus the ApplySet parent ConfigMap
    /// `applyset-<name>`; (4) prune of members of the set that left the plan (never the
    /// Namespace, never an object without our labels); (5) wait until every object is ready.
    /// The whole apply holds the environment's lock (a Lease `applyset-<name>-lock`: a second
    /// apply fails at once naming the holder, or queues with --wait-for-lock), and is recorded
    /// as a revision (`infra history`, `infra rollback`); with --atomic a failure after the
    /// first write applies the last deployed revision again at once.
    ///
    /// The cluster comes from --kubeconfig/--context, else KUBECONFIG (or ~/.kube/config), else
    /// the in-cluster service account; the namespace always from the environment. Exit status:
    /// 0 applied (and ready), 1 on an invalid environment, a failed preflight, a conflict, an
    /// API error, or an object that failed or timed out; 2 on a usage error.
    Apply(apply::ApplyArgs),
    /// Show the revisions of an environment recorded in the cluster, newest first.
    ///
    /// Every apply and rollback that wrote to the cluster is recorded as a revision beside the
    /// ApplySet parent (ConfigMaps `applyset-<name>-rev-<N>`, format `infra.revision/v1`):
    /// number, time, who applied it, status (deployed, superseded, failed, rolled-back), the
    /// commit of the environment files and a one-line summary. Reads only `name` and
    /// `namespace` from the environment files.
    History(history::HistoryArgs),
    /// Apply a recorded revision again (default: the last deployed before the current one).
    ///
    /// The revision's objects go through the same preflight, dry run, conflict rules, prune
    /// and wait as `apply`, and the rollback is recorded as a new revision; the revision it
    /// undid becomes `rolled-back`. Reads the revision from the cluster, not the environment
    /// files (only their `name` and `namespace`), so it works when they no longer build.
    Rollback(rollback::RollbackArgs),
    /// Show the merged environment as TOML, each value followed by where it came from.
    ///
    /// Values are the validated environment's, defaults included: after each, the file and
    /// line, the INFRA_* variable or the --set flag that set it, or `default`. Nothing a secret
    /// could hide in is printed.
    Config(config::ConfigArgs),
    /// Show what promoting one environment's settings to another would change, object by object.
    ///
    /// Renders both (`--env` with its --set flags, and `--against`) and compares them in the
    /// plan's format; reads no <out>/ and writes nothing.
    Diff(diff::DiffArgs),
    /// List the environments defined in the environments folder.
    Envs,
    /// Print what Flux (GitRepository + Kustomization) or Argo CD (Application) needs to
    /// reconcile <out>/<env>/ from Git, for `kubectl apply --server-side -f -`.
    ///
    /// Prune on; health checks (kstatus) on every object applied, the Deployment, the
    /// HorizontalPodAutoscaler and the PodDisruptionBudget among them; prerequisites (the
    /// Secrets' Kustomization or Application) with --depends-on. The objects are the engine's,
    /// never rendered into <out>/<env>/. Writes nothing.
    Gitops(gitops::GitopsArgs),
    /// Print the JSON Schema of an environment file (for editors and taplo).
    ///
    /// Without --merged: the schema of one layer file (every key optional, unknown keys
    /// refused), which is what an editor should check `environments/*.toml` against; the
    /// repository's .taplo.toml points Taplo and VS Code's Even Better TOML at its copy,
    /// environments/schema.json. With --merged: the contract of the merged environment.
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (e.g. `infra completions bash > ~/.local/share/bash-completion/completions/infra`).
    Completions(docs::CompletionsArgs),
    /// Print the manual page as roff (e.g. `infra man | man -l -`).
    Man(docs::ManArgs),
}

/// Help of `--set`, shared by every command that takes it.
const SET_HELP: &str = "Override one key after every other layer, e.g. `--set autoscaling.max_replicas=20` (repeatable; values are read as TOML-like scalars: numbers, booleans, [lists], strings)";

/// Which environment to load, and the overrides applied on top of its files.
#[derive(Debug, Args)]
struct EnvArgs {
    /// Environment name: the stem of a file in the environments folder (e.g. `production`).
    #[arg(long, short, value_name = "ENV")]
    env: String,
    #[arg(long = "set", value_name = "KEY=VALUE", help = SET_HELP)]
    sets: Vec<String>,
}

impl Cli {
    /// Runs the chosen command; `Ok` carries the exit code of a command that ran to the end.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Render(args) => args.run(&self.environments, &self.out),
            Command::Plan(args) => args.run(&self.environments, &self.out),
            Command::Apply(args) => args.run(&self.environments),
            Command::History(args) => args.run(&self.environments),
            Command::Rollback(args) => args.run(&self.environments),
            Command::Config(args) => args.run(&self.environments),
            Command::Diff(args) => args.run(&self.environments),
            Command::Envs => envs::run(&self.environments),
            Command::Gitops(args) => args.run(&self.environments, &self.out),
            Command::Schema(args) => args.run(),
            Command::Completions(args) => args.run(),
            Command::Man(args) => args.run(),
        }
    }
}

/// Where an environment's ApplySet (and its revisions and lock) lives.
struct Place {
    namespace: String,
    /// The parent ConfigMap's name.
    parent: String,
}

impl EnvArgs {
    fn layers(&self, dir: &std::path::Path) -> Layers {
        Layers {
            dir: dir.to_owned(),
            env: self.env.clone(),
            sets: self.sets.clone(),
        }
    }

    /// Where the environment's set lives, read from its layers without validating the rest
    /// (`name` and `namespace` only), so `history` and `rollback` work when it does not build.
    fn locate(&self, dir: &std::path::Path) -> anyhow::Result<Place> {
        let figment = crate::config::figment(&self.layers(dir))?;
        let read = |key: &str| {
            figment
                .extract_inner::<crate::config::DnsLabel>(key)
                .map(|v| v.as_str().to_owned())
                .map_err(|e| {
                    anyhow::anyhow!("environment `{}`: cannot read `{key}`: {e}", self.env)
                })
        };
        Ok(Place {
            namespace: read("namespace")?,
            parent: crate::objects::applyset::parent_name_of(&read("name")?),
        })
    }

    /// Loads and validates the environment and builds its objects.
    fn build(&self, dir: &std::path::Path) -> anyhow::Result<pipeline::Built> {
        Ok(pipeline::build(&self.layers(dir))?)
    }
}
