//! The Gateway API route: an HTTPRoute attached to a Gateway the platform team runs (which owns
//! the listeners and TLS), the successor of the Ingress.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::names::{DnsLabel, DnsSubdomain, Hostname};

/// An HTTPRoute (`gateway.networking.k8s.io/v1`) to the Service, attached to an existing Gateway.
/// Its timeouts are derived from the proxy's, so the route never cuts a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpRoute {
    /// Render an HTTPRoute.
    pub enabled: bool,
    /// The Gateway it attaches to (its parent reference).
    pub gateway: Option<GatewayRef>,
    /// Host names it serves (a leading `*.` is allowed); must intersect the listener's.
    pub hostnames: Vec<Hostname>,
    /// Path matches routed to the Service.
    pub paths: Vec<RoutePath>,
    /// Namespace of the Gateway's data-plane pods, which the NetworkPolicy admits. Default: the
    /// Gateway's namespace (Istio, kgateway, NGINX Gateway Fabric put them there; Envoy Gateway
    /// runs them in its own namespace, `envoy-gateway-system` by default).
    pub dataplane_namespace: Option<DnsLabel>,
}

/// A reference to a Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayRef {
    /// The Gateway's name.
    pub name: DnsSubdomain,
    /// The Gateway's namespace (it must allow routes from ours: `allowedRoutes.namespaces`).
    pub namespace: DnsLabel,
    /// One listener of the Gateway, by name (e.g. `https`); all listeners when absent.
    #[serde(default)]
    pub section_name: Option<DnsSubdomain>,
}

/// One path match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePath {
    /// Absolute path, e.g. `/` or `/v1`.
    pub path: String,
    /// How the path matches.
    #[serde(default)]
    pub path_type: RouteMatch,
}

/// Gateway API path match types (the portable ones; regular expressions are implementation-specific).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum RouteMatch {
    /// Element-wise prefix match (`/v1` matches `/v1` and `/v1/models`, not `/v1x`).
    #[default]
    PathPrefix,
    /// Exact match.
    Exact,
}

impl RouteMatch {
    /// The Gateway API value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PathPrefix => "PathPrefix",
            Self::Exact => "Exact",
        }
    }
}

impl HttpRoute {
    /// The namespace the Gateway's traffic comes from.
    pub fn traffic_namespace(&self) -> Option<&DnsLabel> {
        self.dataplane_namespace
            .as_ref()
            .or(self.gateway.as_ref().map(|g| &g.namespace))
    }
}

impl Default for HttpRoute {
    fn default() -> Self {
        Self {
            enabled: false,
            gateway: None,
            hostnames: Vec::new(),
            paths: vec![RoutePath {
                path: "/".into(),
                path_type: RouteMatch::PathPrefix,
            }],
            dataplane_namespace: None,
        }
    }
}
