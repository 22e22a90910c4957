//! The answer as the client receives it once metered: the `x-ratelimit-*` headers added, a
//! stream's added usage taken back out ([`StripUsage`]), and the request's token estimate
//! settled with its real usage when the answer ends (an answer cut short keeps its estimate).

use http::Response;
use http::header::CONTENT_LENGTH;

use super::StripUsage;
use crate::answer::Answer;
use crate::limits::Permit;

/// Meters `response`: `usage_added` says the upstream was asked for usage the client did not
/// ask for, so a successful stream gets it taken back out.
pub fn meter(response: &mut Response<Answer>, permit: Permit, usage_added: bool) {
    for (name, value) in permit.headers.pairs() {
        response.headers_mut().insert(name, value);
    }
    if usage_added && response.status().is_success() && response.body_mut().add_hook(StripUsage) {
        response.headers_mut().remove(CONTENT_LENGTH);
    }
    response.body_mut().meter(permit);
}
