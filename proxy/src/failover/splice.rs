//! The splice of one streamed chat completion across upstreams: a state machine fed every
//! whole event the client is sent. On the first attempt it only looks (the events go out as
//! the upstream wrote them) and keeps the text delivered, whether a tool call or the end has
//! begun, and the answer's `id`, `created` and `model`. When the stream breaks, [`Splice::fail`]
//! says whether continuing is safe; after it, each event of the continuing upstream is
//! rewritten so the client sees one answer:
//!
//! - `id`, `created` and `model` are the first attempt's, in every chunk;
//! - the continuing upstream's opening `role` is dropped (the client has had one), and a chunk
//!   left with nothing in it is not sent;
//! - while the continuing upstream's text repeats the delivered text from its start, it is
//!   held; a repetition of all of it is dropped (so is one the upstream ends before its end),
//!   anything else is sent, held part included;
//! - `usage` is the sum over the attempts: the continuing upstream's own plus, for each broken
//!   attempt (whose usage is never reported), an estimate (see [`Splice::total`]).
//!
//! One `finish_reason` and one `[DONE]` follow from the broken attempt having sent neither:
//! after either, continuing is refused.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::Refusal;
use super::chunk::{self, Event};
use super::request::INSTRUCTION;
use crate::observability::facts::Usage;

/// The most text a stream may have delivered and still be continued: it is held, per stream,
/// for the continuation's prompt (256 KiB is about 64,000 tokens, beyond any model's output).
pub const MAX_DELIVERED: usize = 256 * 1024;

/// Tokens the continuation's two added messages cost beyond the delivered text: the
/// instruction (four bytes a token) and the framing of two messages.
const INSTRUCTION_TOKENS: u64 = INSTRUCTION.len().div_ceil(4) as u64 + 8;

/// What the client is sent for one upstream event.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// The event as the upstream wrote it.
    Same,
    /// Instead of the event: these bytes (whole events), possibly none.
    Send(Bytes),
    /// The upstream ended the stream with an error event: a failure, like a reset.
    Failed,
}

/// What [`Splice::fail`] hands the next upstream.
#[derive(Debug, PartialEq)]
pub struct Handover<'a> {
    /// The text the client has received, to be continued.
    pub delivered: &'a str,
    /// Completion tokens the broken attempts produced (estimated).
    pub used: u64,
}

/// The fields every chunk of the answer keeps from its first chunk.
const IDS: [&str; 3] = ["id", "created", "model"];

/// A broken attempt, for the usage estimate.
#[derive(Debug)]
struct Broken {
    /// Completion tokens it produced (estimated from what it delivered).
    completion: u64,
    /// Its prompt carried the continuation's instruction.
    instructed: bool,
}

/// The state of one stream's splice.
#[derive(Debug, Default)]
pub struct Splice {
    attempt: u32,
    /// The first chunk's `id`, `created` and `model` (those it had), as it wrote them.
    ids: Option<Vec<(&'static str, Value)>>,
    role_sent: bool,
    delivered: String,
    too_long: bool,
    in_call: bool,
    finished: bool,
    /// The current attempt's content chunks and characters delivered.
    chunks: u64,
    chars: u64,
    /// The current attempt's prompt carries the instruction.
    instructed: bool,
    broken: Vec<Broken>,
    /// While `Some`: the continuing upstream has repeated `delivered[..at]`, in `held`.
    echo: Option<(usize, Vec<Map<String, Value>>)>,
    usage: Option<Usage>,
}

impl Splice {
    /// Takes one whole event's `data` and says what the client gets for it.
    pub fn event(&mut self, data: &[u8]) -> Out {
        if self.attempt == 0 {
            self.observe(data)
        } else {
            self.rewrite(data)
        }
    }

    /// The stream broke: `Err` with the reason when continuing is not safe; otherwise the
    /// delivered text, and the events that follow are the next upstream's.
    pub fn fail(&mut self) -> Result<Handover<'_>, Refusal> {
        if self.finished {
            return Err(Refusal::Finished);
        }
        if self.in_call {
            return Err(Refusal::ToolCall);
        }
        if self.too_long {
            return Err(Refusal::TooLong);
        }
        let completion = self.chunks.max(self.chars.div_ceil(4));
        self.broken.push(Broken {
            completion,
            instructed: self.instructed,
        });
        self.attempt += 1;
        self.chunks = 0;
        self.chars = 0;
        self.instructed = !self.delivered.is_empty();
        self.echo = self.instructed.then(|| (0, Vec::new()));
        Ok(Handover {
            delivered: &self.delivered,
            used: self.broken.iter().map(|b| b.completion).sum(),
        })
    }

    /// The text delivered so far.
    #[cfg(test)]
    pub fn delivered(&self) -> &str {
        &self.delivered
    }

    /// The summed usage sent to the client, once a continuing upstream reported its own.
    #[cfg(test)]
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn observe(&mut self, data: &[u8]) -> Out {
        let peek = match Event::read(data) {
            Event::Error => return Out::Failed,
            Event::Done | Event::Other => return Out::Same,
            Event::Chunk(peek) => peek,
        };
        if self.ids.is_none() {
            let ids = IDS.into_iter().zip([peek.id, peek.created, peek.model]);
            self.ids = Some(
                ids.filter_map(|(k, raw)| Some((k, serde_json::from_str(raw?.get()).ok()?)))
                    .collect(),
            );
        }
        if let Some(choice) = peek.first() {
            if let Some(delta) = &choice.delta {
                self.role_sent |= delta.role.is_some();
                self.in_call |= delta.calls();
                if let Some(text) = delta.content.as_deref() {
                    self.deliver(text);
                }
            }
            self.finished |= choice.finish_reason.is_some();
        }
        Out::Same
    }

    fn rewrite(&mut self, data: &[u8]) -> Out {
        let Ok(Value::Object(mut c)) = serde_json::from_slice::<Value>(data) else {
            // `[DONE]`, or not JSON: an unfinished repetition ends with the attempt.
            self.echo = None;
            return Out::Same;
        };
        if c.contains_key("error") && !c.contains_key("choices") {
            return Out::Failed;
        }
        match &self.ids {
            Some(ids) => {
                for (k, v) in ids {
                    c.insert((*k).into(), v.clone());
                }
            }
            None => {
                let ids = IDS.into_iter().filter_map(|k| Some((k, c.get(k)?.clone())));
                self.ids = Some(ids.collect());
            }
        }
        let (text, calls) = self.read_choice(&mut c);
        if let Some(usage) = c.get_mut("usage").and_then(Value::as_object_mut) {
            let last: Usage =
                serde_json::from_value(Value::Object(usage.clone())).unwrap_or_default();
            let total = self.total(last);
            usage.insert("prompt_tokens".into(), total.prompt_tokens.into());
            usage.insert("completion_tokens".into(), total.completion_tokens.into());
            let sum = total.prompt_tokens + total.completion_tokens;
            usage.insert("total_tokens".into(), sum.into());
            self.usage = Some(total);
        }
        let mut out = Vec::new();
        if let Some((at, mut held)) = self.echo.take() {
            let rest = &self.delivered[at..];
            if !text.is_empty() && !calls && rest.starts_with(&text) {
                held.push(c);
                let at = at + text.len();
                self.echo = (at < self.delivered.len()).then_some((at, held));
                return Out::Send(Bytes::new());
            }
            if !text.is_empty() && !calls && text.starts_with(rest) {
                let after = text[rest.len()..].to_owned();
                self.set_content(&mut c, &after);
                self.emit(c, &after, &mut out);
                return Out::Send(out.into());
            }
            if text.is_empty() && !calls && chunk::is_empty(&c) {
                self.echo = Some((at, held));
                return Out::Send(Bytes::new());
            }
            if !text.is_empty() || calls {
                // Not a repetition after all: what was held goes out first.
                for h in held {
                    let t = content(&h);
                    self.emit(h, &t, &mut out);
                }
            }
        }
        self.emit(c, &text, &mut out);
        Out::Send(out.into())
    }

    /// Drops a repeated role; notes text, calls and the end. Returns the chunk's text and
    /// whether it carries a call.
    fn read_choice(&mut self, c: &mut Map<String, Value>) -> (String, bool) {
        let Some(choice) = chunk::first_choice(c) else {
            return (String::new(), false);
        };
        self.finished |= choice.get("finish_reason").is_some_and(|f| !f.is_null());
        let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
            return (String::new(), false);
        };
        if self.role_sent {
            delta.remove("role");
        }
        self.role_sent |= delta.get("role").is_some_and(|r| !r.is_null());
        let calls = ["tool_calls", "function_call"]
            .iter()
            .any(|k| delta.get(*k).is_some_and(|v| !v.is_null()));
        self.in_call |= calls;
        let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
        (text.to_owned(), calls)
    }

    fn set_content(&self, c: &mut Map<String, Value>, text: &str) {
        if let Some(delta) = chunk::first_choice(c)
            .and_then(|choice| choice.get_mut("delta"))
            .and_then(Value::as_object_mut)
        {
            delta.insert("content".into(), text.into());
        }
    }

    fn emit(&mut self, c: Map<String, Value>, text: &str, out: &mut Vec<u8>) {
        if chunk::is_empty(&c) {
            return;
        }
        self.deliver(text);
        chunk::frame(&c, out);
    }

    fn deliver(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.chunks += 1;
        self.chars += text.chars().count() as u64;
        if self.too_long || self.delivered.len() + text.len() > MAX_DELIVERED {
            self.too_long = true;
            self.delivered = String::new();
            return;
        }
        self.delivered.push_str(text);
    }

    /// The usage of all attempts, from the last one's. A broken attempt's completion tokens
    /// are the larger of its content chunks and its characters / 4; its prompt tokens are the
    /// last attempt's less what the last prompt added since (the text delivered from that
    /// attempt on, and the instruction if the broken prompt lacked it).
    pub fn total(&self, last: Usage) -> Usage {
        let mut total = last;
        let mut since = 0;
        for b in self.broken.iter().rev() {
            since += b.completion;
            let instruction = if self.instructed && !b.instructed {
                INSTRUCTION_TOKENS
            } else {
                0
            };
            total.prompt_tokens += last.prompt_tokens.saturating_sub(since + instruction);
            total.completion_tokens += b.completion;
        }
        total
    }
}

/// The text of a chunk being rewritten.
fn content(c: &Map<String, Value>) -> String {
    c.get("choices")
        .and_then(|cs| cs.get(0))
        .and_then(|ch| ch.get("delta"))
        .and_then(|d| d.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
#[path = "splice_tests.rs"]
mod tests;
