//! What an answer says about itself, for its spans: the model that answered and why each
//! choice stopped. Read from each event of a stream, or from the head and the tail of a JSON
//! answer, by looking for the keys (`"model"`, `"finish_reason"`) and parsing only their
//! values; never the content.

use std::sync::{Arc, LazyLock};

use memchr::memmem::Finder;

static MODEL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"model\""));
static FINISH: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"finish_reason\""));

/// Finish reasons kept, at most (one per choice).
const MAX_REASONS: usize = 16;
/// Longest model name or finish reason kept, in bytes.
const MAX_LEN: usize = 256;

/// The model and the finish reasons seen so far.
#[derive(Debug, Default)]
pub struct Reply {
    /// The first `model` seen.
    pub model: Option<Arc<str>>,
    /// Every non-null `finish_reason`, in order.
    pub finish_reasons: Vec<Arc<str>>,
}

impl Reply {
    /// One event of a stream: its `model` (until one is known) and its finish reasons.
    pub fn read_event(&mut self, text: &[u8]) {
        self.read_model(text);
        self.read_finish(text);
    }

    /// The first `"model": "…"` in `text`, unless a model is already known.
    pub fn read_model(&mut self, text: &[u8]) {
        if self.model.is_none()
            && let Some(at) = MODEL.find(text)
        {
            self.model = string_after(&text[at + MODEL.needle().len()..]).map(Arc::from);
        }
    }

    /// Every `"finish_reason": "…"` in `text` (`null` ones skipped).
    pub fn read_finish(&mut self, text: &[u8]) {
        for at in FINISH.find_iter(text) {
            if self.finish_reasons.len() >= MAX_REASONS {
                return;
            }
            if let Some(reason) = string_after(&text[at + FINISH.needle().len()..]) {
                self.finish_reasons.push(Arc::from(reason));
            }
        }
    }
}

/// The JSON string after a key: `: "value"` (whitespace allowed), if short enough.
fn string_after(rest: &[u8]) -> Option<String> {
    let value = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    if value.first() != Some(&b'"') {
        return None;
    }
    let mut values = serde_json::Deserializer::from_slice(value).into_iter::<String>();
    match values.next() {
        Some(Ok(s)) if s.len() <= MAX_LEN => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_reasons_from_events_and_json() {
        let mut r = Reply::default();
        r.read_event(br#"data: {"id":"c","model":"gpt-4o-mini-2024","choices":[{"delta":{"content":"\"model\":\"no\""},"finish_reason":null}]}"#);
        r.read_event(br#"data: {"id":"c","model":"other","choices":[{"delta":{},"finish_reason":"stop"},{"finish_reason" : "length"}]}"#);
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024"));
        let reasons: Vec<&str> = r.finish_reasons.iter().map(|s| &**s).collect();
        assert_eq!(reasons, ["stop", "length"]);
    }

    #[test]
    fn content_never_counts_and_cut_values_are_skipped() {
        let mut r = Reply::default();
        // Inside a string the key's quotes are escaped: not a key.
        r.read_event(br#"data: {"choices":[{"delta":{"content":"say \"finish_reason\":\"x\""}}]}"#);
        r.read_finish(br#""finish_reason":"sto"#);
        r.read_model(br#""model": 42"#);
        assert!(r.finish_reasons.is_empty());
        assert_eq!(r.model, None);
        let long = format!(r#""model":"{}""#, "m".repeat(300));
        r.read_model(long.as_bytes());
        assert_eq!(r.model, None);
    }

    #[test]
    fn reasons_are_bounded() {
        let mut r = Reply::default();
        let many = r#""finish_reason":"stop","#.repeat(100);
        r.read_finish(many.as_bytes());
        assert_eq!(r.finish_reasons.len(), MAX_REASONS);
    }
}
