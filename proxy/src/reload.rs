//! Secret files that change while the proxy runs: the client key file, upstream keys, the
//! upstreams' TLS files (CA bundles, client certificates) and the egress proxy's password.
//!
//! Kubernetes updates a mounted Secret by writing a new directory and swapping the `..data`
//! symlink, so file events are unreliable (the watched path never changes); instead each file
//! is read every [`POLL`] through its path and applied when its content differs from the last
//! content seen. A new content that cannot be used is logged and counted once, and the keys in
//! force stay; a missing or unreadable file likewise.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::observability::metrics::{FileLabels, Metrics};

/// How often watched files are read.
pub const POLL: Duration = Duration::from_secs(2);

/// Applies a file's new content (trailing whitespace trimmed): `Ok` describes the change for
/// the log (never a secret), `Err` says why the content was refused.
pub type Apply = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// One watched file.
pub struct Watched {
    /// The file (through the Secret mount's symlinks).
    pub path: PathBuf,
    /// The name in logs and metrics: `client_keys` or `upstream:<name>`.
    pub label: Arc<str>,
    /// The content in force at start.
    pub initial: String,
    /// What to do with a new content.
    pub apply: Apply,
}

/// A file's content as the watcher compares it (trailing whitespace trimmed; empty when it
/// cannot be read, so the first readable content counts as a change).
pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.trim_end().to_owned())
        .unwrap_or_default()
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Watches `file` forever.
pub async fn watch(file: Watched, metrics: Arc<Metrics>) {
    let labels = FileLabels {
        file: file.label.clone(),
    };
    metrics.key_reloads.get_or_create(&labels).inc_by(0);
    metrics.key_reload_failures.get_or_create(&labels).inc_by(0);
    let mut seen = digest(&file.initial);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A few hundred bytes from a local mount: reading blocks this housekeeping thread briefly.
        let read = std::fs::read_to_string(&file.path);
        let (now, outcome) = match &read {
            Ok(text) => {
                let text = text.trim_end();
                let now = digest(text);
                if now == seen {
                    continue;
                }
                (now, (file.apply)(text))
            }
            Err(e) => {
                let kind = format!("unreadable: {}", e.kind());
                let now = digest(&kind);
                if now == seen {
                    continue;
                }
                (now, Err(format!("cannot read the file ({})", e.kind())))
            }
        };
        seen = now;
        match outcome {
            Ok(change) => {
                metrics.key_reloads.get_or_create(&labels).inc();
                tracing::info!(file = %file.label, path = %file.path.display(), change, "secret file reloaded");
            }
            Err(reason) => {
                metrics.key_reload_failures.get_or_create(&labels).inc();
                tracing::error!(
                    file = %file.label,
                    path = %file.path.display(),
                    reason,
                    "secret file changed but cannot be used; what was in force stays"
                );
            }
        }
    }
}
