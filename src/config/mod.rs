//! The environment configuration: its types, how its layers merge, and the rules it must obey.

pub mod explain;
mod load;
mod monitoring;
mod names;
mod origin;
mod quantity;
mod route;
pub mod schema;
mod types;
pub mod validate;

pub use load::{ConfigError, Diagnostic, Layers, environments, figment, load};
pub use monitoring::{AlertThresholds, Metrics};
pub use names::{DnsLabel, DnsSubdomain, Hostname, Port};
pub use origin::ENV_PREFIX;
pub use origin::Origin;
pub use quantity::Quantity;
pub use route::{GatewayRef, HttpRoute, RouteMatch, RoutePath};
pub use types::*;
