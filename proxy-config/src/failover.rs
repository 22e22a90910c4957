//! What a model's stream does when its upstream fails after the answer started
//! (`models[].on_stream_failure`), and the rule that keeps the setting meaningful.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::{ProxyConfig, UpstreamKind};

/// What happens when a model's stream breaks after its first byte reached the client (the
/// upstream resets, stalls between chunks past `timeouts.idle`, or sends an error event).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnStreamFailure {
    /// The stream ends with an error event (`upstream_stream_error` / `upstream_timeout`).
    #[default]
    Error,
    /// When it is safe (text was streaming: not inside a tool call, `n` 1, no logprobs, no
    /// response format), the next upstream of the model is asked to continue the answer from
    /// the text already delivered, and its stream is spliced into the client's; otherwise the
    /// stream ends with the error event as with `error`. Needs a second upstream, of kind
    /// `openai`.
    Continue,
}

impl OnStreamFailure {
    /// The default: nothing to write into the rendered configuration.
    pub fn is_error(&self) -> bool {
        *self == Self::Error
    }
}

/// `continue` on a model with one upstream, or with upstreams speaking Anthropic's API (whose
/// streams are translated, and not continued), could never continue: refused, so the setting
/// says what it does.
pub(crate) fn check(r: &mut Report, config: &ProxyConfig) {
    for (i, m) in config.models.iter().enumerate() {
        let anthropic = m.upstreams.iter().any(|name| {
            let kind = config
                .upstreams
                .iter()
                .find(|u| &u.name == name)
                .map(|u| u.kind);
            kind == Some(UpstreamKind::Anthropic)
        });
        r.check(
            m.on_stream_failure.is_error() || !anthropic,
            format!("models[{i}].on_stream_failure"),
            || {
                format!(
                    "`continue` is for upstreams of kind `openai`; `{}` is served by `anthropic` ones",
                    m.name
                )
            },
        );
        let distinct: BTreeSet<&str> = m.upstreams.iter().map(String::as_str).collect();
        r.check(
            m.on_stream_failure.is_error() || distinct.len() >= 2,
            format!("models[{i}].on_stream_failure"),
            || {
                format!(
                    "`continue` needs a second upstream to continue on; `{}` lists only {}",
                    m.name,
                    distinct.iter().next().copied().unwrap_or("none"),
                )
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientAuth, KeySource, ModelRoute, Upstream};

    fn config(upstreams: &[&str], on: OnStreamFailure) -> ProxyConfig {
        ProxyConfig {
            auth: Some(ClientAuth::Anonymous),
            upstreams: ["a", "b"]
                .iter()
                .map(|n| Upstream {
                    name: (*n).into(),
                    base_url: format!("https://{n}.example.com/v1"),
                    kind: UpstreamKind::Openai,
                    api_key: KeySource::Env("KEY".into()),
                    headers: Default::default(),
                    timeouts: None,
                    organization: None,
                    project: None,
                    tls: None,
                })
                .collect(),
            models: vec![ModelRoute {
                name: "gpt-4.1".into(),
                upstreams: upstreams.iter().map(|u| (*u).into()).collect(),
                on_stream_failure: on,
            }],
            ..ProxyConfig::default()
        }
    }

    #[test]
    fn continue_needs_a_second_upstream() {
        assert_eq!(
            config(&["a", "b"], OnStreamFailure::Continue).validate(),
            Ok(())
        );
        assert_eq!(config(&["a"], OnStreamFailure::Error).validate(), Ok(()));
        for single in [&["a"][..], &["a", "a"][..]] {
            let problems = config(single, OnStreamFailure::Continue)
                .validate()
                .unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].path, "models[0].on_stream_failure");
            assert_eq!(
                problems[0].message,
                "`continue` needs a second upstream to continue on; `gpt-4.1` lists only a"
            );
        }
    }

    #[test]
    fn continue_is_for_openai_upstreams() {
        let mut c = config(&["a", "b"], OnStreamFailure::Continue);
        for u in &mut c.upstreams {
            u.kind = UpstreamKind::Anthropic;
        }
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "models[0].on_stream_failure");
        assert!(
            problems[0].message.contains("kind `openai`"),
            "{problems:?}"
        );
    }

    #[test]
    fn default_is_error_and_is_not_rendered() {
        let c = config(&["a"], OnStreamFailure::Error);
        assert!(!c.to_json().contains("on_stream_failure"));
        let text = c.to_json().replace(
            r#""upstreams": [
        "a"
      ]"#,
            r#""upstreams": ["a", "b"], "on_stream_failure": "continue""#,
        );
        let back = ProxyConfig::from_json(&text).unwrap();
        assert_eq!(back.models[0].on_stream_failure, OnStreamFailure::Continue);
        assert!(
            back.to_json()
                .contains(r#""on_stream_failure": "continue""#)
        );
        let wrong = text.replace(r#""continue""#, r#""retry""#);
        let err = ProxyConfig::from_json(&wrong).unwrap_err().to_string();
        assert!(err.contains("unknown variant `retry`"), "{err}");
    }
}
