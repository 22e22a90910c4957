//! Takes back out of a stream what asking for usage added to it: the usage-only chunk before
//! `[DONE]` and the `"usage":null` member of every other chunk. The client receives the
//! stream it would have had; the relay has read the usage from the upstream's bytes already.
//!
//! Events are passed on as each one completes (an upstream writes whole events, so this adds
//! no delay); an event that grows past [`MAX_EVENT`] without ending is passed on unchanged.

use bytes::{Bytes, BytesMut};

use super::request::{is_usage_chunk, without_null_usage};

/// Longest event held while waiting for its end.
pub const MAX_EVENT: usize = 1 << 20;

/// The filter for one stream.
#[derive(Debug, Default)]
pub struct StripUsage {
    pending: BytesMut,
}

/// The end of the first complete event in `buf`: after its blank line.
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl StripUsage {
    /// Takes an upstream chunk, returns what the client gets now (possibly empty).
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            self.event(&event, &mut out);
        }
        if self.pending.len() > MAX_EVENT {
            out.extend_from_slice(&self.pending.split());
        }
        out.freeze()
    }

    /// The stream ended: whatever is left, unchanged.
    pub fn finish(&mut self) -> Bytes {
        self.pending.split().freeze()
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) {
        // One `data:` line carrying one JSON object is the only shape touched.
        let body_end = event.len() - if event.ends_with(b"\r\n\r\n") { 4 } else { 2 };
        let body = &event[..body_end];
        let Some(payload) = body.strip_prefix(b"data:") else {
            out.extend_from_slice(event);
            return;
        };
        if payload.contains(&b'\n') || !payload.windows(7).any(|w| w == b"\"usage\"") {
            out.extend_from_slice(event);
            return;
        }
        let space = usize::from(payload.first() == Some(&b' '));
        let json = &payload[space..];
        if is_usage_chunk(json) {
            return;
        }
        match without_null_usage(json) {
            Some(clean) => {
                out.extend_from_slice(&event[..5 + space]);
                out.extend_from_slice(&clean);
                out.extend_from_slice(&event[body_end..]);
            }
            None => out.extend_from_slice(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut s = StripUsage::default();
        let mut out = Vec::new();
        let mut at = 0;
        for &cut in cuts {
            let cut = cut.clamp(at, input.len());
            out.extend_from_slice(&s.push(&input[at..cut]));
            at = cut;
        }
        out.extend_from_slice(&s.push(&input[at..]));
        out.extend_from_slice(&s.finish());
        out
    }

    /// A chunk as OpenAI writes it, with the members a generator picked.
    fn chunk(id: u32, content: &str, extra_usage: Option<usize>) -> String {
        let mut members = vec![
            format!(r#""id":"chatcmpl-{id}""#),
            r#""object":"chat.completion.chunk""#.to_owned(),
            format!(
                r#""choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]"#,
                serde_json::to_string(content).unwrap()
            ),
        ];
        if let Some(at) = extra_usage {
            members.insert(at.min(members.len()), r#""usage":null"#.to_owned());
        }
        format!("{{{}}}", members.join(","))
    }

    proptest! {
        /// What the client gets from an upstream asked for usage is, byte for byte, the
        /// stream it would have had without asking, however the upstream splits it.
        #[test]
        fn the_client_stream_is_unchanged(
            contents in proptest::collection::vec(".{0,12}", 0..6),
            usage_at in proptest::collection::vec(0usize..4, 6),
            crlf in any::<bool>(),
            space in any::<bool>(),
            cuts in proptest::collection::vec(0usize..2000, 0..8),
            prompt in 0u64..10_000,
            completion in 0u64..10_000,
        ) {
            let nl = if crlf { "\r\n\r\n" } else { "\n\n" };
            let sp = if space { " " } else { "" };
            let mut client = String::new();
            let mut upstream = String::new();
            for (i, c) in contents.iter().enumerate() {
                client += &format!("data:{sp}{}{nl}", chunk(i as u32, c, None));
                upstream += &format!("data:{sp}{}{nl}", chunk(i as u32, c, Some(usage_at[i])));
            }
            upstream += &format!(r#"data:{sp}{{"id":"chatcmpl-x","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}}}{nl}"#, prompt + completion);
            client += &format!("data:{sp}[DONE]{nl}");
            upstream += &format!("data:{sp}[DONE]{nl}");
            let mut cuts = cuts;
            cuts.sort_unstable();
            let out = run(upstream.as_bytes(), &cuts);
            prop_assert_eq!(String::from_utf8(out).unwrap(), client);
        }

        /// Anything that is not an OpenAI chunk passes as it is.
        #[test]
        fn other_streams_pass_unchanged(text in "[a-z:{}\" \n]{0,300}", cuts in proptest::collection::vec(0usize..300, 0..5)) {
            prop_assume!(!text.contains("usage"));
            let mut cuts = cuts;
            cuts.sort_unstable();
            let out = run(text.as_bytes(), &cuts);
            prop_assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn an_endless_event_is_passed_on() {
        let mut s = StripUsage::default();
        let big = vec![b'x'; MAX_EVENT + 1];
        assert_eq!(s.push(&big).len(), big.len());
        assert!(s.finish().is_empty());
    }
}
