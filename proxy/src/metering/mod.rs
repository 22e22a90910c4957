//! Usage that is always counted: token estimates charged when a request starts, and streams
//! whose upstream is asked for usage when the client did not ask, with the answer's extra
//! parts taken back out ([`StripUsage`], an event hook) before the client sees it.

mod meter;
mod request;
mod strip;

pub use meter::meter;
pub use request::{Facts, with_usage_requested};
pub use strip::StripUsage;
