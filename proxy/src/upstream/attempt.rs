//! One attempt at one upstream: send the request, then wait for the answer's head and, for a
//! success, its first body byte, all before a deadline. Until that first byte nothing has
//! reached the client, so whatever happens here can still be retried or answered with a
//! status; the outcome says what happened and nothing else (the forwarder decides).

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::{SendError, Upstream};
use crate::error_answer::ProxyError;

/// What one attempt came to.
pub enum Outcome {
    /// A success status and its first chunk (`None`: an empty body): ready to relay.
    Answer(Response<Incoming>, Option<Bytes>),
    /// Any other status, body unread.
    Status(Response<Incoming>),
    /// No connection: the upstream saw nothing.
    Connect,
    /// Connected, but the exchange broke before the first byte.
    Broken,
    /// No first byte before the deadline.
    Timeout,
    /// The connection was refused for a reason a retry only repeats (TLS, the egress proxy):
    /// the answer to give if no upstream works.
    Refused(ProxyError),
}

/// Sends `request` to `up` and waits until `deadline` for the answer's first byte.
pub async fn attempt(up: &Upstream, request: Request<Full<Bytes>>, deadline: Instant) -> Outcome {
    let exchange = async {
        let response = up.send(request).await?;
        if !response.status().is_success() {
            return Ok(Outcome::Status(response));
        }
        let (parts, mut body) = response.into_parts();
        let first = loop {
            if body.is_end_stream() {
                break None;
            }
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => break Some(data),
                    // Empty chunks and trailers: not a first byte.
                    Ok(_) | Err(_) => {}
                },
                Some(Err(_)) => return Err(SendError::Broken),
                None => break None,
            }
        };
        Ok(Outcome::Answer(Response::from_parts(parts, body), first))
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(SendError::Connect)) => Outcome::Connect,
        Ok(Err(SendError::Broken)) => Outcome::Broken,
        Ok(Err(SendError::Unusable(e))) => Outcome::Refused(e),
        Err(_elapsed) => Outcome::Timeout,
    }
}
