//! The stream translators as event hooks of the relay (`answer::hook`): each upstream event,
//! parsed once by the relay, goes through the translator and out in the client's API; the
//! usage each reads is the answer's usage. The proxy's own error event for a broken stream
//! (OpenAI's shape, run through the hooks) comes out in the client's API too.

use bytes::{Bytes, BytesMut};

use super::stream::{AnthropicUsage, ToAnthropic, ToChat, anthropic_error};
use crate::answer::hook::{End, EventHook, Verdict};
use crate::observability::facts::Usage;
use crate::sse::Event;

/// An event's `event:` name and its data as text (lossy: JSON is UTF-8 anyway).
fn parts(e: &Event<'_>) -> (Option<String>, Option<String>) {
    let name = e
        .fields()
        .find(|f| f.name == b"event")
        .map(|f| String::from_utf8_lossy(f.value).into_owned());
    let data = e.data().map(|d| String::from_utf8_lossy(&d).into_owned());
    (name, data)
}

/// The proxy's error event (`data: {"error":{"message":…}}`, no `event:` name): its message.
fn proxy_error(name: Option<&str>, data: &str) -> Option<String> {
    if name.is_some() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    if v.get("type").is_some() {
        return None;
    }
    v.get("error")?.get("message")?.as_str().map(str::to_owned)
}

/// A Chat Completions stream for an Anthropic client.
#[derive(Debug, Default)]
pub struct ChatToAnthropic(pub ToAnthropic);

impl EventHook for ChatToAnthropic {
    fn event(&mut self, e: &Event<'_>) -> Verdict {
        let (_, Some(data)) = parts(e) else {
            return Verdict::Drop;
        };
        let mut out = BytesMut::new();
        self.0.event(&data, &mut out);
        Verdict::Replace(out.freeze())
    }

    fn end(&mut self, end: End) -> Option<Bytes> {
        // A broken stream's error event follows, and is translated like any event.
        if end != End::Complete {
            return None;
        }
        let mut out = BytesMut::new();
        self.0.finish(&mut out);
        (!out.is_empty()).then(|| out.freeze())
    }

    fn usage(&self) -> Option<Usage> {
        self.0.usage()
    }
}

/// An Anthropic stream for an OpenAI client.
#[derive(Debug)]
pub struct AnthropicToChat(pub ToChat);

impl EventHook for AnthropicToChat {
    fn event(&mut self, e: &Event<'_>) -> Verdict {
        let (name, Some(data)) = parts(e) else {
            return Verdict::Drop;
        };
        if proxy_error(name.as_deref(), &data).is_some() {
            // Already OpenAI's shape.
            self.0.stop();
            return Verdict::Pass;
        }
        let mut out = BytesMut::new();
        self.0.event(&data, &mut out);
        Verdict::Replace(out.freeze())
    }

    fn end(&mut self, end: End) -> Option<Bytes> {
        if end != End::Complete {
            return None;
        }
        let mut out = BytesMut::new();
        self.0.finish(&mut out);
        (!out.is_empty()).then(|| out.freeze())
    }

    fn usage(&self) -> Option<Usage> {
        Some(self.0.usage())
    }
}

/// An Anthropic stream relayed as it is: its usage read from `message_start` and
/// `message_delta`, and the proxy's error event for a broken stream in Anthropic's shape.
#[derive(Debug, Default)]
pub struct AnthropicRelay(pub AnthropicUsage);

impl EventHook for AnthropicRelay {
    fn event(&mut self, e: &Event<'_>) -> Verdict {
        let (name, Some(data)) = parts(e) else {
            return Verdict::Pass;
        };
        if let Some(message) = proxy_error(name.as_deref(), &data) {
            let mut out = BytesMut::new();
            anthropic_error(&mut out, "api_error", &message);
            return Verdict::Replace(out.freeze());
        }
        self.0.event(name.as_deref(), &data);
        Verdict::Pass
    }

    fn usage(&self) -> Option<Usage> {
        self.0.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::hook::Hooks;

    fn run(hook: impl EventHook + 'static, input: &[u8], end: End) -> (Vec<u8>, Option<Usage>) {
        let mut hooks = Hooks::default();
        hooks.push(hook);
        let run = Bytes::copy_from_slice(input);
        let mut out = hooks.run(&run, |_| {}).unwrap_or(run).to_vec();
        if let Some(rest) = hooks.end(end) {
            out.extend_from_slice(&rest);
        }
        if let End::Broken(_) = end {
            let event = crate::sse::error_event("The upstream stream was interrupted.", "x");
            out.extend_from_slice(&hooks.run(&event, |_| {}).unwrap_or(event));
        }
        (out, hooks.usage())
    }

    #[test]
    fn a_native_stream_passes_as_it_is_and_is_metered() {
        let input = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n";
        let (out, usage) = run(AnthropicRelay::default(), input, End::Broken("reset"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(std::str::from_utf8(input).unwrap()));
        assert!(
            text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The upstream stream was interrupted.\"}}\n\n"),
            "{text}"
        );
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 9
            })
        );
    }

    #[test]
    fn a_broken_translated_stream_ends_in_the_clients_shape() {
        let chunk = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
        let (out, _) = run(ChatToAnthropic::default(), chunk, End::Broken("reset"));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert!(text.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The upstream stream was interrupted.\"}}\n\n"), "{text}");

        let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n";
        let (out, usage) = run(
            AnthropicToChat(ToChat::new(1, false)),
            start,
            End::Broken("reset"),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\"error\"").count(), 1, "{text}");
        assert!(text.ends_with("\"code\":\"x\"}}\n\n"), "{text}");
        assert_eq!(usage.map(|u| u.prompt_tokens), Some(5));
    }
}
