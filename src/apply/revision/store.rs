//! The store format `infra.revision/v1`, pure encode and decode (README: "Revisions").
//!
//! One ConfigMap per revision, `<parent>-rev-<N>` (e.g. `applyset-ai-api-proxy-rev-3`), in
//! the set's namespace beside the ApplySet parent:
//! - labels: the parent's recommended labels (never `applyset.kubernetes.io/part-of`, so prune
//!   never sees it), [`OF`] (the parent's name), [`NUMBER`] and [`STATUS`] (the one place the
//!   status is kept, so changing it is one label patch);
//! - `data.format`: [`FORMAT`]; a reader refuses a format it does not know, by name;
//! - `data.revision`: JSON [`Header`]: number, time, who, environment, namespace, summary,
//!   what it rolled back to, provenance, the member selector and the Secret references;
//! - `binaryData."objects.json.gz"`: gzip of the JSON array of every object applied, the
//!   ApplySet parent last.
//!
//! Nothing secret is stored: `infra` never builds a Secret, and provenance holds names only.
//! A later format gets a new `format` value; this reader keeps reading v1 (the fixture
//! `tests/fixtures/revision-v1.yaml` proves it).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use ai_api_proxy_config::{ConfigMapRef, SecretRef};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::{Provenance, Status};
use crate::apply::target::Target;
use crate::objects::{Object, applyset};

/// The value of `data.format` this version writes.
pub const FORMAT: &str = "infra.revision/v1";
/// Label: the name of the ApplySet parent the revision belongs to.
pub const OF: &str = "infra.revision/of";
/// Label: the revision's number.
pub const NUMBER: &str = "infra.revision/number";
/// Label: the revision's [`Status`].
pub const STATUS: &str = "infra.revision/status";

const FORMAT_KEY: &str = "format";
const HEADER_KEY: &str = "revision";
const OBJECTS_KEY: &str = "objects.json.gz";
/// A revision's objects are a few dozen kilobytes; more than this decompressed is not ours.
const MAX_OBJECTS_BYTES: u64 = 16 << 20;

/// Why a stored revision could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A later `infra` wrote it, or something else did.
    #[error(
        "ConfigMap {name} is a revision of format `{format}`, which this infra cannot read \
         (it reads `{FORMAT}`): use a newer infra"
    )]
    UnknownFormat {
        /// The ConfigMap's name.
        name: String,
        /// Its `data.format`.
        format: String,
    },
    /// A part is missing or malformed.
    #[error("ConfigMap {name} is not a readable revision: {what}")]
    Invalid {
        /// The ConfigMap's name.
        name: String,
        /// What is wrong.
        what: String,
    },
}

/// The revision's description (`data.revision`, JSON). Fields are only ever added, with
/// defaults, within one format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// 1, 2, 3…: one more than the newest revision when it was written.
    pub number: u32,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
    /// Who applied it: the user the API server authenticated (SelfSubjectReview).
    pub who: String,
    /// The environment's name (`--env`).
    pub environment: String,
    /// The namespace of the set.
    pub namespace: String,
    /// One line: what changed, or why it failed.
    pub summary: String,
    /// The revision whose objects this one applied again (`infra rollback`, `--atomic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u32>,
    /// Where the environment came from.
    pub provenance: Provenance,
    /// The labels every member carries (what prune selects by).
    pub selector: BTreeMap<String, String>,
    /// The Secret keys the proxy reads (names and keys only).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// The ConfigMap keys the proxy reads (names and keys only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMapRef>,
}

/// One revision: its header, status, and the target it applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// Its description.
    pub header: Header,
    /// Where it stands.
    pub status: Status,
    /// The objects it applied (and their set), ready to apply again.
    pub target: Target,
}

/// The ConfigMap name of revision `number` of the set whose parent is `parent`.
pub fn name(parent: &str, number: u32) -> String {
    format!("{parent}-rev-{number}")
}

/// The labels of a revision of `target` with `number` and `status`.
fn labels(target: &Target, number: u32, status: Status) -> BTreeMap<String, String> {
    let mut labels = target.parent.metadata.labels.clone().unwrap_or_default();
    labels.remove(applyset::ID);
    labels.insert(OF.into(), target.parent_name().into());
    labels.insert(NUMBER.into(), number.to_string());
    labels.insert(STATUS.into(), status.as_str().into());
    labels
}

/// The ConfigMap holding `revision`.
pub fn encode(revision: &Revision) -> ConfigMap {
    let target = &revision.target;
    let mut objects = target.objects.clone();
    objects.push(Object::ConfigMap(target.parent.clone()));
    let json = serde_json::to_vec(&objects).unwrap_or_default();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let compressed = gz
        .write_all(&json)
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name(target.parent_name(), revision.header.number)),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels(target, revision.header.number, revision.status)),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (FORMAT_KEY.into(), FORMAT.into()),
            (
                HEADER_KEY.into(),
                serde_json::to_string_pretty(&revision.header).unwrap_or_default(),
            ),
        ])),
        binary_data: Some(BTreeMap::from([(
            OBJECTS_KEY.into(),
            ByteString(compressed),
        )])),
        ..Default::default()
    }
}

/// The revision `config_map` holds.
pub fn decode(config_map: &ConfigMap) -> Result<Revision, FormatError> {
    let name = config_map.metadata.name.clone().unwrap_or_default();
    let invalid = |what: String| FormatError::Invalid {
        name: name.clone(),
        what,
    };
    let data = config_map.data.as_ref();
    let format = data
        .and_then(|d| d.get(FORMAT_KEY))
        .ok_or_else(|| invalid(format!("no data.{FORMAT_KEY}")))?;
    if format != FORMAT {
        return Err(FormatError::UnknownFormat {
            name,
            format: format.clone(),
        });
    }
    let header: Header = serde_json::from_str(
        data.and_then(|d| d.get(HEADER_KEY))
            .ok_or_else(|| invalid(format!("no data.{HEADER_KEY}")))?,
    )
    .map_err(|e| invalid(format!("data.{HEADER_KEY}: {e}")))?;
    let status_label = config_map
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(STATUS))
        .map(String::as_str)
        .unwrap_or_default();
    let status = Status::parse(status_label)
        .ok_or_else(|| invalid(format!("label {STATUS} is `{status_label}`")))?;
    let compressed = config_map
        .binary_data
        .as_ref()
        .and_then(|b| b.get(OBJECTS_KEY))
        .ok_or_else(|| invalid(format!("no binaryData.{OBJECTS_KEY}")))?;
    let mut json = Vec::new();
    GzDecoder::new(compressed.0.as_slice())
        .take(MAX_OBJECTS_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| invalid(format!("binaryData.{OBJECTS_KEY}: {e}")))?;
    if json.len() as u64 > MAX_OBJECTS_BYTES {
        return Err(invalid(format!(
            "binaryData.{OBJECTS_KEY} holds more than {MAX_OBJECTS_BYTES} bytes"
        )));
    }
    let values: Vec<serde_json::Value> = serde_json::from_slice(&json)
        .map_err(|e| invalid(format!("binaryData.{OBJECTS_KEY}: {e}")))?;
    let mut objects = values
        .into_iter()
        .map(Object::from_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("binaryData.{OBJECTS_KEY}: {e}")))?;
    let is_parent = |o: &Object| {
        matches!(o, Object::ConfigMap(cm)
            if cm.metadata.labels.as_ref().is_some_and(|l| l.contains_key(applyset::ID)))
    };
    let parent = match objects
        .iter()
        .position(is_parent)
        .map(|i| objects.remove(i))
    {
        Some(Object::ConfigMap(parent)) => parent,
        _ => return Err(invalid("no ApplySet parent among its objects".into())),
    };
    let target = Target {
        env_name: header.environment.clone(),
        namespace: header.namespace.clone(),
        objects,
        parent,
        selector: header.selector.clone(),
        secrets: header.secrets.clone(),
        config_maps: header.config_maps.clone(),
    };
    Ok(Revision {
        header,
        status,
        target,
    })
}

#[cfg(test)]
pub(crate) mod tests;
