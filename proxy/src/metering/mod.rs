//! Usage that is always counted: token estimates charged when a request starts, and streams
//! whose upstream is asked for usage when the client did not ask, with the answer's extra
//! parts taken back out before the client sees it.

mod body;
mod request;
mod sse;

pub use body::meter;
pub use request::{Facts, with_usage_requested};
