//! Reads and writes an environment's rendered folder, `out/<env>/`.
//!
//! `write` builds the new folder beside the old one and swaps them with renames, so a failure
//! at any point leaves the old folder intact, and files of objects that left the plan vanish.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::render::File;

/// The files of `dir` (name → content); empty when the folder does not exist.
pub fn read(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if !path.is_file() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let Some(name) = name else { continue };
        let content =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.insert(name, content);
    }
    Ok(files)
}

/// Replaces `dir` with exactly `files`.
pub fn write(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let stem = dir.file_name().and_then(|n| n.to_str()).unwrap_or("env");
    let staging = sibling(parent, stem, "new");
    let retired = sibling(parent, stem, "old");
    let _ = fs::remove_dir_all(&staging);
    let result = fill(&staging, files).and_then(|()| swap(dir, &staging, &retired));
    let _ = fs::remove_dir_all(&staging);
    let _ = fs::remove_dir_all(&retired);
    result
}

fn sibling(parent: &Path, stem: &str, what: &str) -> PathBuf {
    parent.join(format!(".{stem}.{what}-{}", std::process::id()))
}

fn fill(staging: &Path, files: &[File]) -> anyhow::Result<()> {
    fs::create_dir(staging).with_context(|| format!("cannot create {}", staging.display()))?;
    for file in files {
        let path = staging.join(&file.name);
        fs::write(&path, &file.content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn swap(dir: &Path, staging: &Path, retired: &Path) -> anyhow::Result<()> {
    let had_old = match fs::rename(dir, retired) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot move {} aside", dir.display())),
    };
    if let Err(e) = fs::rename(staging, dir) {
        if had_old {
            let _ = fs::rename(retired, dir);
        }
        return Err(e).with_context(|| format!("cannot move the new files into {}", dir.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &str) -> File {
        File {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn write_replaces_the_folder_and_drops_stale_files() {
        let root = std::env::temp_dir().join(format!("infra-output-{}", std::process::id()));
        let dir = root.join("production");
        write(&dir, &[file("a.yaml", "a"), file("b.yaml", "b")]).unwrap();
        write(&dir, &[file("a.yaml", "a2")]).unwrap();
        let files = read(&dir).unwrap();
        assert_eq!(
            files,
            BTreeMap::from([("a.yaml".to_owned(), "a2".to_owned())])
        );
        let leftovers: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["production"], "no staging folders left behind");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reading_a_missing_folder_is_empty() {
        assert!(
            read(Path::new("/nonexistent/infra/out/x"))
                .unwrap()
                .is_empty()
        );
    }
}
