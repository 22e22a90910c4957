//! `infra gitops`: prints what a GitOps engine needs to reconcile an environment's rendered
//! folder (Flux's GitRepository and Kustomization, or Argo CD's Application), for
//! `kubectl apply --server-side -f -`. Reads the environment; writes nothing.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args};

use super::EnvArgs;
use crate::config::DnsLabel;
use crate::gitops::{self, Branch, EngineObject, GitUrl, Options, RepoPath, Source};
use crate::render;

/// Arguments of `infra gitops`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("engine").required(true).args(["flux", "argocd"])))]
pub struct GitopsArgs {
    #[command(flatten)]
    env: EnvArgs,
    /// Print Flux's GitRepository and Kustomization (source.toolkit.fluxcd.io/v1,
    /// kustomize.toolkit.fluxcd.io/v1).
    #[arg(long)]
    flux: bool,
    /// Print Argo CD's Application (argoproj.io/v1alpha1).
    #[arg(long)]
    argocd: bool,
    /// The repository holding the rendered folder (https://, http:// or ssh://; credentials
    /// belong in a Secret, never in the URL). Default: the `origin` remote of the current
    /// directory's repository.
    #[arg(long, value_name = "URL")]
    git_url: Option<String>,
    /// The branch the engine follows.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    branch: String,
    /// The environment's folder in the repository, relative to its root. Default: <out>/<env>.
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    /// The engine's namespace. Default: flux-system (Flux), argocd (Argo CD).
    #[arg(long, value_name = "NAMESPACE", value_parser = dns_label)]
    namespace: Option<DnsLabel>,
    /// How often Flux fetches the repository and reconciles the folder; drift is reverted at
    /// this pace.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    interval: humantime::Duration,
    /// How long Flux's apply and health checks may take before it reports the Kustomization
    /// not ready.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: humantime::Duration,
    /// What must be reconciled first, e.g. the Kustomization (Flux) delivering the Secrets
    /// (repeatable; Argo CD: the Application gets sync wave 1, give theirs 0).
    #[arg(long, value_name = "NAME", value_parser = dns_label)]
    depends_on: Vec<DnsLabel>,
}

fn dns_label(s: &str) -> Result<DnsLabel, String> {
    DnsLabel::try_from(s.to_owned())
}

impl GitopsArgs {
    pub(super) fn run(self, environments: &Path, out: &Path) -> anyhow::Result<ExitCode> {
        let source = self.source(out)?;
        let interval: std::time::Duration = self.interval.into();
        let timeout: std::time::Duration = self.timeout.into();
        for (flag, d) in [("--interval", interval), ("--timeout", timeout)] {
            if d.as_secs() == 0 || d.subsec_nanos() != 0 {
                bail!("{flag} must be a whole number of seconds, at least 1s");
            }
        }
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| DnsLabel::known(if self.flux { "flux-system" } else { "argocd" }));
        let built = self.env.build(environments)?;
        let options = Options {
            source,
            namespace,
            interval,
            timeout,
            depends_on: self.depends_on.clone(),
        };
        let env_name = &self.env.env;
        let (engine, objects) = if self.flux {
            ("--flux", gitops::flux::objects(&built, env_name, &options))
        } else {
            (
                "--argocd",
                gitops::argocd::objects(&built, env_name, &options),
            )
        };
        print!(
            "{}",
            stream(&objects, env_name, engine, &built.provenance.files)?
        );
        Ok(ExitCode::SUCCESS)
    }

    fn source(&self, out: &Path) -> anyhow::Result<Source> {
        let url = match &self.git_url {
            Some(url) => GitUrl::parse(url)?,
            None => GitUrl::parse(&GitUrl::from_remote(&origin_remote()?))?,
        };
        let path = match &self.path {
            Some(path) => RepoPath::parse(path)?,
            None => {
                let default = out.join(&self.env.env);
                RepoPath::parse(&default.to_string_lossy()).context(
                    "the default path <out>/<env> is not inside the repository: pass --path",
                )?
            }
        };
        Ok(Source {
            url,
            branch: Branch::parse(&self.branch)?,
            path,
        })
    }
}

/// The URL of the `origin` remote of the repository in the current directory.
fn origin_remote() -> anyhow::Result<String> {
    let found = Command::new("git")
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|url| !url.is_empty());
    found.context(
        "no --git-url given, and `git remote get-url origin` found no remote here: pass --git-url",
    )
}

/// The objects as one multi-document YAML stream under a header saying how to use it.
fn stream(
    objects: &[EngineObject],
    env: &str,
    engine: &str,
    files: &[String],
) -> anyhow::Result<String> {
    let mut text = format!(
        "# Generated by `infra gitops --env {env} {engine}` from {}.\n\
         # Apply once per cluster: kubectl apply --server-side -f <this file>\n",
        files.join(" + ")
    );
    for object in objects {
        text.push_str("---\n");
        text.push_str(&render::to_yaml(object)?);
    }
    Ok(text)
}
