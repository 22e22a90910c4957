//! Flux's objects for an environment: a `GitRepository` that fetches only the environment's
//! folder, and a `Kustomization` that applies it with prune on, health checks on every object
//! it applied (`wait`: kstatus on the Deployment, HPA and PDB among them, and always exactly
//! what the folder holds, so a commit that drops the PDB does not leave a check on it behind),
//! and `dependsOn` for what must be reconciled first (the Secrets' Kustomization).

use infra_crds::flux::gitrepositories::{GitRepositoryRef, GitRepositorySpec};
use infra_crds::flux::kustomizations::{
    KustomizationDependsOn, KustomizationSourceRef, KustomizationSourceRefKind, KustomizationSpec,
};
use infra_crds::{FluxKustomization, GitRepository};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{EngineObject, Options, go_duration, name};
use crate::objects::labels;
use crate::pipeline::Built;

/// The `GitRepository` and the `Kustomization` of environment `env_name`.
pub fn objects(built: &Built, env_name: &str, options: &Options) -> Vec<EngineObject> {
    vec![
        EngineObject::GitRepository(Box::new(git_repository(built, env_name, options))),
        EngineObject::Kustomization(Box::new(kustomization(built, env_name, options))),
    ]
}

fn metadata(built: &Built, env_name: &str, options: &Options) -> ObjectMeta {
    ObjectMeta {
        name: Some(name(built, env_name)),
        namespace: Some(options.namespace.as_str().to_owned()),
        labels: Some(labels::recommended(&built.env, env_name)),
        ..Default::default()
    }
}

/// The repository, at the branch, fetching only the environment's folder (`ignore`), so the
/// artifact holds nothing else of the repository.
pub fn git_repository(built: &Built, env_name: &str, options: &Options) -> GitRepository {
    let source = &options.source;
    GitRepository {
        metadata: metadata(built, env_name, options),
        spec: GitRepositorySpec {
            url: source.url.as_str().to_owned(),
            r#ref: Some(GitRepositoryRef {
                branch: Some(source.branch.as_str().to_owned()),
                ..Default::default()
            }),
            interval: go_duration(options.interval),
            ignore: Some(format!("/*\n!/{}/\n", source.path)),
            ..Default::default()
        },
    }
}

/// The apply of the folder: prune on, health checks, dependencies, Flux's own retry pace.
pub fn kustomization(built: &Built, env_name: &str, options: &Options) -> FluxKustomization {
    let depends_on: Vec<KustomizationDependsOn> = options
        .depends_on
        .iter()
        .map(|d| KustomizationDependsOn {
            name: d.as_str().to_owned(),
            ..Default::default()
        })
        .collect();
    FluxKustomization {
        metadata: metadata(built, env_name, options),
        spec: KustomizationSpec {
            source_ref: KustomizationSourceRef {
                kind: KustomizationSourceRefKind::GitRepository,
                name: name(built, env_name),
                api_version: None,
                namespace: None,
            },
            path: Some(options.source.path.dotted()),
            interval: go_duration(options.interval),
            retry_interval: Some(go_duration(options.interval)),
            timeout: Some(go_duration(options.timeout)),
            prune: true,
            wait: Some(true),
            depends_on: (!depends_on.is_empty()).then_some(depends_on),
            // Everything else as Flux defaults it: the folder as it is, no patches, no
            // substitutions, the controller's own service account.
            build_metadata: None,
            common_metadata: None,
            components: None,
            decryption: None,
            deletion_policy: None,
            force: None,
            health_check_exprs: None,
            health_checks: None,
            ignore: None,
            ignore_missing_components: None,
            images: None,
            kube_config: None,
            name_prefix: None,
            name_suffix: None,
            patches: None,
            post_build: None,
            service_account_name: None,
            suspend: None,
            target_namespace: None,
        },
    }
}
