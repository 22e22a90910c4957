//! `infra plan --live`: what `infra apply` would change in the cluster, in the offline plan's
//! format, computed as `kubectl diff --server-side` does: a server-side dry run of our apply
//! (our field manager, no force), diffed against the live object, both without what the
//! server alone writes ([`server_side::comparable`]), plus the objects a prune would delete.
//! An environment a GitOps engine manages is compared the engine's way: its folder's objects,
//! without the ApplySet parent that only `apply` writes ([`owner`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DynamicObject;

use super::discovery::Discovery;
use super::owner::{self, Owner};
use super::server_side::{self, comparable};
use super::{Error, Result, applyset, prune};
use crate::objects;
use crate::pipeline::Built;
use crate::plan::{self, Plan};
use crate::render::{self, File};

/// The live plan of `built` (environment `env_name`): one change per object, named as its
/// rendered file (`deployment-ai-api-proxy.yaml`), each diff of YAML without server-owned
/// fields; and the GitOps engines' objects that manage it, if any.
pub async fn plan(
    client: &kube::Client,
    built: &Built,
    env_name: &str,
) -> Result<(Plan, Vec<Owner>)> {
    let env = &built.env;
    let namespace = env.namespace.as_str();
    let discovery = Discovery::read(client).await?;
    let id = objects::applyset::id(env);
    let parent_name = objects::applyset::parent_name(env);
    let recorded = applyset::recorded_kinds(client, namespace, &parent_name, &id).await?;
    let owners: Vec<Owner> = owner::owners(client, &built.objects)
        .await?
        .into_keys()
        .collect();
    let plan = match owners.is_empty() {
        true => super::set::with_parent(built, env_name, &super::set::member_kinds(built)),
        false => built.objects.clone(),
    };
    let namespace_exists = Api::<Namespace>::all(client.clone())
        .get_metadata_opt(namespace)
        .await
        .map_err(Error::kube(format!("read Namespace {namespace}")))?
        .is_some();
    let planned = server_side::check(client, &plan, false, namespace_exists).await?;
    let selector = objects::applyset::member_selector(env, env_name);
    let candidates = prune::candidates(
        client,
        namespace,
        &prune::kinds(&recorded, &discovery),
        &selector,
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
    Ok((
        plan::compare(&live, &desired, plan::Sides::default()),
        owners,
    ))
}

fn yaml(object: &DynamicObject) -> Result<String> {
    Ok(render::to_yaml(&comparable(object, false))?)
}
