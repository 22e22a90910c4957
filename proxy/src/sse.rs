//! Server-sent events: the one grammar of the proxy (WHATWG HTML, "Parsing an event stream").
//! Lines end with CRLF, LF or a lone CR; a blank line ends an event; a line starting with `:`
//! is a comment; `field: value` loses one space after the colon.
//!
//! [`Splitter`] cuts a byte stream at event boundaries, so only whole events are passed on (a
//! stream cut inside an event can still end with a well-formed error event); [`events`] walks
//! the events of what it returns, and [`Event`] reads one event's fields. The relay, metering
//! and every other event hook see the same events, parsed by these rules.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use crate::error_answer::error_json;

/// The largest incomplete event held back; a larger one is passed on unframed.
pub const MAX_EVENT: usize = 1024 * 1024;

/// Splits a stream into runs of whole events.
#[derive(Debug, Default)]
pub struct Splitter {
    held: BytesMut,
}

impl Splitter {
    /// Takes a chunk; returns what can be sent now (whole events), if anything. A chunk that
    /// ends on an event boundary while nothing is held (the usual case) comes back as it is.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.held.is_empty() {
            if ends_event(&chunk) {
                return Some(chunk);
            }
            let complete = complete_len(&chunk);
            if complete == chunk.len() {
                return Some(chunk);
            }
            self.held.extend_from_slice(&chunk[complete..]);
            return (complete > 0).then(|| chunk.slice(..complete));
        }
        let scanned = self.held.len();
        self.held.extend_from_slice(&chunk);
        // A boundary can start at most three bytes back (`\r\n\r\n`), never earlier: what was
        // held had none.
        let from = scanned.saturating_sub(3);
        let complete = complete_len_from(&self.held, from);
        if complete == 0 && self.held.len() > MAX_EVENT {
            return Some(self.held.split().freeze());
        }
        (complete > 0).then(|| self.held.split_to(complete).freeze())
    }

    /// The stream ended normally: whatever is held goes out as the upstream sent it.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.held.is_empty()).then(|| self.held.split().freeze())
    }

    /// The stream broke: what is held is dropped.
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// The event that ends a broken stream: OpenAI's error JSON as data, which the SDKs raise as
/// an API error. Its leading blank line is harmless after a boundary (an empty event is never
/// dispatched) and completes a `\r` boundary that a `\n` could otherwise extend.
pub fn error_event(message: &str, code: &str) -> Bytes {
    Bytes::from(format!(
        "\ndata: {}\n\n",
        error_json(message, "server_error", None, code)
    ))
}

/// Does `chunk` end exactly after a blank line?
fn ends_event(chunk: &[u8]) -> bool {
    chunk.ends_with(b"\n\n") || chunk.ends_with(b"\r\n\r\n") || chunk.ends_with(b"\r\r")
}

/// The length of the longest prefix of `buf` (which starts on an event boundary) that ends on
/// one.
fn complete_len(buf: &[u8]) -> usize {
    complete_len_from(buf, 0)
}

/// As [`complete_len`], knowing no event ends before `from` (which is at or before a line
/// start, or inside a line whose start is before it).
fn complete_len_from(buf: &[u8], from: usize) -> usize {
    let mut end = 0;
    let mut i = from;
    // Whether `i` is at a line start: at `from`, look at the byte before (and step over the
    // `\n` of a `\r\n` that `from` splits).
    let mut at_line_start = from == 0;
    if let Some(prev) = from.checked_sub(1).and_then(|p| buf.get(p)) {
        at_line_start = matches!(prev, b'\n' | b'\r');
        if *prev == b'\r' && buf.get(from) == Some(&b'\n') {
            i += 1;
        }
    }
    while let Some(rest) = buf.get(i..) {
        let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) else {
            break;
        };
        let at = i + pos;
        if pos > 0 {
            at_line_start = false;
        }
        let mut next = at + 1;
        if buf.get(at) == Some(&b'\r') && buf.get(next) == Some(&b'\n') {
            next += 1;
        }
        if at_line_start {
            end = next;
        }
        at_line_start = true;
        i = next;
    }
    end
}

/// The events of `run`, a run of whole events as [`Splitter::push`] returns it.
pub fn events(run: &[u8]) -> Events<'_> {
    Events { rest: run }
}

/// Iterator over whole events; see [`events`].
#[derive(Debug)]
pub struct Events<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Events<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // The first blank line ends the event; an unterminated tail is an event of its own.
        let mut i = 0;
        let mut end = self.rest.len();
        while let Some((_, next)) = line_at(self.rest, i) {
            let blank = next > i && matches!(self.rest.get(i), Some(b'\n' | b'\r'));
            i = next;
            if blank {
                end = next;
                break;
            }
        }
        let (raw, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(Event { raw })
    }
}

/// The line starting at `i`: the end of its content and where the next line starts.
fn line_at(buf: &[u8], i: usize) -> Option<(usize, usize)> {
    let rest = buf.get(i..).filter(|r| !r.is_empty())?;
    let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) else {
        return Some((buf.len(), buf.len()));
    };
    let at = i + pos;
    let mut next = at + 1;
    if buf.get(at) == Some(&b'\r') && buf.get(next) == Some(&b'\n') {
        next += 1;
    }
    Some((at, next))
}

/// One event as it arrived, its terminating blank line included.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    raw: &'a [u8],
}

/// One field line of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field's name (`data`, `event`, `id`, `retry` or anything else).
    pub name: &'a [u8],
    /// Its value, one leading space removed.
    pub value: &'a [u8],
    /// Where the value starts and ends in the event's bytes.
    pub span: (usize, usize),
}

impl<'a> Event<'a> {
    /// An event of these bytes.
    #[cfg(test)]
    pub fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// The event's bytes as they arrived.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The field lines, comments and blank lines skipped.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + 'a {
        let raw = self.raw;
        let mut i = 0;
        std::iter::from_fn(move || {
            loop {
                let (end, next) = line_at(raw, i)?;
                let start = i;
                i = next;
                let line = raw.get(start..end)?;
                if line.is_empty() || line.first() == Some(&b':') {
                    continue;
                }
                let (name, value_start) = match memchr::memchr(b':', line) {
                    Some(c) => {
                        let v = start + c + 1;
                        let v = if raw.get(v) == Some(&b' ') { v + 1 } else { v };
                        (line.get(..c)?, v.min(end))
                    }
                    None => (line, end),
                };
                return Some(Field {
                    name,
                    value: raw.get(value_start..end)?,
                    span: (value_start, end),
                });
            }
        })
    }

    /// The `data` buffer: data lines joined by `\n`; borrowed when there is one.
    pub fn data(&self) -> Option<Cow<'a, [u8]>> {
        let mut data: Option<Cow<'a, [u8]>> = None;
        for f in self.fields().filter(|f| f.name == b"data") {
            data = Some(match data {
                None => Cow::Borrowed(f.value),
                Some(d) => {
                    let mut owned = d.into_owned();
                    owned.push(b'\n');
                    owned.extend_from_slice(f.value);
                    Cow::Owned(owned)
                }
            });
        }
        data
    }

    /// The only field, when the event is one `data` line (OpenAI's chunks): its value's span.
    pub fn single_data(&self) -> Option<Field<'a>> {
        let mut fields = self.fields();
        let first = fields.next().filter(|f| f.name == b"data")?;
        fields.next().is_none().then_some(first)
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
pub mod tests;
