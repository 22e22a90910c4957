//! What a request body says about the tokens it will use, and the body that asks a stream's
//! upstream for its usage when the client did not.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The fields of a request the proxy reads (routing and metering); everything else is
/// skipped unparsed. Metering fields of an unexpected type read as absent: the upstream is
/// the judge of the request's shape.
#[derive(Debug, Default, Deserialize)]
pub struct Facts<'a> {
    /// The model asked for.
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    /// `stream: true`.
    #[serde(default, deserialize_with = "lenient")]
    pub stream: Option<bool>,
    /// `stream_options.include_usage: true`: the client reads usage itself.
    #[serde(default, deserialize_with = "include_usage")]
    pub stream_options: bool,
    /// The completion maximum.
    #[serde(default, deserialize_with = "lenient")]
    pub max_completion_tokens: Option<u64>,
    /// The older name of `max_completion_tokens`.
    #[serde(default, deserialize_with = "lenient")]
    pub max_tokens: Option<u64>,
    /// Completions asked for (each up to the maximum).
    #[serde(default, deserialize_with = "lenient")]
    pub n: Option<u64>,
}

/// A value of the expected type, or nothing.
fn lenient<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Value(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Either::<T>::deserialize(d)? {
        Either::Value(v) => Some(v),
        Either::Other(_) => None,
    })
}

fn include_usage<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    struct Options {
        #[serde(default, deserialize_with = "lenient")]
        include_usage: Option<bool>,
    }
    Ok(lenient::<D, Options>(d)?.and_then(|o| o.include_usage) == Some(true))
}

/// Bytes of prompt per token, roughly, for English text and JSON (OpenAI's rule of thumb).
const BYTES_PER_TOKEN: u64 = 4;

impl Facts<'_> {
    /// Reads a JSON body's facts; `Err` for a body that is not a JSON object.
    pub fn read(body: &[u8]) -> Result<Facts<'_>, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Tokens the request may use, charged when it starts: the prompt's size in bytes over
    /// four, plus the completion maximum times `n` when the client set one.
    pub fn estimate(&self, body_len: usize) -> u64 {
        let prompt = (body_len as u64).div_ceil(BYTES_PER_TOKEN);
        let completion = self.max_completion_tokens.or(self.max_tokens).unwrap_or(0);
        prompt.saturating_add(completion.saturating_mul(self.n.unwrap_or(1).max(1)))
    }

    /// A stream whose usage only the proxy wants: the upstream must be asked for it, and its
    /// usage chunk kept from the client.
    pub fn needs_usage_added(&self) -> bool {
        self.stream == Some(true) && !self.stream_options
    }
}

/// A JSON object's members in order, values unparsed.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Members<'a> {
    fn parse(text: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }

    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Writes the object back: members in their order, values byte for byte.
    fn write(&self, replace: Option<(&str, &str)>, drop: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 48,
        );
        out.push(b'{');
        let mut first = true;
        let mut put = |out: &mut Vec<u8>, k: &str, v: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        };
        let mut replaced = false;
        for (k, v) in &self.0 {
            if drop == Some(k.as_ref()) {
                continue;
            }
            match replace {
                Some((rk, rv)) if rk == k => {
                    if !std::mem::replace(&mut replaced, true) {
                        put(&mut out, k, rv);
                    }
                }
                _ => put(&mut out, k, v.get()),
            }
        }
        if let Some((rk, rv)) = replace
            && !replaced
        {
            put(&mut out, rk, rv);
        }
        out.push(b'}');
        out
    }
}

/// The body with `stream_options.include_usage: true` set, every other member unchanged;
/// `None` when the body is not a stream, already asks for usage, or has `stream_options`
/// that is not an object (the upstream will say what is wrong with it).
pub fn with_usage_requested(body: &[u8]) -> Option<Vec<u8>> {
    let top = Members::parse(body)?;
    if top.get("stream")?.get() != "true" {
        return None;
    }
    let options = match top.get("stream_options").map(RawValue::get) {
        None | Some("null") => r#"{"include_usage":true}"#.as_bytes().to_vec(),
        Some(raw) => {
            let inner = Members::parse(raw.as_bytes())?;
            if inner.get("include_usage").map(RawValue::get) == Some("true") {
                return None;
            }
            inner.write(Some(("include_usage", "true")), None)
        }
    };
    let options = String::from_utf8(options).ok()?;
    Some(top.write(Some(("stream_options", &options)), None))
}

/// The object `text` without its `usage` member when that is `null`; `None` if there is none.
pub(super) fn without_null_usage(text: &[u8]) -> Option<Vec<u8>> {
    let members = Members::parse(text)?;
    (members.get("usage")?.get() == "null").then(|| members.write(None, Some("usage")))
}

/// Is `text` the usage-only chunk of a stream (`choices` empty, `usage` set)?
pub(super) fn is_usage_chunk(text: &[u8]) -> bool {
    Members::parse(text).is_some_and(|m| {
        m.get("usage").is_some_and(|u| u.get() != "null")
            && m.get("choices").is_some_and(|c| c.get().trim() == "[]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_prompt_and_completion() {
        let body = br#"{"model":"m","max_tokens":100,"n":2}"#;
        let f = Facts::read(body).unwrap();
        assert_eq!(f.estimate(body.len()), 9 + 200);
        let f =
            Facts::read(br#"{"model":"m","max_completion_tokens":7,"max_tokens":100}"#).unwrap();
        assert_eq!(f.estimate(0), 7);
        assert!(!f.needs_usage_added());
        assert!(
            Facts::read(br#"{"stream":true}"#)
                .unwrap()
                .needs_usage_added()
        );
        assert!(
            Facts::read(br#"{"stream":true,"stream_options":{"include_usage":false}}"#)
                .unwrap()
                .needs_usage_added()
        );
        assert!(
            !Facts::read(br#"{"stream":true,"stream_options":{"include_usage":true}}"#)
                .unwrap()
                .needs_usage_added()
        );
        let odd =
            Facts::read(br#"{"model":"m","stream":"yes","max_tokens":-1,"stream_options":7}"#)
                .unwrap();
        assert_eq!(
            (odd.model.as_deref(), odd.stream, odd.max_tokens),
            (Some("m"), None, None)
        );
    }

    #[test]
    fn asks_for_usage_keeping_everything_else() {
        let out =
            |b: &str| with_usage_requested(b.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            out(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi \"x\""}]}"#)
                .unwrap(),
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi \"x\""}],"stream_options":{"include_usage":true}}"#
        );
        assert_eq!(
            out(r#"{"stream": true, "stream_options": {"include_obfuscation": false, "include_usage": false}, "model": "m"}"#).unwrap(),
            r#"{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},"model":"m"}"#
        );
        assert_eq!(
            out(r#"{"stream":true,"stream_options":{"include_usage":true}}"#),
            None
        );
        assert_eq!(out(r#"{"stream":false}"#), None);
        assert_eq!(out(r#"{"model":"m"}"#), None);
    }

    #[test]
    fn recognises_usage_chunks() {
        assert!(is_usage_chunk(
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(!is_usage_chunk(
            br#"{"id":"c","choices":[{"delta":{}}],"usage":null}"#
        ));
        assert_eq!(
            without_null_usage(br#"{"id":"c","choices":[{"delta":{"content":"a"}}],"usage":null}"#)
                .unwrap(),
            br#"{"id":"c","choices":[{"delta":{"content":"a"}}]}"#
        );
        assert_eq!(without_null_usage(br#"{"id":"c"}"#), None);
    }
}
