//! The admin listener: liveness, readiness and metrics on their own port, never on the API
//! port, so the Service and Ingress can expose the API alone and the NetworkPolicy can admit
//! the scraper to this port only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ai_api_proxy_config::Endpoints;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{self, HeaderValue};

use crate::observability::metrics::Metrics;

/// What the admin endpoints read.
pub struct Admin {
    /// Set on SIGTERM: readiness turns 503.
    pub draining: Arc<AtomicBool>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The admin application: exactly the three configured paths; anything else 404.
pub fn router(endpoints: &Endpoints, admin: Arc<Admin>) -> Router {
    Router::new()
        .route(&endpoints.health, get(health))
        .route(&endpoints.ready, get(ready))
        .route(&endpoints.metrics, get(metrics))
        .with_state(admin)
}

async fn health() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

async fn ready(State(admin): State<Arc<Admin>>) -> Response {
    if admin.draining.load(Ordering::Acquire) {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
    } else {
        json(StatusCode::OK, r#"{"status":"ready"}"#)
    }
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    let mut r = Response::new(Body::from(admin.metrics.render()));
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
