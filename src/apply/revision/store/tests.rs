//! The format's round trip, its refusals, and the committed v1 fixture.

use super::*;
use crate::apply::revision::provenance::{FileHash, Git};
use crate::objects::{self, tests::load};
use crate::pipeline::Built;

/// The fixture: a revision of `development` in namespace `revision-fixture`, as v1 writes it.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/revision-v1.yaml"
);

/// A revision of `env_name` in `namespace`, as v1 writes it (number 2, superseded).
pub(crate) fn revision(env_name: &str, namespace: &str) -> Revision {
    let mut env = load(env_name);
    env.namespace = serde_json::from_value(serde_json::json!(namespace)).unwrap();
    let objects = objects::objects(&env, env_name);
    let built = Built {
        env,
        objects,
        provenance: crate::render::Provenance {
            env: env_name.into(),
            files: vec![],
            overrides: vec![],
        },
    };
    let mut target = Target::of_built(&built, env_name);
    let kinds = target.member_kinds();
    target.parent = applyset::recording(&target.parent, &kinds);
    Revision {
        header: Header {
            number: 2,
            time: "2026-12-03T08:00:00Z".into(),
            who: "kubernetes-admin".into(),
            environment: env_name.into(),
            namespace: namespace.into(),
            summary: "1 applied (Deployment ai-api-proxy), 8 unchanged".into(),
            rollback_to: None,
            provenance: Provenance {
                files: vec![FileHash {
                    path: format!("environments/{env_name}.toml"),
                    sha256: "0".repeat(64),
                }],
                variables: vec!["INFRA_REPLICAS".into()],
                sets: vec!["image.tag".into()],
                git: Some(Git {
                    commit: "ba5d045".into(),
                    dirty: false,
                }),
            },
            selector: target.selector.clone(),
            secrets: target.secrets.clone(),
            config_maps: target.config_maps.clone(),
        },
        status: Status::Superseded,
        target,
    }
}

#[test]
fn a_revision_reads_back_as_written() {
    let written = revision("production", "ai-services");
    let cm = encode(&written);
    assert_eq!(
        cm.metadata.name.as_deref(),
        Some("applyset-ai-api-proxy-rev-2")
    );
    let labels = cm.metadata.labels.clone().unwrap();
    assert_eq!(labels[OF], "applyset-ai-api-proxy");
    assert_eq!(labels[NUMBER], "2");
    assert_eq!(labels[STATUS], "superseded");
    // Neither a member (prune would delete it) nor a parent.
    assert!(!labels.contains_key(applyset::PART_OF));
    assert!(!labels.contains_key(applyset::ID));
    assert_eq!(decode(&cm).unwrap(), written);
    // Compressed: far below a ConfigMap's 1 MiB.
    let size = cm.binary_data.as_ref().unwrap()[OBJECTS_KEY].0.len();
    assert!(size < 64 << 10, "{size}");
}

#[test]
fn another_format_or_a_broken_part_is_refused_by_name() {
    let mut cm = encode(&revision("development", "ns"));
    let mut later = cm.clone();
    later
        .data
        .as_mut()
        .unwrap()
        .insert(FORMAT_KEY.into(), "infra.revision/v9".into());
    assert_eq!(
        decode(&later).unwrap_err().to_string(),
        "ConfigMap applyset-ai-api-proxy-rev-2 is a revision of format `infra.revision/v9`, \
         which this infra cannot read (it reads `infra.revision/v1`): use a newer infra"
    );
    cm.binary_data
        .as_mut()
        .unwrap()
        .insert(OBJECTS_KEY.into(), ByteString(b"not gzip".to_vec()));
    let err = decode(&cm).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "ConfigMap applyset-ai-api-proxy-rev-2 is not a readable revision: binaryData.objects.json.gz:"
        ),
        "{err}"
    );
}

#[test]
fn a_gzip_bomb_is_refused_without_reading_it_all() {
    let mut cm = encode(&revision("development", "ns"));
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    for _ in 0..(MAX_OBJECTS_BYTES / (1 << 20) + 1) {
        gz.write_all(&[b' '; 1 << 20]).unwrap();
    }
    cm.binary_data
        .as_mut()
        .unwrap()
        .insert(OBJECTS_KEY.into(), ByteString(gz.finish().unwrap()));
    let err = decode(&cm).unwrap_err().to_string();
    assert!(err.contains("holds more than"), "{err}");
}

/// The committed v1 fixture stays readable by every later infra. `WRITE_REVISION_FIXTURE=1`
/// rewrites it (only ever while v1 is the format written).
#[test]
fn the_v1_fixture_stays_readable() {
    let expected = revision("development", "revision-fixture");
    if std::env::var_os("WRITE_REVISION_FIXTURE").is_some() {
        let mut value = serde_json::to_value(encode(&expected)).unwrap();
        value["apiVersion"] = "v1".into();
        value["kind"] = "ConfigMap".into();
        let yaml = serde_yaml::to_string(&value).unwrap();
        std::fs::write(
            FIXTURE,
            format!("# A revision as infra.revision/v1 writes it (see src/apply/revision/store.rs).\n{yaml}"),
        )
        .unwrap();
    }
    let stored: ConfigMap =
        serde_yaml::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let read = decode(&stored).unwrap();
    // Compared with the values the fixture was written with, not with today's environment.
    assert_eq!(read.header.number, 2);
    assert_eq!(read.header.time, "2026-12-03T08:00:00Z");
    assert_eq!(read.header.who, "kubernetes-admin");
    assert_eq!(read.header.environment, "development");
    assert_eq!(read.header.provenance, expected.header.provenance);
    assert!(read.header.selector.contains_key(applyset::PART_OF));
    assert_eq!(read.status, Status::Superseded);
    assert_eq!(read.target.namespace, "revision-fixture");
    let kinds: Vec<&str> = read.target.objects.iter().map(Object::kind).collect();
    assert!(kinds.contains(&"Deployment"), "{kinds:?}");
    assert_eq!(read.target.parent_name(), "applyset-ai-api-proxy");
}
