//! Routing: the API's routes ([`ROUTES`], with the method each answers, which is also the
//! `Allow` header of a 405) and their handlers. Read the body (bounded), read `model`, pick the
//! model's upstreams, forward; pass-through paths and 404s after the table.

pub mod body;
mod messages;
pub mod model;

use std::collections::HashMap;
use std::sync::Arc;

use ai_api_proxy_config::{ProxyConfig, UpstreamKind};
use axum::extract::Request;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Response};

use crate::answer::Answer;
use crate::error_answer::{ProxyError, Result};
use crate::guard::Client;
use crate::limits::Limiter;
use crate::metering;
use crate::observability::facts;
use crate::start_error::StartError;
use crate::telemetry::RequestTrace;
use crate::upstream::Upstream;
use crate::upstream::forward::{Forwarder, Outgoing};
use body::{BodyLimits, Budget};

/// A model and the upstreams that serve it, in fallback order.
pub struct Route {
    /// The model name.
    pub name: Arc<str>,
    /// Upstreams in order.
    pub upstreams: Vec<Arc<Upstream>>,
    /// The API they speak (one for all: validation refuses a mix).
    pub kind: UpstreamKind,
}

/// What the handlers need: routes, body limits, and the forwarder.
pub struct Routes {
    /// Model routes by name.
    models: HashMap<String, Route>,
    /// Pass-through paths.
    passthrough: HashMap<String, Arc<Upstream>>,
    /// The `/v1/models` answer, rendered once.
    models_body: Bytes,
    body: BodyLimits,
    budget: Arc<Budget>,
    forwarder: Forwarder,
    /// Per-key policies: models, rates, budgets.
    limiter: Arc<Limiter>,
}

impl Routes {
    /// Routes of `config` over the built `upstreams`.
    pub fn new(
        config: &ProxyConfig,
        upstreams: &HashMap<String, Arc<Upstream>>,
        budget: Arc<Budget>,
        forwarder: Forwarder,
        limiter: Arc<Limiter>,
    ) -> Result<Self, StartError> {
        let find = |name: &str| {
            upstreams
                .get(name)
                .cloned()
                .ok_or_else(|| StartError::Upstream {
                    upstream: name.to_owned(),
                    message: "not defined".into(),
                })
        };
        let mut models = HashMap::new();
        for m in &config.models {
            let upstreams: Vec<Arc<Upstream>> = m
                .upstreams
                .iter()
                .map(|u| find(u))
                .collect::<Result<_, _>>()?;
            let route = Route {
                name: Arc::from(m.name.as_str()),
                kind: upstreams.first().map_or(UpstreamKind::Openai, |u| u.kind),
                upstreams,
            };
            models.insert(m.name.clone(), route);
        }
        let passthrough = config
            .passthrough
            .iter()
            .map(|p| Ok((p.path.clone(), find(&p.upstream)?)))
            .collect::<Result<_, StartError>>()?;
        let l = &config.limits;
        Ok(Self {
            models,
            passthrough,
            models_body: models_json(config),
            body: BodyLimits {
                max: config.max_body_bytes,
                idle: l.body_read_idle.get(),
                total: l.body_read_total.get(),
            },
            budget,
            forwarder,
            limiter,
        })
    }
}

/// The request's trace (started by the access log layer; empty when tracing is off).
fn trace(extensions: &http::Extensions) -> RequestTrace {
    extensions
        .get::<RequestTrace>()
        .cloned()
        .unwrap_or_default()
}

/// The path after `/v1`, with the query: what is appended to an upstream's base URL.
fn suffix(uri: &http::Uri) -> &str {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    pq.strip_prefix("/v1").unwrap_or(pq)
}

/// What a route runs.
#[derive(Clone, Copy, Debug)]
enum Handler {
    /// Routed by the body's `model`.
    ByModel,
    /// The configured models, answered here.
    Models,
    /// Anthropic's Messages API, routed by `model`.
    Messages,
    /// Anthropic's token count, routed by `model`.
    CountTokens,
}

/// The API's routes: path, the one method it answers (a 405's `Allow`), and its handler.
/// Anything else is a pass-through path from the configuration, or 404.
const ROUTES: [(&str, &str, Handler); 6] = [
    ("/v1/chat/completions", "POST", Handler::ByModel),
    ("/v1/completions", "POST", Handler::ByModel),
    ("/v1/embeddings", "POST", Handler::ByModel),
    ("/v1/models", "GET", Handler::Models),
    ("/v1/messages", "POST", Handler::Messages),
    ("/v1/messages/count_tokens", "POST", Handler::CountTokens),
];

impl Routes {
    /// Answers `request` by the route table.
    pub async fn dispatch(self: Arc<Self>, request: Request) -> Response<Answer> {
        let path = request.uri().path();
        let Some((_, method, handler)) = ROUTES.iter().find(|(p, ..)| *p == path) else {
            return self.fallback(request).await;
        };
        let allowed = request.method().as_str() == *method
            || (*method == "GET" && request.method() == Method::HEAD);
        if !allowed {
            return Answer::error(ProxyError::MethodNotAllowed {
                method: request.method().clone(),
                path: truncate(path),
                allow: method,
            });
        }
        match handler {
            Handler::ByModel => self.by_model(request).await.unwrap_or_else(Answer::error),
            Handler::Models => self.models(),
            Handler::Messages => self
                .messages(request, false)
                .await
                .unwrap_or_else(Answer::error),
            Handler::CountTokens => self
                .messages(request, true)
                .await
                .unwrap_or_else(Answer::error),
        }
    }

    /// `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`: routed by model.
    async fn by_model(&self, request: Request) -> Result<Response<Answer>> {
        let routes = self;
        let (parts, body) = request.into_parts();
        // Held until the upstream's answer has started: the body is in memory until then.
        let (body, _reserved) =
            body::read(body, &parts.headers, routes.body, &routes.budget).await?;
        let (model, facts) = model::read(&body)?;
        let route = routes
            .models
            .get(model.as_ref())
            .ok_or_else(|| ProxyError::ModelNotFound(truncate(&model)))?;
        if route.kind == UpstreamKind::Anthropic {
            return self
                .chat_to_anthropic(&parts, body.clone(), route, &facts)
                .await;
        }
        let (client, label) = client_ids(&parts.extensions);
        // After routing (the model is known, and 404 comes first) and before the upstream.
        let permit = routes
            .limiter
            .admit(&client, Some(&route.name), facts.estimate(body.len()))
            .await?;
        // Every stream is metered: ask for usage when the client did not (taken back out below).
        let with_usage = facts
            .needs_usage_added()
            .then(|| metering::with_usage_requested(&body))
            .flatten();
        let usage_added = with_usage.is_some();
        let out = Outgoing {
            method: &parts.method,
            suffix: suffix(&parts.uri),
            headers: &parts.headers,
            model: route.name.clone(),
            client: label,
            body: with_usage.map_or_else(|| body.clone(), Bytes::from),
            operation: Some(operation(parts.uri.path())),
            trace: trace(&parts.extensions),
        };
        let mut response = routes.forwarder.forward(&route.upstreams, out).await;
        metering::meter(&mut response, permit, usage_added);
        response.body_mut().facts.operation = Some(operation(parts.uri.path()));
        Ok(response)
    }

    /// Configured pass-through paths: forwarded as they are to their upstream; else 404.
    async fn fallback(&self, request: Request) -> Response<Answer> {
        let Some(up) = self.passthrough.get(request.uri().path()).cloned() else {
            return Answer::error(ProxyError::UnknownUrl {
                method: request.method().clone(),
                path: truncate(request.uri().path()),
            });
        };
        let (parts, body) = request.into_parts();
        let (body, _reserved) =
            match body::read(body, &parts.headers, self.body, &self.budget).await {
                Ok(b) => b,
                Err(e) => return Answer::error(e),
            };
        // Pass-through requests count against the key's rates and budgets too (no model list).
        let (client, label) = client_ids(&parts.extensions);
        let estimate = metering::Facts::default().estimate(body.len());
        let permit = match self.limiter.admit(&client, None, estimate).await {
            Ok(permit) => permit,
            Err(refusal) => return Answer::error(ProxyError::from(refusal)),
        };
        let out = Outgoing {
            method: &parts.method,
            suffix: suffix(&parts.uri),
            headers: &parts.headers,
            model: Arc::from("-"),
            client: label,
            body,
            operation: None,
            trace: trace(&parts.extensions),
        };
        let mut response = self.forwarder.forward(std::slice::from_ref(&up), out).await;
        metering::meter(&mut response, permit, false);
        response
    }

    /// `GET /v1/models`, answered from configuration.
    fn models(&self) -> Response<Answer> {
        let mut r = Response::new(Answer::full(self.models_body.clone()));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

/// The client's id for its policy (its key id, or its address when anonymous), and for metric
/// labels (its key id, or `anonymous`: configured ids only, so the label set stays bounded).
fn client_ids(extensions: &http::Extensions) -> (Arc<str>, Arc<str>) {
    match extensions.get::<Client>() {
        Some(Client::Key(id)) => (id.clone(), id.clone()),
        Some(Client::Anonymous(ip)) => (Arc::from(ip.to_string()), facts::anonymous()),
        None => (facts::anonymous(), facts::anonymous()),
    }
}

/// The GenAI conventions' operation name of an OpenAI route.
fn operation(path: &str) -> &'static str {
    match path {
        "/v1/completions" => "text_completion",
        "/v1/embeddings" => "embeddings",
        _ => "chat",
    }
}

/// Client-supplied text echoed in errors is bounded.
fn truncate(s: &str) -> String {
    s.chars().take(256).collect()
}

/// OpenAI's model list, answered from configuration.
fn models_json(config: &ProxyConfig) -> Bytes {
    let data: Vec<_> = config
        .models
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": m.upstreams.first().map_or("", String::as_str),
            })
        })
        .collect();
    let body = serde_json::json!({ "object": "list", "data": data });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_keeps_query() {
        let uri: http::Uri = "/v1/chat/completions?chunks=3".parse().unwrap();
        assert_eq!(suffix(&uri), "/chat/completions?chunks=3");
    }
}
