//! What one apply writes, and what the cluster already records about it: the [`Target`] (an
//! environment's built objects, or a revision's recorded ones) and the [`Setup`] that
//! `apply`, `rollback` and `plan --live` all start from, so they cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};

use ai_api_proxy_config::{ConfigMapRef, SecretRef};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ApiResource;

use super::discovery::Discovery;
use super::{Result, applyset, prune};
use crate::objects::{self, Object};
use crate::pipeline::Built;

/// The objects of one apply and the ApplySet they belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The environment's name (`--env`).
    pub env_name: String,
    /// The namespace of the set (and of its revisions and lock).
    pub namespace: String,
    /// What to apply (the Namespace and the members), without the ApplySet parent.
    pub objects: Vec<Object>,
    /// The ApplySet parent (each step sets the group-kinds it records).
    pub parent: ConfigMap,
    /// The labels every member carries: what prune selects by.
    pub selector: BTreeMap<String, String>,
    /// The Secret keys the proxy reads (preflight checks they exist).
    pub secrets: Vec<SecretRef>,
    /// The ConfigMap keys the proxy reads (CA bundles; preflight checks they exist).
    pub config_maps: Vec<ConfigMapRef>,
}

impl Target {
    /// The target of an environment as built now.
    pub fn of_built(built: &Built, env_name: &str) -> Self {
        let env = &built.env;
        Self {
            env_name: env_name.to_owned(),
            namespace: env.namespace.as_str().to_owned(),
            objects: built.objects.clone(),
            parent: objects::applyset::parent(env, env_name, &BTreeSet::new()),
            selector: objects::applyset::member_selector(env, env_name),
            secrets: env.proxy.secret_refs().into_iter().cloned().collect(),
            config_maps: env.proxy.config_map_refs().into_iter().cloned().collect(),
        }
    }

    /// The parent's name, e.g. `applyset-ai-api-proxy`.
    pub fn parent_name(&self) -> &str {
        self.parent.metadata.name.as_deref().unwrap_or_default()
    }

    /// The set's id (the parent's [`objects::applyset::ID`] label).
    pub fn id(&self) -> &str {
        self.parent
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(objects::applyset::ID))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The group-kinds of the set's members: every object but the Namespace.
    pub fn member_kinds(&self) -> BTreeSet<String> {
        self.objects
            .iter()
            .filter(|o| o.kind_of().prunable())
            .map(|o| o.kind_of().meta().group_kind())
            .collect()
    }

    /// The parent recording `group_kinds`.
    pub fn parent_recording(&self, group_kinds: &BTreeSet<String>) -> Object {
        Object::ConfigMap(objects::applyset::recording(&self.parent, group_kinds))
    }

    /// The objects plus the parent recording `group_kinds`.
    pub fn with_parent(&self, group_kinds: &BTreeSet<String>) -> Vec<Object> {
        let mut plan = self.objects.clone();
        plan.push(self.parent_recording(group_kinds));
        plan
    }
}

/// What the cluster answers before anything is planned: what it serves, and what our parent
/// records (refusing a parent that is not ours).
#[derive(Clone, Debug)]
pub struct Setup {
    /// What the server serves.
    pub discovery: Discovery,
    /// The group-kinds the live parent records (empty before the first apply).
    pub recorded: BTreeSet<String>,
    /// The group-kinds of what we apply now.
    pub members: BTreeSet<String>,
    /// The resources prune lists: ours, and every other kind the parent records.
    pub prune_kinds: Vec<ApiResource>,
}

impl Setup {
    /// Reads the live parent of `target`'s set, given what the server serves.
    pub async fn read(
        client: &kube::Client,
        discovery: Discovery,
        target: &Target,
    ) -> Result<Self> {
        let recorded =
            applyset::recorded_kinds(client, &target.namespace, target.parent_name(), target.id())
                .await?;
        let prune_kinds = prune::kinds(&recorded, &discovery);
        Ok(Self {
            discovery,
            recorded,
            members: target.member_kinds(),
            prune_kinds,
        })
    }

    /// What the parent records while applying: what the cluster may hold (its old record)
    /// and what we apply, until prune has removed what left the plan.
    pub fn superset(&self) -> BTreeSet<String> {
        self.members.union(&self.recorded).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn a_built_target_names_its_set_and_leaves_the_namespace_out_of_the_members() {
        let env = load("production");
        let objects = objects::objects(&env, "production");
        let built = Built {
            env: env.clone(),
            objects,
            provenance: crate::render::Provenance {
                env: "production".into(),
                files: vec![],
                overrides: vec![],
            },
        };
        let target = Target::of_built(&built, "production");
        assert_eq!(target.parent_name(), "applyset-ai-api-proxy");
        assert_eq!(target.id(), objects::applyset::id(&env));
        assert!(!target.member_kinds().contains("Namespace"));
        assert!(target.member_kinds().contains("Deployment.apps"));
        let plan = target.with_parent(&target.member_kinds());
        assert_eq!(plan.len(), built.objects.len() + 1);
        assert!(!target.secrets.is_empty());
    }
}
