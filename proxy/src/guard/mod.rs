//! Guards: rules a request must pass before it is routed (authentication, then the client's
//! limits). A [`Check`] decides from the request alone; what it lets through may ride along to
//! the answer (the client id for the access log, an in-flight slot until the body ends). The
//! layer's future is either the inner service's or the refusal: no boxing, so a guard costs a
//! branch, not allocations.

pub mod auth;
pub mod keys;
pub mod limit;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use http::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::answer::Answer;
use crate::error_answer::ProxyError;
use crate::observability::facts;

/// Who is calling: a configured client id, or an anonymous caller identified by IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A client from the key file.
    Key(Arc<str>),
    /// No authentication configured: the peer address stands for the client.
    Anonymous(std::net::IpAddr),
}

impl Client {
    /// The id for logs: the key id, or `anonymous`.
    #[cfg(test)]
    pub fn id(&self) -> &str {
        match self {
            Self::Key(id) => id,
            Self::Anonymous(_) => "anonymous",
        }
    }

    /// The id for the access log and metric labels: the key id, or `anonymous`.
    pub fn log_id(&self) -> Arc<str> {
        match self {
            Self::Key(id) => id.clone(),
            Self::Anonymous(_) => facts::anonymous(),
        }
    }
}

/// One rule a request must pass before it is routed.
pub trait Check: Clone {
    /// What a passed request carries to its answer.
    type Pass: Send + 'static;
    /// `Ok` lets the request through; `Err` is answered instead.
    fn check(&self, request: &mut Request) -> Result<Self::Pass, ProxyError>;
    /// Applies what the check let through to the answer.
    fn answer(pass: Self::Pass, response: Response<Answer>) -> Response<Answer>;
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
    S: Service<Request, Response = Response<Answer>, Error = Infallible>,
    C: Check,
{
    type Response = Response<Answer>;
    type Error = Infallible;
    type Future = Guarded<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.check.check(&mut request) {
            Ok(pass) => Guarded::pass(self.inner.call(request), pass),
            Err(refusal) => Guarded::refuse(Answer::error(refusal)),
        }
    }
}

pin_project! {
    /// The answer of a guarding layer.
    #[project = GuardedProj]
    pub enum Guarded<F, C: Check> {
        /// The request passed; what it carries is applied to the answer.
        Pass {
            #[pin]
            inner: F,
            pass: Option<C::Pass>,
        },
        /// The request was refused with this answer.
        Refused {
            response: Option<Response<Answer>>,
        },
    }
}

impl<F, C: Check> Guarded<F, C> {
    /// Refuses with `response`.
    pub fn refuse(response: Response<Answer>) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }

    /// Lets the request through.
    pub fn pass(inner: F, pass: C::Pass) -> Self {
        Self::Pass {
            inner,
            pass: Some(pass),
        }
    }
}

impl<F, C: Check> Future for Guarded<F, C>
where
    F: Future<Output = Result<Response<Answer>, Infallible>>,
{
    type Output = Result<Response<Answer>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProj::Pass { inner, pass } => {
                let Ok(response) = ready!(inner.poll(cx));
                Poll::Ready(Ok(match pass.take() {
                    Some(pass) => C::answer(pass, response),
                    None => response,
                }))
            }
            GuardedProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}
