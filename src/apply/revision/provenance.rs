//! Where an applied environment came from: its files and their sha256, the names (never the
//! values) of the `INFRA_*` variables and `--set` keys on top of them, and the git commit (and
//! whether the work tree had uncommitted changes) when the files are in a repository.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::render;

/// The provenance of one revision (part of the store format: fields are only ever added).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The environment files in layer order.
    pub files: Vec<FileHash>,
    /// Names of the `INFRA_*` variables that were set.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Keys of the `--set` flags, in order.
    #[serde(default)]
    pub sets: Vec<String>,
    /// The repository's commit, when the files are in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Git>,
}

/// One environment file and the sha256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// The path as given (e.g. `environments/production.toml`).
    pub path: String,
    /// Lowercase hex sha256 of its content (`unreadable` when it could not be read).
    pub sha256: String,
}

/// A git commit and whether the work tree differed from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Git {
    /// The full commit id of `HEAD`.
    pub commit: String,
    /// Whether tracked files had uncommitted changes.
    pub dirty: bool,
}

impl Provenance {
    /// The provenance of a rendering: its files hashed, its override names split into
    /// variables and `--set` keys, and the git state of the first file's folder.
    pub fn of(rendered: &render::Provenance) -> Self {
        let files = rendered
            .files
            .iter()
            .map(|path| FileHash {
                path: path.clone(),
                sha256: std::fs::read(path)
                    .map(|bytes| hex(&Sha256::digest(bytes)))
                    .unwrap_or_else(|_| "unreadable".into()),
            })
            .collect();
        let (sets, variables): (Vec<&String>, Vec<&String>) = rendered
            .overrides
            .iter()
            .partition(|o| o.starts_with("--set "));
        let dir = rendered
            .files
            .first()
            .and_then(|f| Path::new(f).parent())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .unwrap_or(Path::new("."));
        Self {
            files,
            variables: variables.into_iter().cloned().collect(),
            sets: sets
                .into_iter()
                .map(|s| s.trim_start_matches("--set ").to_owned())
                .collect(),
            git: git(dir),
        }
    }

    /// `abc1234` or `abc1234+dirty`, or `-` outside a repository.
    pub fn commit_short(&self) -> String {
        match &self.git {
            Some(g) => format!(
                "{}{}",
                g.commit.get(..7).unwrap_or(&g.commit),
                if g.dirty { "+dirty" } else { "" }
            ),
            None => "-".into(),
        }
    }
}

/// `HEAD` of the repository holding `dir`, and whether tracked files changed; `None` outside
/// a repository or without git.
fn git(dir: &Path) -> Option<Git> {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = run(&["rev-parse", "--verify", "-q", "HEAD"])?;
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])?;
    Some(Git {
        commit,
        dirty: !dirty.is_empty(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_hashed_and_override_values_never_kept() {
        let dir = std::env::temp_dir().join(format!("infra-provenance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("base.toml");
        std::fs::write(&file, "abc").unwrap();
        let p = Provenance::of(&render::Provenance {
            env: "dev".into(),
            files: vec![file.display().to_string()],
            overrides: vec!["INFRA_REPLICAS".into(), "--set image.tag".into()],
        });
        assert_eq!(
            p.files[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(p.variables, ["INFRA_REPLICAS"]);
        assert_eq!(p.sets, ["image.tag"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let git = Provenance {
            git: Some(Git {
                commit: "0123456789abcdef".into(),
                dirty: true,
            }),
            ..Default::default()
        };
        assert_eq!(git.commit_short(), "0123456+dirty");
        assert_eq!(Provenance::default().commit_short(), "-");
    }
}
