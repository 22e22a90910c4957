//! The access log's output: JSON lines collected in memory and written to stdout in batches
//! (at 32 KiB, and within 100 ms of a batch's first line), so a busy proxy does not pay one
//! write(2) per request and an idle one never wakes up for its log. Other logs (start,
//! shutdown, warnings) go through `tracing` straight to stdout.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Raised by the first line of a batch, for the flusher.
static PENDING: Notify = Notify::const_new();

/// Batch size that triggers an immediate write.
const FLUSH_AT: usize = 32 * 1024;

/// Appends one line (`line` writes it without the newline).
pub fn write_line(line: impl FnOnce(&mut Vec<u8>)) {
    let (first, full) = {
        let mut buf = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
        let first = buf.is_empty();
        line(&mut buf);
        buf.push(b'\n');
        (
            first,
            (buf.len() >= FLUSH_AT).then(|| std::mem::take(&mut *buf)),
        )
    };
    if first {
        PENDING.notify_one();
    }
    if let Some(out) = full {
        let _ = std::io::stdout().lock().write_all(&out);
    }
}

/// Writes everything collected so far.
pub fn flush() {
    let out = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|p| p.into_inner()));
    if !out.is_empty() {
        let _ = std::io::stdout().lock().write_all(&out);
    }
}

/// Background task: flushes within 100 ms of the first line of a batch, and sleeps while
/// nothing is logged.
pub async fn flusher() {
    loop {
        PENDING.notified().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        flush();
    }
}

/// Now as RFC 3339 UTC with microseconds, e.g. `2026-11-25T12:51:34.506373Z`.
pub fn timestamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let t = timestamp();
        assert_eq!(t.len(), "2026-11-25T12:51:34.506373Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
