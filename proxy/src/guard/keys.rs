//! The client key store: the parsed key file, replaced whole when the file changes.
//!
//! The file holds one `<id>:<sha256 hex of the key>` line per client; blank lines and lines
//! starting with `#` are ignored. Only ids ever reach logs and metrics. Readers take the current
//! map without a lock ([`arc_swap`]); a reload parses the new text completely first, so a bad
//! file never replaces good keys.

use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

/// Hash of each accepted key → client id.
pub type KeyMap = foldhash::HashMap<[u8; 32], Arc<str>>;

/// Why a key file cannot be used. Never contains the file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// One line is malformed.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: &'static str,
    },
    /// No key at all: every request would be refused.
    #[error("no client keys: every request would be refused")]
    Empty,
}

/// Parses a key file.
pub fn parse(text: &str) -> Result<KeyMap, KeyFileError> {
    let mut keys = KeyMap::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message| KeyFileError::Line {
            line: i + 1,
            message,
        };
        let (id, hex) = line
            .split_once(':')
            .ok_or_else(|| err("expected `<id>:<sha256 hex>`"))?;
        let (id, hex) = (id.trim(), hex.trim());
        if id.is_empty() {
            return Err(err("the client id is empty"));
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) || id.len() > 128 {
            return Err(err(
                "the client id must be printable ASCII, at most 128 characters",
            ));
        }
        let hash = parse_hex32(hex).ok_or_else(|| err("expected 64 hex digits after `:`"))?;
        if keys.insert(hash, Arc::from(id)).is_some() {
            return Err(err("this key hash is listed twice"));
        }
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(keys)
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a reload changed: client ids added and removed (ids only, never keys).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Keys now accepted that were not before.
    pub added: usize,
    /// Keys no longer accepted.
    pub removed: usize,
}

/// The keys in force.
pub struct KeyStore {
    keys: ArcSwap<KeyMap>,
}

impl KeyStore {
    /// A store holding `keys`.
    pub fn new(keys: KeyMap) -> Self {
        Self {
            keys: ArcSwap::from_pointee(keys),
        }
    }

    /// The client id of a presented key, if it is accepted.
    pub fn lookup(&self, key: &[u8]) -> Option<Arc<str>> {
        let hash: [u8; 32] = Sha256::digest(key).into();
        self.keys.load().get(&hash).cloned()
    }

    /// Replaces the keys with those of `text`; a bad file leaves the current keys in force.
    pub fn replace(&self, text: &str) -> Result<Change, KeyFileError> {
        let new = parse(text)?;
        let old = self.keys.load_full();
        let change = Change {
            added: new.keys().filter(|h| !old.contains_key(*h)).count(),
            removed: old.keys().filter(|h| !new.contains_key(*h)).count(),
        };
        self.keys.store(Arc::new(new));
        Ok(change)
    }
}

/// SHA-256 of `key` in lowercase hex: what goes in the key file.
#[cfg(test)]
pub fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replace_swaps_whole_files_and_keeps_old_keys_on_errors() {
        let store = KeyStore::new(parse(&format!("a:{}\n", hash_hex("sk-a"))).unwrap());
        assert_eq!(store.lookup(b"sk-a").as_deref(), Some("a"));
        let change = store.replace(&format!("b:{}\n", hash_hex("sk-b"))).unwrap();
        assert_eq!(
            change,
            Change {
                added: 1,
                removed: 1
            }
        );
        assert_eq!(store.lookup(b"sk-a"), None);
        assert_eq!(store.lookup(b"sk-b").as_deref(), Some("b"));
        assert_eq!(
            store.replace("b:zz"),
            Err(KeyFileError::Line {
                line: 1,
                message: "expected 64 hex digits after `:`"
            })
        );
        assert_eq!(store.replace("# nothing\n"), Err(KeyFileError::Empty));
        assert_eq!(store.lookup(b"sk-b").as_deref(), Some("b"));
    }

    #[test]
    fn errors_never_echo_the_line() {
        let err = parse("team:nothex-secretish").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("secretish"), "{err}");
    }

    proptest! {
        /// Any text either parses into exactly its well-formed lines or names a line; never panics.
        #[test]
        fn any_text_parses_or_names_a_line(text in "(?s).{0,400}") {
            match parse(&text) {
                Ok(keys) => prop_assert!(!keys.is_empty()),
                Err(KeyFileError::Line { line, .. }) => prop_assert!(line >= 1 && line <= text.lines().count()),
                Err(KeyFileError::Empty) => {}
            }
        }

        /// Written files round-trip: every listed key is found under its id, comments and blank
        /// lines (any line ending) change nothing.
        #[test]
        fn written_files_round_trip(
            entries in proptest::collection::btree_map("[a-z][a-z0-9-]{0,20}", "sk-[A-Za-z0-9]{8,40}", 1..8),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("# clients{eol}{eol}");
            let mut seen = std::collections::BTreeSet::new();
            for (id, key) in &entries {
                if seen.insert(key.clone()) {
                    text.push_str(&format!("  {id} : {}{eol}", hash_hex(key)));
                }
            }
            let keys = parse(&text).unwrap();
            let store = KeyStore::new(keys);
            for (id, key) in &entries {
                let found = store.lookup(key.as_bytes());
                prop_assert!(found.is_some());
                if seen.contains(key) && entries.values().filter(|k| *k == key).count() == 1 {
                    prop_assert_eq!(found.as_deref(), Some(id.as_str()));
                }
            }
            prop_assert_eq!(store.lookup(b"sk-not-listed"), None);
        }
    }
}
