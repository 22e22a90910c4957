//! Usage that is always counted: token estimates charged when a request starts, and streams
//! whose upstream is asked for usage when the client did not ask, with the answer's extra
//! parts taken back out before the client sees them.

mod request;
mod sse;

pub use request::{Facts, with_usage_requested};
pub use sse::StripUsage;
