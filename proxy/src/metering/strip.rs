//! Takes back out of a stream what asking for usage added to it: the usage-only chunk before
//! `[DONE]` and the `"usage":null` member of every other chunk. The client receives the
//! stream it would have had; the relay has read the usage from the upstream's events already.
//!
//! An event hook: it sees the events the relay parsed (one grammar, [`crate::sse`]) and
//! touches only one shape, a single `data:` line carrying one JSON object with `"usage"`.

use bytes::Bytes;

use super::request::{is_usage_chunk, without_null_usage};
use crate::answer::hook::{EventHook, Verdict};
use crate::sse::Event;

/// The filter for one stream.
#[derive(Debug, Default)]
pub struct StripUsage;

static USAGE_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));

impl EventHook for StripUsage {
    fn event(&mut self, event: &Event<'_>) -> Verdict {
        let raw = event.raw();
        if USAGE_KEY.find(raw).is_none() {
            return Verdict::Pass;
        }
        let Some(data) = event.single_data() else {
            return Verdict::Pass;
        };
        if is_usage_chunk(data.value) {
            return Verdict::Drop;
        }
        match without_null_usage(data.value) {
            Some(clean) => {
                let (start, end) = data.span;
                let mut out = Vec::with_capacity(raw.len());
                out.extend_from_slice(&raw[..start]);
                out.extend_from_slice(&clean);
                out.extend_from_slice(&raw[end..]);
                Verdict::Replace(Bytes::from(out))
            }
            None => Verdict::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::answer::hook::Hooks;
    use crate::sse::Splitter;

    /// The client's bytes for `input` cut at `cuts`, split and filtered as the relay does.
    fn run(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut splitter = Splitter::default();
        let mut hooks = Hooks::default();
        hooks.push(StripUsage);
        let mut out = Vec::new();
        let mut at = 0;
        let mut feed = |piece: &[u8], out: &mut Vec<u8>| {
            if let Some(run) = splitter.push(Bytes::copy_from_slice(piece)) {
                let sent = hooks.run(&run, |_| {}).unwrap_or(run);
                out.extend_from_slice(&sent);
            }
        };
        for &cut in cuts {
            let cut = cut.clamp(at, input.len());
            feed(&input[at..cut], &mut out);
            at = cut;
        }
        feed(&input[at..], &mut out);
        if let Some(rest) = splitter.finish() {
            out.extend_from_slice(&rest);
        }
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
}
