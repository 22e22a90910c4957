//! `infra plan --live`: what `infra apply` would change in the cluster, in the offline plan's
//! format, computed as `kubectl diff --server-side` does: a server-side dry run of our apply
//! (our field manager, no force), diffed against the live object, both without what the
//! server alone writes ([`server_side::comparable`]), plus the objects a prune would delete.
//! Also which revision is live, and whether the cluster drifted from it: the same comparison
//! against the revision's objects (forced, so a field someone else took shows as drift).
//! An environment a GitOps engine manages is compared the engine's way: its folder's objects,
//! without the ApplySet parent that only `apply` writes ([`owner`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DynamicObject;

use super::discovery::Discovery;
use super::owner::{self, Owner};
use super::prune::Candidate;
use super::revision::{History, Status};
use super::server_side::{self, Planned, comparable};
use super::target::{Setup, Target};
use super::{Error, Result, prune};
use crate::objects::applyset::ID;
use crate::plan::{self, Plan};
use crate::render::{self, File};

/// The live plan of `target`: one change per object, named as its
/// rendered file (`deployment-ai-api-proxy.yaml`), each diff of YAML without server-owned fields.
pub async fn plan(client: &kube::Client, target: &Target) -> Result<Live> {
    let namespace = target.namespace.as_str();
    let setup = Setup::read(client, Discovery::read(client).await?, target).await?;
    let owners: Vec<Owner> = owner::owners(client, &target.objects)
        .await?
        .into_keys()
        .collect();
    let plan = match owners.is_empty() {
        true => target.with_parent(&setup.members),
        false => target.objects.clone(),
    };
    let namespace_exists = Api::<Namespace>::all(client.clone())
        .get_metadata_opt(namespace)
        .await
        .map_err(Error::kube(format!("read Namespace {namespace}")))?
        .is_some();
    let planned = server_side::check(client, &plan, false, namespace_exists).await?;
    let candidates = prune::candidates(
        client,
        namespace,
        &setup.prune_kinds,
        &target.selector,
        &plan,
    )
    .await?;

    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut desired: Vec<File> = Vec::with_capacity(planned.len());
    for p in &planned {
        let name = render::file_name(p.object);
        if let Some(object) = &p.live {
            live.insert(name.clone(), yaml(object)?);
        }
        let content = match &p.dry_run {
            Some(after) => yaml(after)?,
            None => render::to_yaml(p.object)?,
        };
        desired.push(File { name, content });
    }
    for c in &candidates {
        let name = format!("{}-{}.yaml", c.resource.kind.to_ascii_lowercase(), c.name());
        live.insert(name.clone(), yaml(&c.object)?);
    }
    let plan = plan::compare(&live, &desired, plan::Sides::default());

    let history = History::read(client, namespace, target.parent_name()).await?;
    let revision = match history.current() {
        None => None,
        Some(current) => {
            let drift = if current.target.objects == target.objects {
                drift(&planned, &candidates)?
            } else {
                let theirs = current.target.with_parent(&setup.members);
                let planned = server_side::check(client, &theirs, true, namespace_exists).await?;
                let candidates = prune::candidates(
                    client,
                    namespace,
                    &setup.prune_kinds,
                    &current.target.selector,
                    &theirs,
                )
                .await?;
                drift(&planned, &candidates)?
            };
            Some(LiveRevision {
                number: current.header.number,
                status: current.status,
                time: current.header.time.clone(),
                who: current.header.who.clone(),
                drift,
            })
        }
    };
    Ok(Live {
        plan,
        revision,
        owners,
    })
}

/// The live plan, and the revision the cluster was last given.
#[derive(Clone, Debug)]
pub struct Live {
    /// What applying the environment would change.
    pub plan: Plan,
    /// The newest revision, `None` before the first recorded apply.
    pub revision: Option<LiveRevision>,
    /// The GitOps engines' objects that manage the environment, if any.
    pub owners: Vec<Owner>,
}

/// The newest revision and how the cluster differs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRevision {
    /// Its number.
    pub number: u32,
    /// Its status.
    pub status: Status,
    /// When it was applied.
    pub time: String,
    /// Who applied it.
    pub who: String,
    /// Each object whose live content differs from the revision's, e.g. `Deployment
    /// ai-api-proxy differs`, `missing` or `extra`; empty when the cluster matches it.
    pub drift: Vec<String>,
}

impl LiveRevision {
    /// `Live revision: 3 (deployed 2026-… by alice); the cluster matches it.`
    pub fn line(&self) -> String {
        let head = format!(
            "Live revision: {} ({} {} by {})",
            self.number, self.status, self.time, self.who
        );
        if self.drift.is_empty() {
            format!("{head}; the cluster matches it.")
        } else {
            format!(
                "{head}; the cluster has drifted from it: {}.",
                self.drift.join(", ")
            )
        }
    }
}

/// What differs between the live objects and the dry run of a revision's objects (the
/// ApplySet parent aside: it records kinds, not content).
fn drift(planned: &[Planned<'_>], candidates: &[Candidate]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for p in planned {
        if p.object
            .metadata()
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ID))
        {
            continue;
        }
        let shown = format!("{} {}", p.object.kind(), p.object.name());
        match (&p.live, &p.dry_run) {
            (None, _) => found.push(format!("{shown} missing")),
            (Some(live), Some(after)) if yaml(live)? != yaml(after)? => {
                found.push(format!("{shown} differs"));
            }
            _ => {}
        }
    }
    for c in candidates {
        found.push(format!("{} {} extra", c.resource.kind, c.name()));
    }
    Ok(found)
}

fn yaml(object: &DynamicObject) -> Result<String> {
    Ok(render::to_yaml(&comparable(object, false))?)
}
