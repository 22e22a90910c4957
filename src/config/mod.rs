//! The environment configuration: its types, how its layers merge, and the rules it must obey.

pub mod explain;
mod load;
mod names;
mod origin;
mod quantity;
pub mod schema;
mod types;
pub mod validate;

pub use load::{ConfigError, Diagnostic, ENV_PREFIX, Layers, environments, figment, load};
pub use names::{DnsLabel, DnsSubdomain, Hostname, Port};
pub use origin::Origin;
pub use quantity::Quantity;
pub use types::*;
