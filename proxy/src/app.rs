//! The API application: its routes and the layer stack in front of them, each layer saying
//! why it sits where it does. Health, readiness and metrics are not here: they are served on
//! the admin listener only.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ai_api_proxy_config::Cors;
use axum::extract::Request;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response};
use tower::{Service as _, ServiceBuilder};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

use crate::answer::Answer;
use crate::anthropic::dialect::AnthropicShapeLayer;
use crate::guard::GuardLayer;
use crate::guard::auth::Authenticate;
use crate::guard::limit::{ClientLimits, Throttle};
use crate::observability::access_log::{AccessLogLayer, X_REQUEST_ID};
use crate::observability::metrics::Metrics;
use crate::routing::Routes;
use crate::start_error::StartError;
use crate::telemetry::Tracer;

/// Makes request ids: 128 random bits in hex.
#[derive(Clone, Copy, Debug)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::try_from(format!("{:032x}", fastrand::u128(..)))
            .ok()
            .map(RequestId::new)
    }
}

/// The API application: the layer stack in front of the route table
/// ([`Routes::dispatch`]), answering with the one body type of the way back, [`Answer`].
/// Shared by every connection; each request's future is boxed once.
pub type Api = Arc<dyn Fn(Request) -> Answering + Send + Sync>;

/// The future of one request's answer.
pub type Answering = Pin<Box<dyn Future<Output = Result<Response<Answer>, Infallible>> + Send>>;

/// The API application.
pub fn api(
    routes: Arc<Routes>,
    auth: Authenticate,
    limits: Arc<ClientLimits>,
    metrics: Arc<Metrics>,
    tracer: Tracer,
    cors: &Cors,
) -> Result<Api, StartError> {
    let stack = ServiceBuilder::new()
        // Outermost: every answer, errors included, carries an id clients can quote.
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeId))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        // Sees the final status of every request (rate-limited and unauthenticated too), and
        // starts its server span, so refusals are traced too.
        .layer(AccessLogLayer(metrics, tracer))
        // Every answer on Anthropic's routes in Anthropic's shape, the guards' refusals too.
        .layer(AnthropicShapeLayer)
        // Before authentication: browsers send preflights without credentials.
        .option_layer(cors_layer(cors)?)
        // Nothing past this point runs for an unknown client.
        .layer(GuardLayer(auth))
        // Needs the client identity; before routing so a flood never reaches upstreams.
        .layer(GuardLayer(Throttle(limits)))
        // The route table, then the handlers (pass-through paths and 404s looked up in a
        // map, so configured paths never clash with the routes).
        .service_fn(move |request: Request| {
            let routes = routes.clone();
            async move { Ok::<_, Infallible>(routes.dispatch(request).await) }
        });
    Ok(Arc::new(move |request| {
        let answering: Answering = Box::pin(stack.clone().call(request));
        answering
    }))
}

/// CORS from the explicit origin list; none configured means no cross-origin access at all.
fn cors_layer(cors: &Cors) -> Result<Option<CorsLayer>, StartError> {
    if cors.allowed_origins.is_empty() {
        return Ok(None);
    }
    let origins = cors
        .allowed_origins
        .iter()
        .map(|o| HeaderValue::try_from(o.as_str()).map_err(|_| StartError::Cors(o.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            // OpenAI's browser SDK adds its own `x-stainless-*` headers; origins are exact,
            // so echoing the requested headers opens nothing.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(
                [X_REQUEST_ID, header::RETRY_AFTER]
                    .into_iter()
                    .chain(crate::limits::RATE_HEADERS.map(HeaderName::from_static))
                    .chain(crate::anthropic::error::RATE_HEADERS.map(HeaderName::from_static))
                    .collect::<Vec<_>>(),
            )
            .max_age(Duration::from_secs(86400)),
    ))
}
