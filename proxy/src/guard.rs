//! The future shared by the check-then-forward layers (authentication, rate limit): either
//! the inner service's future, or an answer decided without calling it. No boxing, so a
//! layer costs a branch, not allocations.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::response::Response;
use pin_project_lite::pin_project;

use crate::auth::Client;

pin_project! {
    /// The answer of a guarding layer.
    #[project = GuardedProj]
    pub enum Guarded<F> {
        /// The request passed; `client`, if set, is added to the response's extensions.
        Pass {
            #[pin]
            inner: F,
            client: Option<Client>,
        },
        /// The request was refused with this answer.
        Refused {
            response: Option<Response>,
        },
    }
}

impl<F> Guarded<F> {
    /// Refuses with `response`.
    pub fn refuse(response: Response) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }

    /// Lets the request through.
    pub fn pass(inner: F, client: Option<Client>) -> Self {
        Self::Pass { inner, client }
    }
}

impl<F> Future for Guarded<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProj::Pass { inner, client } => {
                let Ok(mut response) = ready!(inner.poll(cx));
                if let Some(client) = client.take() {
                    response.extensions_mut().insert(client);
                }
                Poll::Ready(Ok(response))
            }
            GuardedProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}
