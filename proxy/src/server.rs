//! Wiring: routes, the layer stack (each layer says why it sits where it does), and serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ai_api_proxy_config::Cors;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

use crate::access_log::X_REQUEST_ID;
use crate::guard::GuardLayer;
use crate::settings::StartError;
use crate::state::AppState;
use crate::{access_log, api, auth, ratelimit};

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

/// The whole application.
pub fn app(state: Arc<AppState>, cors: &Cors) -> Result<Router, StartError> {
    let e = &state.endpoints;
    let api = Router::new()
        .route(
            "/v1/chat/completions",
            post(api::by_model).fallback(api::method_not_allowed),
        )
        .route(
            "/v1/completions",
            post(api::by_model).fallback(api::method_not_allowed),
        )
        .route(
            "/v1/embeddings",
            post(api::by_model).fallback(api::method_not_allowed),
        )
        .route(
            "/v1/models",
            get(api::models).fallback(api::method_not_allowed),
        )
        .route(&e.health, get(health))
        .route(&e.ready, get(ready))
        .route(&e.metrics, get(metrics))
        // Pass-through paths and 404s: looked up in a map, so configured paths never clash
        // with the routes above.
        .fallback(fallback);

    let stack = ServiceBuilder::new()
        // Outermost: every answer, errors included, carries an id clients can quote.
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeId))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        // Sees the final status of every request (rate-limited and unauthenticated too).
        .layer(access_log::AccessLogLayer(state.clone()))
        // Before authentication: browsers send preflights without credentials.
        .option_layer(cors_layer(cors)?)
        // Nothing past this point runs for an unknown client.
        .layer(GuardLayer(auth::Authenticate(state.clone())))
        // Needs the client identity; before routing so a flood never reaches upstreams.
        .layer(GuardLayer(ratelimit::Throttle(state.clone())));
    Ok(api.layer(stack).with_state(state))
}

/// CORS from the explicit origin list; none configured means no cross-origin access at all.
fn cors_layer(cors: &Cors) -> Result<Option<CorsLayer>, StartError> {
    if cors.allowed_origins.is_empty() {
        return Ok(None);
    }
    let origins = cors
        .allowed_origins
        .iter()
        .map(|o| {
            HeaderValue::try_from(o.as_str()).map_err(|_| StartError::Upstream {
                upstream: "cors".into(),
                message: format!("bad origin `{o}`"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            // OpenAI's browser SDK adds its own `x-stainless-*` headers; origins are exact,
            // so echoing the requested headers opens nothing.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([X_REQUEST_ID, header::RETRY_AFTER])
            .max_age(Duration::from_secs(86400)),
    ))
}

async fn fallback(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if state.passthrough.contains_key(request.uri().path()) {
        return api::passthrough(State(state), request).await;
    }
    api::unknown(request).into_response()
}

async fn health() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
    } else {
        json(StatusCode::OK, r#"{"status":"ready"}"#)
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut r = Response::new(Body::from(state.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Binds `addr` with `TCP_NODELAY` on every accepted connection (SSE chunks are small).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })
}
