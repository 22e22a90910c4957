//! The answer as the client receives it once metered: the `x-ratelimit-*` headers added, a
//! stream's added usage taken back out, and the request's token estimate settled with its real
//! usage when the answer ends (an answer cut short keeps its estimate).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

use super::sse::StripUsage;
use crate::limits::Permit;
use crate::observability::exchange::Exchange;

pin_project! {
    /// An answer body that settles its permit when it ends.
    #[project = MeteredProj]
    pub struct Metered {
        #[pin]
        inner: Body,
        strip: Option<StripUsage>,
        permit: Option<Permit>,
        exchange: Option<Arc<Exchange>>,
    }
}

/// Meters `response`: `usage_added` says the upstream was asked for usage the client did not
/// ask for, so a streamed answer gets it taken back out.
pub fn meter(response: Response, permit: Permit, usage_added: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    for (name, value) in permit.headers.pairs() {
        parts.headers.insert(name, value);
    }
    let sse = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let strip = (usage_added && sse && parts.status.is_success()).then(StripUsage::default);
    if strip.is_none() && !permit.counts() {
        // Nothing to take out and nothing to settle: the body goes as it is.
        return Response::from_parts(parts, body);
    }
    if strip.is_some() {
        parts.headers.remove(CONTENT_LENGTH);
    }
    let exchange = parts.extensions.get::<Arc<Exchange>>().cloned();
    let body = Metered {
        inner: body,
        strip,
        permit: Some(permit),
        exchange,
    };
    Response::from_parts(parts, Body::new(body))
}

impl MeteredProj<'_> {
    /// The answer is complete: the real usage replaces the estimate.
    fn settle(&mut self) {
        if let Some(permit) = self.permit.take() {
            let used = self
                .exchange
                .as_ref()
                .and_then(|e| e.usage.get())
                .map(|u| u.prompt_tokens.saturating_add(u.completion_tokens));
            permit.settle(used);
        }
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut this = self.project();
        loop {
            let Some(frame) = ready!(this.inner.as_mut().poll_frame(cx)) else {
                let rest = this.strip.as_mut().map(StripUsage::finish);
                this.settle();
                return Poll::Ready(rest.filter(|r| !r.is_empty()).map(|r| Ok(Frame::data(r))));
            };
            let ended = this.inner.is_end_stream();
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            let frame = match (this.strip.as_mut(), frame.into_data()) {
                (Some(strip), Ok(data)) => {
                    let out = strip.push(&data);
                    let out = if ended {
                        let rest = strip.finish();
                        if rest.is_empty() {
                            out
                        } else {
                            let mut all = BytesMut::from(out);
                            all.extend_from_slice(&rest);
                            all.freeze()
                        }
                    } else {
                        out
                    };
                    if out.is_empty() && !ended {
                        // The chunk was only what the client did not ask for.
                        continue;
                    }
                    Frame::data(out)
                }
                (_, Ok(data)) => Frame::data(data),
                (_, Err(other)) => other,
            };
            if ended {
                this.settle();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.strip.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}
