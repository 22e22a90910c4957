//! The plane's processes: each in its own process group with its output in `<plane>/<name>.log`,
//! and one watchdog that stops them all when the plane is dropped or the test binary exits,
//! however it exits (a panic, `std::process::exit`, a signal, SIGKILL): it waits for the end of
//! a pipe only the test process holds, then kills (SIGKILL: nothing of a test plane is worth a
//! graceful shutdown) every pid recorded in `<plane>/pids` whose command line still names the
//! plane's folder (never a reused pid), and removes the folder unless `E2E_PLANE_KEEP` is set.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

const WATCHDOG: &str = r#"
trap '' INT HUP TERM PIPE
read -r _
dir=$1 keep=$2
while read -r pid; do
  { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2> /dev/null | grep -qF -- "$dir" && kill -KILL "$pid"
done < "$dir/pids"
[[ -n $keep ]] || rm -rf "$dir"
"#;

/// The running processes of one plane.
pub struct Procs {
    dir: PathBuf,
    pids: File,
    children: Vec<(&'static str, Child)>,
    watchdog: Option<(ChildStdin, Child)>,
}

impl Procs {
    /// Starts the watchdog of `dir` (which must exist).
    pub fn new(dir: &Path) -> Result<Self, String> {
        let pids_path = dir.join("pids");
        let pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&pids_path)
            .map_err(|e| format!("{}: {e}", pids_path.display()))?;
        let keep = std::env::var("E2E_PLANE_KEEP").unwrap_or_default();
        let mut watchdog = Command::new("bash")
            .args(["-c", WATCHDOG, "plane-watchdog"])
            .arg(dir)
            .arg(keep)
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("watchdog: {e}"))?;
        let stdin = watchdog.stdin.take().ok_or("watchdog: no stdin")?;
        Ok(Self {
            dir: dir.to_owned(),
            pids,
            children: Vec::new(),
            watchdog: Some((stdin, watchdog)),
        })
    }

    /// Starts `cmd` as `name`, output appended to `<plane>/<name>.log`.
    pub fn spawn(&mut self, name: &'static str, mut cmd: Command) -> Result<(), String> {
        let log = self.log(name);
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{name}: {e}"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", cmd.get_program()))?;
        writeln!(self.pids, "{}", child.id()).map_err(|e| format!("pids: {e}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// An error naming the first process that has exited, with the end of its log.
    pub fn check(&mut self) -> Result<(), String> {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{name} exited ({status}); the end of {}:\n{}",
                    self.dir.join(format!("{name}.log")).display(),
                    tail(&self.dir.join(format!("{name}.log")))
                ));
            }
        }
        Ok(())
    }

    /// The log file of process `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// The last lines of every process's log.
    pub fn tails(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| format!("--- {name}.log\n{}", tail(&self.log(name))))
            .collect()
    }
}

impl Drop for Procs {
    /// Closes the watchdog's pipe, waits for it to stop everything, and reaps the processes.
    fn drop(&mut self) {
        if let Some((stdin, mut watchdog)) = self.watchdog.take() {
            drop(stdin);
            let _ = watchdog.wait();
        }
        for (_, child) in &mut self.children {
            // Already stopped by the watchdog, unless someone killed it first.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last 20 lines of a log.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n") + "\n"
}
