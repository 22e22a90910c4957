//! Check-then-forward layers (authentication, rate limit): a [`Check`] decides from the
//! request alone whether it goes on; the layer's future is either the inner service's or the
//! refusal. No boxing, so a guard costs a branch, not allocations.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::auth::Client;
use crate::error::ProxyError;

/// One rule a request must pass before it is routed.
pub trait Check: Clone {
    /// `Ok` lets the request through (a client it names is added to the response's
    /// extensions, for the access log); `Err` is answered instead.
    fn check(&self, request: &mut Request) -> Result<Option<Client>, ProxyError>;
}

/// The layer that puts a [`Check`] in front of a service.
#[derive(Clone)]
pub struct GuardLayer<C>(pub C);

impl<S, C: Check> Layer<S> for GuardLayer<C> {
    type Service = Guard<S, C>;

    fn layer(&self, inner: S) -> Guard<S, C> {
        Guard {
            inner,
            check: self.0.clone(),
        }
    }
}

/// A service behind a [`Check`].
#[derive(Clone)]
pub struct Guard<S, C> {
    inner: S,
    check: C,
}

impl<S, C> Service<Request> for Guard<S, C>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    C: Check,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Guarded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.check.check(&mut request) {
            Ok(client) => Guarded::pass(self.inner.call(request), client),
            Err(refusal) => Guarded::refuse(refusal.into_response()),
        }
    }
}

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
