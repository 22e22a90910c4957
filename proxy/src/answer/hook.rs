//! Event hooks: what sees, and may change, each server-sent event of a relayed stream on its
//! way to the client. The relay parses each event once ([`crate::sse`]) and hands it to the
//! hooks in order; metering's usage filter is one, a translation between API dialects or a
//! failover observer would be others. A hook that changes nothing costs no copy: the
//! upstream's bytes go out as they came.

use bytes::Bytes;

use crate::observability::facts::Usage;
use crate::sse::Event;

/// What becomes of one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Sent as it arrived.
    Pass,
    /// Not sent.
    Drop,
    /// These bytes (zero or more whole events) are sent instead; later hooks see them.
    Replace(Bytes),
}

/// How a stream ended, as hooks learn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The upstream finished its answer.
    Complete,
    /// It was cut after its first byte, for this reason (`reset`, `idle_timeout`,
    /// `total_timeout`, `shutdown`).
    Broken(&'static str),
}

/// Sees each event of one stream, in order.
pub trait EventHook: Send {
    /// One whole event from upstream (or from an earlier hook's [`Verdict::Replace`]).
    fn event(&mut self, event: &Event<'_>) -> Verdict;

    /// The stream ended; bytes returned (whole events) are sent before the end (before the
    /// error event of a broken stream).
    fn end(&mut self, _end: End) -> Option<Bytes> {
        None
    }

    /// The answer's usage as this hook reads it (e.g. summed over spliced streams, or from a
    /// dialect that reports it in parts); the last hook's `Some` wins over the relay's own
    /// reading (the last `"usage"` object of the upstream's events).
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// The hooks of one stream, applied in order.
#[derive(Default)]
pub struct Hooks {
    hooks: Vec<Box<dyn EventHook>>,
    /// The last event ended with `\r` and what was sent for it did not: a `\n` that starts
    /// the next run completes that `\r\n`, and goes where its `\r` went.
    stray_lf: bool,
}

impl Hooks {
    /// Adds `hook` after the others.
    pub fn push(&mut self, hook: impl EventHook + 'static) {
        self.hooks.push(Box::new(hook));
    }

    /// No hooks: events pass unparsed unless the relay reads them itself.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Runs the hooks over a run of whole events; `None` when every event passed (the run
    /// goes out as it is), else what the client gets instead. `each` sees every upstream event
    /// first.
    pub fn run(&mut self, run: &Bytes, mut each: impl FnMut(&Event<'_>)) -> Option<Bytes> {
        let mut out: Option<Vec<u8>> = None;
        let mut at = 0;
        for event in crate::sse::events(run) {
            let raw = event.raw();
            let start = at;
            at += raw.len();
            let mut pieces = Vec::new();
            let stray = std::mem::take(&mut self.stray_lf) && start == 0 && raw == b"\n";
            let passed = !stray && {
                each(&event);
                apply(&mut self.hooks, &event, &mut pieces)
            };
            // A `\n` completing this event's `\r\n` goes out only after a `\r` that went out.
            let sent_cr = if passed {
                true
            } else {
                pieces.last().is_some_and(|p| p.ends_with(b"\r"))
            };
            self.stray_lf = raw.ends_with(b"\r") && !sent_cr;
            if passed {
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(raw);
                }
                continue;
            }
            let out = out.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(run.len());
                v.extend_from_slice(&run[..start]);
                v
            });
            for p in pieces {
                out.extend_from_slice(&p);
            }
        }
        out.map(Bytes::from)
    }

    /// The usage the last hook that reports one reports.
    pub fn usage(&self) -> Option<Usage> {
        self.hooks.iter().rev().find_map(|h| h.usage())
    }

    /// The stream ended: what the hooks add before its end, in order.
    pub fn end(&mut self, end: End) -> Option<Bytes> {
        let mut out = Vec::new();
        for i in 0..self.hooks.len() {
            let Some((hook, later)) = self.hooks.get_mut(i..).and_then(|s| s.split_first_mut())
            else {
                break;
            };
            if let Some(extra) = hook.end(end) {
                for e in crate::sse::events(&extra) {
                    let mut pieces = Vec::new();
                    if apply(later, &e, &mut pieces) {
                        out.extend_from_slice(e.raw());
                    } else {
                        pieces.iter().for_each(|p| out.extend_from_slice(p));
                    }
                }
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// Applies `hooks` to `event`: `true` if it passes unchanged, else its replacement in `out`.
fn apply(hooks: &mut [Box<dyn EventHook>], event: &Event<'_>, out: &mut Vec<Bytes>) -> bool {
    let Some((hook, later)) = hooks.split_first_mut() else {
        return true;
    };
    match hook.event(event) {
        Verdict::Pass => apply(later, event, out),
        Verdict::Drop => false,
        Verdict::Replace(bytes) => {
            for e in crate::sse::events(&bytes) {
                if apply(later, &e, out) {
                    out.push(bytes.slice_ref(e.raw()));
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Upper;
    impl EventHook for Upper {
        fn event(&mut self, e: &Event<'_>) -> Verdict {
            match e.data().as_deref() {
                Some(b"drop") => Verdict::Drop,
                Some(b"two") => Verdict::Replace(Bytes::from_static(b"data: 2a\n\ndata: 2b\n\n")),
                _ => Verdict::Pass,
            }
        }
        fn end(&mut self, end: End) -> Option<Bytes> {
            (end == End::Complete).then(|| Bytes::from_static(b"data: bye\n\n"))
        }
    }

    struct NoB;
    impl EventHook for NoB {
        fn event(&mut self, e: &Event<'_>) -> Verdict {
            if e.data().as_deref() == Some(b"2b") {
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        }
    }

    #[test]
    fn hooks_pass_drop_and_replace_in_order() {
        let mut hooks = Hooks::default();
        assert!(hooks.is_empty());
        hooks.push(Upper);
        hooks.push(NoB);
        let run = Bytes::from_static(b"data: a\n\ndata: drop\n\ndata: two\n\ndata: z\n\n");
        let mut seen = 0;
        let out = hooks.run(&run, |_| seen += 1).unwrap();
        assert_eq!(seen, 4);
        assert_eq!(&out[..], b"data: a\n\ndata: 2a\n\ndata: z\n\n");
        let same = Bytes::from_static(b"data: a\n\n");
        assert_eq!(
            hooks.run(&same, |_| {}),
            None,
            "unchanged runs are not copied"
        );
        assert_eq!(
            hooks.end(End::Complete).as_deref(),
            Some(&b"data: bye\n\n"[..])
        );
        assert_eq!(hooks.end(End::Broken("reset")), None);
    }
}
