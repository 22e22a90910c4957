//! The proxy starts from exactly the configuration `infra render` writes into each
//! environment's ConfigMap (`out/<env>/configmap-*.yaml`, key `proxy.json`).
//!
//! Only what cannot exist here is rewritten: `secrets_dir` points at a temporary directory
//! holding a file for every referenced Secret key, environment-variable keys are set, and the
//! listen address comes from `--listen`.

mod common;

use std::path::PathBuf;

use ai_api_proxy_config::{ClientAuth, KeySource, ProxyConfig};
use common::*;

fn rendered_configmaps() -> Vec<PathBuf> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../out");
    let mut found = Vec::new();
    for env in std::fs::read_dir(&out).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(env.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with("configmap-") && name.ends_with(".yaml") {
                found.push(file.path());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn starts_from_every_rendered_configmap() {
    let files = rendered_configmaps();
    assert!(
        !files.is_empty(),
        "no ../out/*/configmap-*.yaml found: run `infra render` (and commit out/) first; \
         this test must not pass without them"
    );
    let mut started = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let Some(json) = doc["data"]["proxy.json"].as_str() else {
            continue; // another ConfigMap
        };
        let mut config =
            ProxyConfig::from_json(json).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dir = TempDir::new();
        config.secrets_dir = dir.0.join("secrets");
        write_secrets(&config, &config.secrets_dir);
        let mut env: Vec<(String, String)> = Vec::new();
        let client_key_env = match &config.auth {
            Some(ClientAuth::ApiKeys {
                keys: KeySource::Env(var),
            }) => Some(var.clone()),
            _ => None,
        };
        for u in &config.upstreams {
            if let KeySource::Env(var) = &u.api_key {
                env.push((var.clone(), UPSTREAM_KEY.into()));
            }
        }
        if let Some(var) = client_key_env {
            env.push((var, format!("team-a:{}\n", sha256_hex(CLIENT_KEY))));
        }
        // Only secrets_dir changed: the proxy reads this file as it reads the ConfigMap.
        let path = dir.0.join("proxy.json");
        std::fs::write(&path, config.to_json()).unwrap();
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let proxy = Proxy::start_file(&path, dir, &env_refs);

        let ready = http()
            .get(proxy.admin_url(&config.endpoints.ready))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{}: not ready", file.display());
        let models: serde_json::Value = http()
            .get(proxy.url("/v1/models"))
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<_> = models["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        let want: Vec<_> = config.models.iter().map(|m| m.name.clone()).collect();
        assert_eq!(ids, want, "{}", file.display());
        started += 1;
    }
    assert!(started > 0, "no rendered ConfigMap holds a proxy.json");
}
