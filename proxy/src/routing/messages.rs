//! Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`) and OpenAI's
//! chat completions to an `anthropic` upstream: the same body limits, routing, policies and
//! metering as every route, with the request translated when the model's upstreams speak the
//! other API, and the answer translated back (whole, or event by event through the relay's
//! hooks). Anthropic's error shape and rate-limit headers on these routes are the
//! `anthropic::dialect` layer's.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ai_api_proxy_config::UpstreamKind;
use axum::extract::Request;
use bytes::{Bytes, BytesMut};
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http_body_util::BodyExt;

use super::body::{Budget, Reserved};
use super::{Route, Routes, body, client_ids, model, truncate};
use crate::answer::Answer;
use crate::anthropic::hooks::{AnthropicRelay, AnthropicToChat, ChatToAnthropic};
use crate::anthropic::stream::{ToAnthropic, ToChat};
use crate::anthropic::{TranslateError, error, request, response};
use crate::error_answer::{ErrorMessage, ProxyError, Result};
use crate::metering;
use crate::upstream::forward::Outgoing;

/// The largest whole answer translated (read into memory first); beyond it, 502.
const MAX_WHOLE_ANSWER: usize = 8 * 1024 * 1024;

/// The largest upstream error body translated to the other API's shape.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Says that `count_tokens` answered with the proxy's estimate, not a provider's count.
const ESTIMATE_HEADER: &str = "x-ai-proxy-token-count";

/// Which way an answer is carried back.
#[derive(Clone, Copy, Debug)]
pub(super) enum Back {
    /// Chat Completions for an Anthropic client.
    ToAnthropic,
    /// Anthropic's for an OpenAI client (`include_usage`: the client asked for the usage
    /// chunk).
    ToChat { include_usage: bool },
}

/// The query of `uri`, with its `?`, or nothing: kept on a translated request's new path.
fn query(uri: &http::Uri) -> String {
    uri.query().map(|q| format!("?{q}")).unwrap_or_default()
}

impl Routes {
    /// `POST /v1/messages` (`count` false) and `/v1/messages/count_tokens` (`count` true).
    pub(super) async fn messages(&self, request: Request, count: bool) -> Result<Response<Answer>> {
        let (parts, body) = request.into_parts();
        let (body, _reserved) = body::read(body, &parts.headers, self.body, &self.budget).await?;
        let (model, facts) = model::read(&body)?;
        let route = self
            .models
            .get(model.as_ref())
            .ok_or_else(|| ProxyError::ModelNotFound(truncate(&model)))?;
        let (client, label) = client_ids(&parts.extensions);
        let operation = if count { "count_tokens" } else { "chat" };
        // count_tokens is free at Anthropic: it counts as a request, not as tokens.
        let estimate = if count { 0 } else { facts.estimate(body.len()) };
        let (suffix, outgoing, back) = match (route.kind, count) {
            (UpstreamKind::Anthropic, _) => {
                let suffix = super::suffix(&parts.uri).to_owned();
                (suffix, body.clone(), None)
            }
            (UpstreamKind::Openai, true) => {
                let tokens = request::estimate_input_tokens(&body)?;
                let permit = self.limiter.admit(&client, Some(&route.name), 0).await?;
                return Ok(count_estimate(route, label, operation, tokens, permit));
            }
            (UpstreamKind::Openai, false) => {
                let chat = request::messages_to_chat(&body)?;
                let suffix = format!("/chat/completions{}", query(&parts.uri));
                (suffix, Bytes::from(chat), Some(Back::ToAnthropic))
            }
        };
        let permit = self
            .limiter
            .admit(&client, Some(&route.name), estimate)
            .await?;
        let rate = permit.headers;
        let out = Outgoing {
            method: &parts.method,
            suffix: &suffix,
            headers: &parts.headers,
            model: route.name.clone(),
            client: label,
            body: outgoing,
            operation: Some(operation),
            trace: super::trace(&parts.extensions),
        };
        let mut response = self.forwarder.forward(&route.upstreams, out).await;
        metering::meter(&mut response, permit, false);
        response.extensions_mut().insert(rate);
        response.body_mut().facts.operation = Some(operation);
        Ok(match back {
            Some(back) => translate_answer(response, back, &self.budget).await,
            None => {
                if is_stream(&response) && response.body_mut().add_hook(AnthropicRelay::default()) {
                    response.headers_mut().remove(CONTENT_LENGTH);
                }
                response
            }
        })
    }

    /// `POST /v1/chat/completions` for a model whose upstreams speak Anthropic's API: the
    /// request translated, the answer translated back; other OpenAI routes refused (Anthropic
    /// has no text completions or embeddings).
    pub(super) async fn chat_to_anthropic(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        route: &Route,
        facts: &metering::Facts<'_>,
    ) -> Result<Response<Answer>> {
        let operation = match parts.uri.path() {
            "/v1/chat/completions" => "chat",
            other => {
                return Err(TranslateError::Request(format!(
                    "`{}` is not available for the model `{}`: its upstream speaks Anthropic's \
                     Messages API, which has no such endpoint; use /v1/chat/completions.",
                    truncate(other),
                    route.name
                ))
                .into());
            }
        };
        let messages = request::chat_to_messages(&body)?;
        let (client, label) = client_ids(&parts.extensions);
        let permit = self
            .limiter
            .admit(&client, Some(&route.name), facts.estimate(body.len()))
            .await?;
        let suffix = format!("/messages{}", query(&parts.uri));
        let out = Outgoing {
            method: &parts.method,
            suffix: &suffix,
            headers: &parts.headers,
            model: route.name.clone(),
            client: label,
            body: Bytes::from(messages),
            operation: Some(operation),
            trace: super::trace(&parts.extensions),
        };
        let mut response = self.forwarder.forward(&route.upstreams, out).await;
        metering::meter(&mut response, permit, false);
        response.body_mut().facts.operation = Some(operation);
        let include_usage = facts.stream_options;
        Ok(translate_answer(response, Back::ToChat { include_usage }, &self.budget).await)
    }
}

/// `count_tokens` for an OpenAI-compatible upstream, which cannot count: the proxy's estimate
/// (`request::estimate_input_tokens`), said so in a header.
fn count_estimate(
    route: &Route,
    client: std::sync::Arc<str>,
    operation: &'static str,
    tokens: u64,
    permit: crate::limits::Permit,
) -> Response<Answer> {
    let body = serde_json::json!({ "input_tokens": tokens }).to_string();
    let mut response = Response::new(Answer::full(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ESTIMATE_HEADER, HeaderValue::from_static("estimate"));
    response.extensions_mut().insert(permit.headers);
    let facts = &mut response.body_mut().facts;
    facts.model = Some(route.name.clone());
    facts.client = Some(client);
    facts.operation = Some(operation);
    metering::meter(&mut response, permit, false);
    response
}

fn is_stream(response: &Response<Answer>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The upstream's answer in the client's API: a stream event by event (hooks), a whole answer
/// or an error body read and rewritten. The bytes read are held against the body budget, the
/// same that bounds request bodies, so answers being translated cannot grow memory past it.
pub(super) async fn translate_answer(
    mut response: Response<Answer>,
    back: Back,
    budget: &Arc<Budget>,
) -> Response<Answer> {
    if response.extensions().get::<ErrorMessage>().is_some() {
        // The proxy's own error (no upstream answered): already in the client's terms.
        return response;
    }
    let ok = response.status().is_success();
    if ok && is_stream(&response) {
        let hooked = match back {
            Back::ToAnthropic => response
                .body_mut()
                .add_hook(ChatToAnthropic(ToAnthropic::default())),
            Back::ToChat { include_usage } => response
                .body_mut()
                .add_hook(AnthropicToChat(ToChat::new(now(), include_usage))),
        };
        if hooked {
            response.headers_mut().remove(CONTENT_LENGTH);
        }
        return response;
    }
    let limit = if ok { MAX_WHOLE_ANSWER } else { MAX_ERROR_BODY };
    let mut reserved = Reserved::none(budget);
    let whole = match read_whole(response.body_mut(), limit, &mut reserved).await {
        Ok(b) => b,
        Err(e) => return keep_facts(response, e),
    };
    let status = response.status();
    let translated = match (ok, back) {
        (true, Back::ToAnthropic) => response::chat_to_message(&whole),
        (true, Back::ToChat { .. }) => response::message_to_chat(&whole, now()),
        (false, Back::ToAnthropic) => Ok(error::from_openai(status, &whole).into_bytes()),
        (false, Back::ToChat { .. }) => Ok(error::to_openai(status, &whole).into_bytes()),
    };
    match translated {
        Ok(bytes) => {
            let headers = response.headers_mut();
            headers.remove(CONTENT_LENGTH);
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.body_mut().set_full(Bytes::from(bytes));
            response
        }
        Err(e) => keep_facts(response, e.into()),
    }
}

/// Reads `answer` to its end (at most `limit` bytes, each taken from the budget first).
async fn read_whole(answer: &mut Answer, limit: usize, reserved: &mut Reserved) -> Result<Bytes> {
    let mut out = BytesMut::new();
    while let Some(frame) = answer.frame().await {
        let Ok(frame) = frame else {
            return Err(ProxyError::BadGateway);
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(TranslateError::Answer(format!(
                    "The upstream's answer is larger than the {limit} bytes the proxy translates."
                ))
                .into());
            }
            reserved.grow(data.len() as u64)?;
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// `e` as the answer, keeping what the access log learnt about the exchange.
fn keep_facts(mut response: Response<Answer>, e: ProxyError) -> Response<Answer> {
    let facts = std::mem::take(&mut response.body_mut().facts);
    let mut answer = Answer::error(e);
    let error = answer.body_mut().facts.error;
    answer.body_mut().facts = facts;
    answer.body_mut().facts.error = error;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translated_paths_keep_the_query() {
        let uri: http::Uri = "/v1/messages?beta=true".parse().unwrap();
        assert_eq!(query(&uri), "?beta=true");
        let uri: http::Uri = "/v1/messages".parse().unwrap();
        assert_eq!(query(&uri), "");
    }
}
