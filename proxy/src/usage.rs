//! Token usage from the end of an upstream answer, without parsing the whole body.
//!
//! OpenAI puts `usage` near the end of a JSON answer, and in the last data event of a stream
//! (when `stream_options.include_usage` is set). The relay keeps the last few kilobytes (as
//! shared chunks, not copies) and this module finds the last `"usage":{…}` object in them.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Deserialize;

/// How much of the answer's end is kept.
const TAIL_BYTES: usize = 8 * 1024;

/// Token counts of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The last chunks of an answer.
#[derive(Debug, Default)]
pub struct Tail {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Tail {
    /// Keeps `chunk` (a reference-counted handle) and drops chunks no longer needed.
    pub fn push(&mut self, chunk: &Bytes) {
        self.chunks.push_back(chunk.clone());
        self.len += chunk.len();
        while let Some(front) = self.chunks.front() {
            if self.len - front.len() < TAIL_BYTES {
                break;
            }
            self.len -= front.len();
            self.chunks.pop_front();
        }
    }

    /// The last `usage` object in the kept bytes, if any.
    pub fn usage(&self) -> Option<Usage> {
        let mut text = Vec::with_capacity(self.len);
        for c in &self.chunks {
            text.extend_from_slice(c);
        }
        find_usage(&text)
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
            tail.push(&Bytes::copy_from_slice(part));
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
            tail.push(&Bytes::from(vec![b'x'; 1000]));
        }
        assert!(tail.len < TAIL_BYTES + 1000);
    }
}
