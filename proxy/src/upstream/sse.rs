//! Server-sent event framing: only whole events are passed to the client, so a stream cut in
//! the middle of an event can still end with a well-formed error event (a partial `data:` line
//! followed by ours would reach the client as one broken event, which the SDKs fail to parse
//! instead of raising an API error).
//!
//! An upstream chunk that ends on an event boundary (the usual case) is passed on as it is;
//! otherwise its incomplete tail is held until the rest arrives. What is held is bounded by
//! [`MAX_HELD`]: an event larger than that is passed on unframed.

use bytes::{Bytes, BytesMut};

use crate::api_error::error_json;

/// The largest incomplete event held back.
pub const MAX_HELD: usize = 1024 * 1024;

/// Splits a stream into whole events.
#[derive(Debug, Default)]
pub struct Framer {
    held: BytesMut,
}

impl Framer {
    /// Takes a chunk; returns what can be sent now (whole events), if anything.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.held.is_empty() && ends_event(&chunk) {
            return Some(chunk);
        }
        self.held.extend_from_slice(&chunk);
        let complete = complete_len(&self.held);
        if complete == 0 && self.held.len() > MAX_HELD {
            return Some(self.held.split().freeze());
        }
        (complete > 0).then(|| self.held.split_to(complete).freeze())
    }

    /// The stream ended normally: whatever is held goes out as the upstream sent it.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.held.is_empty()).then(|| self.held.split().freeze())
    }

    /// The stream broke: what is held is dropped, and this event ends the stream instead.
    pub fn error_event(&mut self, message: &str, code: &str) -> Bytes {
        self.held.clear();
        // The leading blank line is harmless after a boundary (an empty event is never
        // dispatched) and completes a `\r` boundary that a `\n` could otherwise extend.
        Bytes::from(format!(
            "\ndata: {}\n\n",
            error_json(message, "server_error", None, code)
        ))
    }
}

/// Does `chunk` end exactly after a blank line?
fn ends_event(chunk: &[u8]) -> bool {
    chunk.ends_with(b"\n\n") || chunk.ends_with(b"\r\n\r\n") || chunk.ends_with(b"\r\r")
}

/// The length of the longest prefix of `buf` (which starts on an event boundary) that ends on
/// one. Lines end with `\r\n`, `\n` or `\r`; a blank line ends an event.
fn complete_len(buf: &[u8]) -> usize {
    let mut end = 0;
    let mut at_line_start = true;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        if b == b'\n' || b == b'\r' {
            let mut next = i + 1;
            if b == b'\r' && buf.get(next) == Some(&b'\n') {
                next += 1;
            }
            if at_line_start {
                end = next;
            }
            at_line_start = true;
            i = next;
        } else {
            at_line_start = false;
            i += 1;
        }
    }
    end
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client-side SSE parser as the specification (and the OpenAI SDKs) read streams: the
    /// `data` of each dispatched event.
    pub fn parse(stream: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(stream)
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        let mut events = Vec::new();
        let mut data: Option<String> = None;
        let mut lines: Vec<&str> = text.split('\n').collect();
        // The last piece has no terminator: an incomplete line, never dispatched.
        lines.pop();
        for line in lines {
            if line.is_empty() {
                if let Some(d) = data.take() {
                    events.push(d);
                }
            } else if let Some(v) = line.strip_prefix("data:") {
                let v = v.strip_prefix(' ').unwrap_or(v);
                data = Some(match data.take() {
                    Some(d) => format!("{d}\n{v}"),
                    None => v.to_owned(),
                });
            }
        }
        events
    }

    #[test]
    fn holds_incomplete_events_until_they_end() {
        let mut f = Framer::default();
        assert_eq!(f.push(Bytes::from_static(b"data: {\"a\"")), None);
        assert_eq!(
            f.push(Bytes::from_static(b":1}\n\ndata: {\"b\""))
                .as_deref(),
            Some(&b"data: {\"a\":1}\n\n"[..])
        );
        let end = f.error_event("cut", "upstream_stream_error");
        let events = parse(&[&b"data: {\"a\":1}\n\n"[..], &end].concat());
        assert_eq!(events.len(), 2);
        assert!(events[1].starts_with("{\"error\":"));
    }

    fn eol() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
    }

    proptest! {
        /// However a stream of events is split into chunks and wherever it is cut, the client
        /// receives exactly the events that arrived whole, then one error event whose data is
        /// OpenAI's error JSON.
        #[test]
        fn a_cut_stream_ends_with_one_well_formed_error_event(
            events in proptest::collection::vec("[a-z0-9 {}\":,]{1,30}", 1..8),
            eol in eol(),
            cuts in proptest::collection::vec(0usize..400, 0..6),
            stop in 0usize..400,
        ) {
            let mut stream = Vec::new();
            let mut ends = Vec::new();
            for e in &events {
                stream.extend_from_slice(format!("data: {e}{eol}{eol}").as_bytes());
                ends.push(stream.len());
            }
            let stop = stop.min(stream.len());
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(stop)).collect();
            points.push(stop);
            points.sort_unstable();
            let mut framer = Framer::default();
            let mut out = Vec::new();
            let mut at = 0;
            for p in points {
                if let Some(b) = framer.push(Bytes::copy_from_slice(&stream[at..p])) {
                    out.extend_from_slice(&b);
                }
                at = p;
            }
            // With `\r\n`, an event is whole once the `\r` of its blank line is in: a lone
            // `\r` ends a line too.
            let slack = usize::from(eol == "\r\n");
            let whole = ends.iter().filter(|&&e| e - slack <= stop).count();
            out.extend_from_slice(&framer.error_event("cut", "upstream_stream_error"));
            let got = parse(&out);
            prop_assert_eq!(got.len(), whole + 1, "{:?}", String::from_utf8_lossy(&out));
            for (g, e) in got[..whole].iter().zip(&events) {
                prop_assert_eq!(g, e);
            }
            let last: serde_json::Value = serde_json::from_str(got.last().unwrap()).unwrap();
            prop_assert_eq!(&last["error"]["code"], "upstream_stream_error");
        }

        /// A stream that ends normally is passed on byte for byte, however it is chunked.
        #[test]
        fn an_uncut_stream_is_passed_on_unchanged(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            points.push(body.len());
            points.sort_unstable();
            let mut framer = Framer::default();
            let mut out = Vec::new();
            let mut at = 0;
            for p in points {
                if let Some(b) = framer.push(Bytes::copy_from_slice(&body[at..p])) {
                    out.extend_from_slice(&b);
                }
                at = p;
            }
            if let Some(b) = framer.finish() {
                out.extend_from_slice(&b);
            }
            prop_assert_eq!(out, body);
        }
    }
}
