//! Argo CD's `Application` for an environment: the folder as its source, the environment's
//! namespace as its destination on the cluster Argo CD runs in, automated sync with prune and
//! self-heal, server-side apply (the same field ownership `infra` uses), and a sync wave after
//! the Applications it depends on (the one delivering the Secrets).

use std::collections::BTreeMap;

use infra_crds::Application;
use infra_crds::argocd::applications::{
    ApplicationDestination, ApplicationSource, ApplicationSpec, ApplicationSyncPolicy,
    ApplicationSyncPolicyAutomated,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{EngineObject, Options, name};
use crate::objects::labels;
use crate::pipeline::Built;

/// Argo CD's annotation ordering Applications of an app of apps (lower waves sync first).
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// The API server of the cluster Argo CD runs in.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// The `Application` of environment `env_name`.
pub fn objects(built: &Built, env_name: &str, options: &Options) -> Vec<EngineObject> {
    vec![EngineObject::Application(Box::new(application(
        built, env_name, options,
    )))]
}

/// See the module documentation. With dependencies, the sync wave is 1 (theirs: 0).
pub fn application(built: &Built, env_name: &str, options: &Options) -> Application {
    let source = &options.source;
    let annotations = (!options.depends_on.is_empty())
        .then(|| BTreeMap::from([(SYNC_WAVE.to_owned(), "1".to_owned())]));
    Application {
        metadata: ObjectMeta {
            name: Some(name(built, env_name)),
            namespace: Some(options.namespace.as_str().to_owned()),
            labels: Some(labels::recommended(&built.env, env_name)),
            annotations,
            ..Default::default()
        },
        spec: ApplicationSpec {
            project: "default".to_owned(),
            source: Some(ApplicationSource {
                repo_url: source.url.as_str().to_owned(),
                target_revision: Some(source.branch.as_str().to_owned()),
                path: Some(source.path.as_str().to_owned()),
                ..Default::default()
            }),
            destination: ApplicationDestination {
                server: Some(IN_CLUSTER.to_owned()),
                namespace: Some(built.env.namespace.as_str().to_owned()),
                ..Default::default()
            },
            sync_policy: Some(ApplicationSyncPolicy {
                automated: Some(ApplicationSyncPolicyAutomated {
                    prune: Some(true),
                    self_heal: Some(true),
                    ..Default::default()
                }),
                sync_options: Some(vec![
                    "ServerSideApply=true".to_owned(),
                    "PruneLast=true".to_owned(),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}
