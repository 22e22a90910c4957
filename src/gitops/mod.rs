//! What a GitOps engine needs to reconcile an environment's rendered folder, built like every
//! other object (typed, from the environment, no I/O): Flux's `GitRepository` and
//! `Kustomization` ([`flux`]), or Argo CD's `Application` ([`argocd`]). `infra gitops` prints
//! them; they are never part of `out/<env>/` (the engine's objects are not the environment's).

pub mod argocd;
pub mod flux;
pub mod source;

use std::time::Duration;

use serde::Serialize;

use crate::config::DnsLabel;
use crate::pipeline::Built;

pub use source::{Branch, GitUrl, RepoPath, Source, SourceError};

/// Everything but the environment that the engine's objects say.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the rendered folder is read from.
    pub source: Source,
    /// The engine's namespace (`flux-system`, `argocd`).
    pub namespace: DnsLabel,
    /// How often the engine fetches and reconciles (drift is corrected at this pace).
    pub interval: Duration,
    /// How long an apply and its health checks may take before the engine reports failure.
    pub timeout: Duration,
    /// What must be reconciled first (Flux: Kustomizations in the same namespace, e.g. the one
    /// delivering the Secrets); Argo CD: the Application's sync wave comes after theirs.
    pub depends_on: Vec<DnsLabel>,
}

/// One object of a GitOps engine (each boxed: the generated specs are large and uneven).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EngineObject {
    /// Flux's source: the repository, fetched every interval.
    GitRepository(Box<infra_crds::GitRepository>),
    /// Flux's apply of the folder: prune, health checks, dependencies.
    Kustomization(Box<infra_crds::FluxKustomization>),
    /// Argo CD's application: source, destination, automated sync with prune.
    Application(Box<infra_crds::Application>),
}

/// The name of the engine's objects for environment `env_name`: the environment's instance
/// label (`ai-api-proxy-production`), so one engine namespace holds every environment.
pub fn name(built: &Built, env_name: &str) -> String {
    crate::objects::labels::instance(&built.env, env_name)
}

/// A duration as Kubernetes' Go-style fields read it (`90s`, `5m`, `1h`): whole seconds.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_durations() {
        assert_eq!(go_duration(Duration::from_secs(90)), "90s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m");
        assert_eq!(go_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    }
}
