//! What the API server serves, from aggregated discovery: one request for the core group
//! (`/api`) and one for every other group (`/apis`), custom resources included.

use std::collections::BTreeMap;

use futures_util::future::try_join;
use kube::api::ApiResource;
use kube::core::discovery::v2::APIGroupDiscoveryList;

use super::{Error, Result};

/// One served resource: its API coordinates and scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
}

/// Every resource the server serves, by group-kind (`Kind` or `Kind.group`), versions in the
/// server's order of preference.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    by_group_kind: BTreeMap<String, Vec<Served>>,
}

impl Discovery {
    /// Reads both discovery documents (concurrently).
    pub async fn read(client: &kube::Client) -> Result<Self> {
        let (core, groups) = try_join(
            client.list_core_api_versions_aggregated(),
            client.list_api_groups_aggregated(),
        )
        .await
        .map_err(Error::kube("read the API server's discovery documents"))?;
        Ok(Self::from_lists([core, groups]))
    }

    fn from_lists(lists: impl IntoIterator<Item = APIGroupDiscoveryList>) -> Self {
        let mut by_group_kind: BTreeMap<String, Vec<Served>> = BTreeMap::new();
        for group in lists.into_iter().flat_map(|l| l.items) {
            let name = group
                .metadata
                .as_ref()
                .and_then(|m| m.name.clone())
                .unwrap_or_default();
            for version in &group.versions {
                let Some(v) = version.version.as_deref() else {
                    continue;
                };
                for r in &version.resources {
                    let (Some(plural), Some(kind)) = (
                        r.resource.as_deref(),
                        r.response_kind.as_ref().and_then(|k| k.kind.as_deref()),
                    ) else {
                        continue;
                    };
                    let resource = ApiResource {
                        group: name.clone(),
                        version: v.to_owned(),
                        api_version: if name.is_empty() {
                            v.to_owned()
                        } else {
                            format!("{name}/{v}")
                        },
                        kind: kind.to_owned(),
                        plural: plural.to_owned(),
                    };
                    let group_kind = group_kind(&name, kind);
                    by_group_kind.entry(group_kind).or_default().push(Served {
                        resource,
                        namespaced: r.scope.as_deref() == Some("Namespaced"),
                    });
                }
            }
        }
        Self { by_group_kind }
    }

    /// The resource of `kind` at exactly `api_version`, if served.
    pub fn exact(&self, api_version: &str, kind: &str) -> Option<&Served> {
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        self.by_group_kind
            .get(&group_kind(group, kind))?
            .iter()
            .find(|s| s.resource.api_version == api_version)
    }

    /// The preferred served version of a group-kind (`Kind` or `Kind.group`), if any.
    pub fn preferred(&self, group_kind: &str) -> Option<&Served> {
        self.by_group_kind.get(group_kind)?.first()
    }
}

fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_found_by_version_and_by_group_kind() {
        let list: APIGroupDiscoveryList = serde_json::from_value(serde_json::json!({
            "items": [{
                "metadata": {"name": "autoscaling"},
                "versions": [
                    {"version": "v2", "resources": [{"resource": "horizontalpodautoscalers",
                        "responseKind": {"group": "autoscaling", "version": "v2", "kind": "HorizontalPodAutoscaler"},
                        "scope": "Namespaced", "verbs": ["get"]}]},
                    {"version": "v1", "resources": [{"resource": "horizontalpodautoscalers",
                        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "HorizontalPodAutoscaler"},
                        "scope": "Namespaced", "verbs": ["get"]}]}
                ]
            }, {
                "versions": [{"version": "v1", "resources": [{"resource": "namespaces",
                    "responseKind": {"group": "", "version": "v1", "kind": "Namespace"},
                    "scope": "Cluster", "verbs": ["get"]}]}]
            }]
        }))
        .unwrap();
        let d = Discovery::from_lists([list]);
        let hpa = d
            .exact("autoscaling/v1", "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(hpa.resource.plural, "horizontalpodautoscalers");
        assert!(hpa.namespaced);
        assert_eq!(
            d.preferred("HorizontalPodAutoscaler.autoscaling")
                .unwrap()
                .resource
                .version,
            "v2"
        );
        assert!(!d.exact("v1", "Namespace").unwrap().namespaced);
        assert!(
            d.exact("autoscaling/v2beta2", "HorizontalPodAutoscaler")
                .is_none()
        );
        assert!(
            d.exact("monitoring.coreos.com/v1", "ServiceMonitor")
                .is_none()
        );
    }
}
