//! A real HTTP CONNECT proxy for tests (Debian's `tinyproxy` package): started in the
//! foreground on a free 127.0.0.1 port with basic authentication, its log in a temporary
//! directory, killed when dropped. Where it is not installed, [`Tinyproxy::start`] prints why
//! and returns `None` and the test skips, unless `TINYPROXY_REQUIRED` is set (CI sets it).

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test harness: a failed setup must abort the test"
)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user every test proxy accepts.
pub const USER: &str = "ai-proxy";
/// Its password.
pub const PASSWORD: &str = "egress-test-password-7f3a";

/// A running tinyproxy.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Tinyproxy {
    /// Starts one that requires [`USER`]/[`PASSWORD`] and tunnels only to `connect_port`, or
    /// explains why not and returns `None`.
    pub fn start(connect_port: u16) -> Option<Self> {
        if Command::new("tinyproxy").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("TINYPROXY_REQUIRED").is_none(),
                "TINYPROXY_REQUIRED is set but tinyproxy is not installed"
            );
            eprintln!("SKIPPED: tinyproxy is not installed (apt-get install -y tinyproxy)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir =
            std::env::temp_dir().join(format!("tinyproxy-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\n\
                 Allow 127.0.0.1\nBasicAuth {USER} {PASSWORD}\nConnectPort {connect_port}\n\
                 DisableViaHeader Yes\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("tinyproxy.log")).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tinyproxy starts");
        let proxy = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen within 10 s: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(proxy)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
