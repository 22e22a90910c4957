//! Answers on Anthropic's routes in Anthropic's shape, whichever layer produced them: the
//! proxy's own errors (authentication, client limits, routing, policies: each renders
//! OpenAI's shape and leaves its message in the answer's extensions) get Anthropic's error
//! body, and the client's rate limits Anthropic's `anthropic-ratelimit-*` headers instead of
//! OpenAI's `x-ratelimit-*`. Upstream answers are the handlers' business (`routing`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use axum::extract::Request;
use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error;
use crate::answer::Answer;
use crate::error_answer::ErrorMessage;
use crate::limits::{RATE_HEADERS, RateHeaders};

/// Is `path` one of Anthropic's (`/v1/messages` and below)?
pub fn is_anthropic(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// Gives answers on Anthropic's paths Anthropic's shape.
pub fn restyle(mut response: Response<Answer>) -> Response<Answer> {
    if let Some(rate) = response.extensions().get::<RateHeaders>().copied() {
        let headers = response.headers_mut();
        for name in RATE_HEADERS {
            headers.remove(name);
        }
        for (name, value) in error::rate_headers(&rate, SystemTime::now()) {
            headers.insert(name, value);
        }
    }
    if let Some(ErrorMessage(message)) = response.extensions_mut().remove::<ErrorMessage>() {
        let body = error::error_json(error::error_type(response.status()), &message);
        let headers = response.headers_mut();
        headers.remove(CONTENT_LENGTH);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.body_mut().set_full(Bytes::from(body));
    }
    response
}

/// The layer.
#[derive(Clone, Copy, Debug)]
pub struct AnthropicShapeLayer;

impl<S> Layer<S> for AnthropicShapeLayer {
    type Service = AnthropicShape<S>;

    fn layer(&self, inner: S) -> AnthropicShape<S> {
        AnthropicShape { inner }
    }
}

/// A service whose answers on Anthropic's paths are restyled.
#[derive(Clone, Debug)]
pub struct AnthropicShape<S> {
    inner: S,
}

impl<S> Service<Request> for AnthropicShape<S>
where
    S: Service<Request, Response = Response<Answer>, Error = Infallible>,
{
    type Response = Response<Answer>;
    type Error = Infallible;
    type Future = Shaped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let anthropic = is_anthropic(request.uri().path());
        Shaped {
            inner: self.inner.call(request),
            anthropic,
        }
    }
}

pin_project! {
    /// The answer, restyled on Anthropic's paths (a branch, no allocation, elsewhere).
    pub struct Shaped<F> {
        #[pin]
        inner: F,
        anthropic: bool,
    }
}

impl<F> Future for Shaped<F>
where
    F: Future<Output = Result<Response<Answer>, Infallible>>,
{
    type Output = Result<Response<Answer>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        Poll::Ready(Ok(if *this.anthropic {
            restyle(response)
        } else {
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_answer::ProxyError;
    use crate::limits::Refusal;
    use http_body_util::BodyExt;
    use std::time::Duration;

    #[tokio::test]
    async fn proxy_errors_get_anthropic_shape_and_headers() {
        let r = restyle(Answer::error(ProxyError::Policy(Refusal::Requests {
            limit: 60,
            retry_after: Duration::from_secs(2),
        })));
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(r.headers()["anthropic-ratelimit-requests-limit"], "60");
        assert_eq!(r.headers()["anthropic-ratelimit-requests-remaining"], "0");
        assert!(r.headers().get("x-ratelimit-limit-requests").is_none());
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for requests per minute (RPM): limit 60. Please try again in 2s."}}"#
        );
        assert!(is_anthropic("/v1/messages") && is_anthropic("/v1/messages/count_tokens"));
        assert!(!is_anthropic("/v1/messagesx") && !is_anthropic("/v1/chat/completions"));
    }
}
