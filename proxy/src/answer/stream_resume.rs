//! Mid-stream failover in the relay: a break that the stream's [`Failover`] continues hands
//! the stream over to the next upstream's answer, awaited here (the drain deadline still
//! applies), then relayed in the broken one's place.

use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;

use super::{CUT, FramePoll, Stream, concat};
use crate::failover::relay::Resumed;
use crate::observability::facts::Facts;

/// What ends a stream whose continuation found no upstream: the break's own error event, or
/// the upstream's error event that broke it (relayed as it came, as without failover).
pub(super) enum Otherwise {
    /// The break's error event (its reason).
    Fail(&'static str),
    /// The upstream's error event, as it came.
    Event(Bytes),
}

impl Stream {
    /// A break the next upstream may continue (a reset or a stall, not a deadline): `true`
    /// when its answer is now awaited.
    pub(super) fn hand_over(&mut self, reason: &'static str, facts: &mut Facts) -> bool {
        if !matches!(reason, "reset" | "idle_timeout") {
            return false;
        }
        let Some(resume) = self
            .failover
            .as_mut()
            .and_then(|f| f.broke(&mut facts.failover))
        else {
            return false;
        };
        self.count_break(reason, facts);
        self.inner = None;
        if let Some(events) = self.events.as_mut() {
            events.splitter.clear();
        }
        self.resuming = Some((resume, Otherwise::Fail(reason)));
        true
    }

    /// Awaits the next upstream's answer: `None` once its stream is in place (its first chunk
    /// in `first`), else what to return now.
    pub(super) fn poll_resume(
        &mut self,
        cx: &mut Context<'_>,
        facts: &mut Facts,
    ) -> Option<FramePoll> {
        let cut = self
            .cut
            .get_or_insert_with(|| Box::pin(CUT.clone().cancelled_owned()));
        if cut.as_mut().poll(cx).is_ready() {
            self.resuming = None;
            return Some(self.fail("shutdown", facts));
        }
        let (resume, _) = self.resuming.as_mut()?;
        let Poll::Ready(resumed) = resume.as_mut().poll(cx) else {
            return Some(Poll::Pending);
        };
        let (_, otherwise) = self.resuming.take()?;
        if let Some(f) = self.failover.as_mut() {
            f.resumed(resumed.as_ref(), &mut facts.failover);
        }
        let Some(Resumed {
            upstream,
            body,
            first,
            idle,
        }) = resumed
        else {
            return Some(match otherwise {
                Otherwise::Fail(reason) => self.end_broken(reason, facts),
                Otherwise::Event(event) => {
                    let out = self.events.as_mut().map(|e| e.run(event));
                    let rest = self.finish(facts);
                    Poll::Ready(concat(out, rest).map(|b| Ok(Frame::data(b))))
                }
            });
        };
        facts.upstream = Some(upstream);
        self.inner = Some(body);
        self.first = first;
        self.idle = idle;
        self.rearm();
        None
    }
}
