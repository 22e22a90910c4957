//! The access log's output: JSON lines collected in memory and written to stdout in batches
//! (at 32 KiB, and at least every 100 ms), so a busy proxy does not pay one write(2) per
//! request. Other logs (start, shutdown, warnings) go through `tracing` straight to stdout.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Batch size that triggers an immediate write.
const FLUSH_AT: usize = 32 * 1024;

/// Appends one line (`line` writes it without the newline).
pub fn write_line(line: impl FnOnce(&mut Vec<u8>)) {
    let full = {
        let mut buf = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
        line(&mut buf);
        buf.push(b'\n');
        (buf.len() >= FLUSH_AT).then(|| std::mem::take(&mut *buf))
    };
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

/// Background task: flushes every 100 ms.
pub async fn flusher() {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        flush();
    }
}

/// Now as RFC 3339 UTC with microseconds, e.g. `2026-11-25T12:51:34.506373Z`.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(timestamp().len(), "2026-11-25T12:51:34.506373Z".len());
    }
}
