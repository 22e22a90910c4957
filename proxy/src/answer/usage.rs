//! Token usage from the end of an upstream answer, without parsing the whole body.
//!
//! OpenAI puts `usage` near the end of a JSON answer, and in the last data event of a stream
//! (when `stream_options.include_usage` is set). For a JSON answer the relay keeps a copy of
//! the last few kilobytes; for a stream it looks in each event that names `usage`. Either way
//! this module finds the last `"usage":{…}` object.

use crate::observability::facts::Usage;

/// How much of the answer's end is kept (a `usage` object with its details is ~0.5 KiB).
const TAIL_BYTES: usize = 4 * 1024;

/// The last bytes of an answer, copied: holding the chunks themselves would pin the
/// connection's whole read buffers for as long as the stream lasts.
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    /// Keeps the end of `chunk`, dropping bytes older than the last `TAIL_BYTES`.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
        let excess = (self.buf.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        if excess > 0 {
            self.buf.drain(..excess.min(self.buf.len()));
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The kept bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The last `usage` object in the kept bytes, if any.
    pub fn usage(&self) -> Option<Usage> {
        find_usage(&self.buf)
    }
}

/// Finds the last `"usage"` key followed by an object and parses that object.
pub fn find_usage(text: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\"";
    let mut end = text.len();
    while let Some(pos) = text[..end].windows(KEY.len()).rposition(|w| w == KEY) {
        let rest = text[pos + KEY.len()..].trim_ascii_start();
        if let Some(value) = rest.strip_prefix(b":") {
            let mut stream = serde_json::Deserializer::from_slice(value.trim_ascii_start())
                .into_iter::<Option<Usage>>();
            if let Some(Ok(Some(usage))) = stream.next() {
                return Some(usage);
            }
        }
        end = pos;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_usage_in_json_and_sse() {
        let json = br#"{"id":"x","choices":[{"text":"usage"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}"#;
        assert_eq!(
            find_usage(json),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 6
            })
        );
        let sse = b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        let mut tail = Tail::default();
        for part in sse.chunks(7) {
            tail.push(part);
        }
        assert_eq!(
            tail.usage(),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
        assert_eq!(find_usage(b"data: {\"usage\":null}"), None);
    }

    #[test]
    fn keeps_only_the_end() {
        let mut tail = Tail::default();
        for _ in 0..100 {
            tail.push(&[b'x'; 1000]);
        }
        tail.push(br#"{"usage":{"prompt_tokens":1}}"#);
        assert_eq!(tail.buf.len(), TAIL_BYTES);
        assert_eq!(tail.usage().unwrap().prompt_tokens, 1);
        tail.push(&[b'y'; 10_000]);
        assert_eq!(tail.buf.len(), TAIL_BYTES);
    }
}
