//! A temporary copy of the committed `environments/`, for tests that run the real `infra`
//! binary on files they may break; removed on drop.

#![allow(
    dead_code,
    reason = "each test crate that includes this module uses a part of it"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The scratch folder: `<root>/environments/*.toml`, and whatever the test writes beside it.
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    /// A fresh copy under the system's temporary folder, named after the test crate.
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "infra-{}-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let envs = root.join("environments");
        fs::create_dir_all(&envs).unwrap();
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        for entry in fs::read_dir(committed).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                fs::copy(&path, envs.join(path.file_name().unwrap())).unwrap();
            }
        }
        Self { root }
    }

    /// The folder itself (the working directory of [`Sandbox::infra`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An environment file of the copy.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join("environments").join(name)
    }

    /// Where `render` writes by default: `<root>/out`.
    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    /// Replaces the one occurrence of `from` in `name`; returns its 1-based line number.
    pub fn edit(&self, name: &str, from: &str, to: &str) -> usize {
        let path = self.file(name);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{from:?} in {name}");
        let line = text[..text.find(from).unwrap()].lines().count() + 1;
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        line
    }

    /// Appends `extra` as lines of its own to `name`.
    pub fn append(&self, name: &str, extra: &str) {
        let path = self.file(name);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
    }

    /// `infra`, started in the sandbox without colour and without any `INFRA_*` or
    /// `KUBERNETES_*` variable of the test's own environment.
    pub fn infra(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("INFRA_") || key.starts_with("KUBERNETES_") {
                cmd.env_remove(&*key);
            }
        }
        cmd.current_dir(&self.root).env("NO_COLOR", "1");
        cmd
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
