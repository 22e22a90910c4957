//! The pod's volumes: the proxy ConfigMap, each referenced Secret and each referenced ConfigMap
//! (a CA bundle), with only the keys the proxy reads.

use std::collections::BTreeMap;
use std::path::Path;

use ai_api_proxy_config::{CONFIG_FILE_NAME, ConfigMapRef, DEFAULT_CONFIG_PATH, SecretRef};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, KeyToPath, SecretVolumeSource, Volume, VolumeMount,
};

use crate::config::Environment;

/// Name of the volume holding the proxy configuration.
const CONFIG_VOLUME: &str = "config";
/// Secret files are readable by their owner and the pod's fsGroup, nobody else.
const SECRET_MODE: i32 = 0o440;
/// Longest volume name (a DNS label).
const MAX_NAME: usize = 63;

/// The directory the ConfigMap is mounted at (`/etc/ai-api-proxy`).
pub fn config_dir() -> &'static str {
    Path::new(DEFAULT_CONFIG_PATH)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("/etc/ai-api-proxy")
}

/// Volumes and their read-only mounts, in a fixed order: the config, then one per Secret (by
/// name), then one per ConfigMap (by name).
///
/// Keys of one Secret share one volume: they would otherwise need two mounts at the same
/// `SecretRef::mount_dir`. `KeySource::Env` sources are not Secrets and get nothing here
/// (validation rejects them in environment files).
pub fn volumes_and_mounts(env: &Environment) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = vec![Volume {
        name: CONFIG_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: env.name.as_str().into(),
            items: Some(vec![KeyToPath {
                key: CONFIG_FILE_NAME.into(),
                path: CONFIG_FILE_NAME.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: CONFIG_VOLUME.into(),
        mount_path: config_dir().into(),
        read_only: Some(true),
        ..Default::default()
    }];

    let mut by_secret: BTreeMap<&str, Vec<&SecretRef>> = BTreeMap::new();
    for r in env.proxy.secret_refs() {
        by_secret.entry(r.name.as_str()).or_default().push(r);
    }
    for (index, (secret, refs)) in by_secret.into_iter().enumerate() {
        let name = volume_name(secret, index, &volumes);
        let mount_dir = refs
            .first()
            .map(|r| r.mount_dir(&env.proxy.secrets_dir))
            .unwrap_or_default();
        volumes.push(Volume {
            name: name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                items: Some(
                    refs.iter()
                        .map(|r| KeyToPath {
                            key: r.key.clone(),
                            path: r.key.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                default_mode: Some(SECRET_MODE),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name,
            mount_path: mount_dir.to_string_lossy().into_owned(),
            read_only: Some(true),
            ..Default::default()
        });
    }

    let mut by_config_map: BTreeMap<&str, Vec<&ConfigMapRef>> = BTreeMap::new();
    for r in env.proxy.config_map_refs() {
        by_config_map.entry(r.name.as_str()).or_default().push(r);
    }
    for (index, (config_map, refs)) in by_config_map.into_iter().enumerate() {
        let name = volume_name_with("configmap", config_map, index, &volumes);
        let mount_dir = refs
            .first()
            .map(|r| r.mount_dir(&env.proxy.config_maps_dir))
            .unwrap_or_default();
        volumes.push(Volume {
            name: name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.into(),
                items: Some(
                    refs.iter()
                        .map(|r| KeyToPath {
                            key: r.key.clone(),
                            path: r.key.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name,
            mount_path: mount_dir.to_string_lossy().into_owned(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    (volumes, mounts)
}

/// `secret-<name>` as a DNS label; `secret-<index>` when that is taken or empty.
fn volume_name(secret: &str, index: usize, taken: &[Volume]) -> String {
    volume_name_with("secret", secret, index, taken)
}

/// `<prefix>-<name>` as a DNS label; `<prefix>-<index>` when that is taken or empty.
fn volume_name_with(prefix: &str, object: &str, index: usize, taken: &[Volume]) -> String {
    let cleaned: String = format!("{prefix}-{object}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect();
    let name = cleaned.trim_end_matches('-').to_owned();
    if taken.iter().any(|v| v.name == name) {
        format!("{prefix}-{index}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use ai_api_proxy_config::{ClientAuth, KeySource};

    use super::*;
    use crate::objects::tests::load;

    fn secret(name: &str, key: &str) -> KeySource {
        KeySource::Secret(SecretRef {
            name: name.into(),
            key: key.into(),
        })
    }

    #[test]
    fn each_secret_is_mounted_read_only_with_only_its_keys() {
        let env = load("production");
        let (volumes, mounts) = volumes_and_mounts(&env);
        let refs = env.proxy.secret_refs();
        assert_eq!(refs.len(), 3, "client keys, upstream key, Redis password");
        for r in refs {
            let volume = volumes.iter().find(|v| {
                v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(&r.name)
            });
            let Some(volume) = volume else {
                panic!("no volume for {}", r.name)
            };
            let items = volume.secret.as_ref().and_then(|s| s.items.clone());
            assert_eq!(
                items
                    .unwrap_or_default()
                    .iter()
                    .map(|i| i.key.as_str())
                    .collect::<Vec<_>>(),
                [r.key.as_str()]
            );
            let mount = mounts.iter().find(|m| m.name == volume.name);
            assert_eq!(
                mount.map(|m| m.mount_path.clone()),
                Some(
                    r.mount_dir(&env.proxy.secrets_dir)
                        .to_string_lossy()
                        .into_owned()
                )
            );
        }
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
    }

    #[test]
    fn config_is_mounted_where_the_proxy_looks() {
        let (volumes, mounts) = volumes_and_mounts(&load("development"));
        assert_eq!(config_dir(), "/etc/ai-api-proxy");
        assert_eq!(
            Path::new(config_dir()).join(CONFIG_FILE_NAME),
            Path::new(DEFAULT_CONFIG_PATH)
        );
        assert_eq!(
            volumes[0].config_map.as_ref().map(|c| c.name.as_str()),
            Some("ai-api-proxy")
        );
        assert_eq!(mounts[0].mount_path, "/etc/ai-api-proxy");
        assert!(mounts[0].sub_path.is_none());
    }

    #[test]
    fn keys_of_one_secret_share_a_volume_and_env_sources_are_ignored() {
        let mut env = load("production");
        env.proxy.auth = Some(ClientAuth::ApiKeys {
            keys: secret("shared.secret", "clients"),
        });
        env.proxy.upstreams[0].api_key = secret("shared.secret", "upstream");
        let mut second = env.proxy.upstreams[0].clone();
        second.name = "local".into();
        second.api_key = KeySource::Env("LOCAL_KEY".into());
        env.proxy.upstreams.push(second);
        env.proxy.shared_limits = None;
        let (volumes, mounts) = volumes_and_mounts(&env);
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1].name, "secret-shared-secret");
        let items = volumes[1]
            .secret
            .as_ref()
            .and_then(|s| s.items.clone())
            .unwrap_or_default();
        assert_eq!(
            items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
            ["clients", "upstream"]
        );
        assert_eq!(mounts.len(), 2);
    }

    #[test]
    fn a_ca_bundle_from_a_config_map_is_mounted_where_the_proxy_reads_it() {
        use ai_api_proxy_config::{ClientCertificate, FileSource, UpstreamTls};
        let mut env = load("production");
        let ca = ConfigMapRef {
            name: "internal-ca".into(),
            key: "ca.crt".into(),
        };
        env.proxy.upstreams[0].tls = Some(UpstreamTls {
            ca: Some(FileSource::ConfigMap(ca.clone())),
            client_certificate: Some(ClientCertificate {
                certificate: SecretRef {
                    name: "upstream-mtls".into(),
                    key: "tls.crt".into(),
                },
                key: SecretRef {
                    name: "upstream-mtls".into(),
                    key: "tls.key".into(),
                },
            }),
            ..UpstreamTls::default()
        });
        let (volumes, mounts) = volumes_and_mounts(&env);
        let volume = volumes.iter().find(|v| v.name == "configmap-internal-ca");
        let source = volume
            .and_then(|v| v.config_map.clone())
            .unwrap_or_default();
        assert_eq!(source.name, "internal-ca");
        assert_eq!(
            source.items.unwrap_or_default()[0].path,
            "ca.crt",
            "only the key the proxy reads"
        );
        let mount = mounts.iter().find(|m| m.name == "configmap-internal-ca");
        assert_eq!(
            mount.map(|m| Path::new(&m.mount_path).join("ca.crt")),
            Some(ca.path(&env.proxy.config_maps_dir))
        );
        let mtls = volumes.iter().find(|v| v.name == "secret-upstream-mtls");
        let items = mtls
            .and_then(|v| v.secret.clone())
            .and_then(|s| s.items)
            .unwrap_or_default();
        assert_eq!(
            items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
            ["tls.crt", "tls.key"]
        );
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
    }

    #[test]
    fn volume_names_are_dns_labels_and_unique() {
        let long = "a".repeat(250);
        let name = volume_name(&long, 1, &[]);
        assert!(ai_api_proxy_config::is_dns_label(&name), "{name}");
        let taken = [Volume {
            name: name.clone(),
            ..Default::default()
        }];
        assert_eq!(volume_name(&long, 2, &taken), "secret-2");
    }
}
