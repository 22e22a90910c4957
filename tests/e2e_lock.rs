//! One apply at a time on the real control plane (`tests/plane`): a second apply of an
//! environment fails at once naming the holder of its Lease, or queues with
//! `--wait-for-lock`; a SIGKILLed holder's lease expires and nothing stays locked. The first
//! apply is kept busy by a rollout that cannot finish (kwok fails the pull of a bad image).
//! Skipped, saying why, when the plane is not built.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod cluster;
mod plane;
mod sandbox;

use std::process::{Child, Stdio};
use std::time::Duration;

use cluster::{Cluster, stderr, stdout};

const LEASE: &str = "lease/applyset-ai-api-proxy-lock";

/// Starts `infra apply --env development` of a bad image that waits `timeout`, and returns
/// once it holds the lock.
fn busy_apply(c: &Cluster, timeout: &str) -> Child {
    let child = c
        .infra_command(
            "apply",
            "development",
            &[
                "--set",
                "image.tag=0.0.0-does-not-exist",
                "--timeout",
                timeout,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.plane
        .wait_for(
            "the first apply to take the lock",
            Duration::from_secs(30),
            || c.exists(LEASE).then_some(()),
        )
        .unwrap();
    child
}

fn holder(c: &Cluster) -> String {
    c.get(LEASE)["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_second_apply_is_refused_naming_the_holder_or_queues_for_the_lock() {
    let Some(c) = Cluster::new("lock") else {
        return;
    };
    c.infra_ok("apply", "development", &["--no-wait"]);
    let first = busy_apply(&c, "12s");
    let held_by = holder(&c);
    assert!(held_by.contains("(pid "), "{held_by}");

    let out = c.infra("apply", "development", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "another apply of this environment is running: Lease {}/applyset-ai-api-proxy-lock is held by {held_by} since ",
            c.ns
        )),
        "{err}"
    );
    assert!(err.contains("--wait-for-lock"), "{err}");

    // Queued, it runs once the first is done (it fails: its rollout cannot finish).
    let queued = c.infra_ok(
        "apply",
        "development",
        &["--no-wait", "--wait-for-lock", "60s"],
    );
    assert!(queued.contains("Waiting for the lock: Lease"), "{queued}");
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", stdout(&first));
    assert!(
        stderr(&first).contains("ImagePullBackOff"),
        "{}",
        stderr(&first)
    );
    // Both recorded, in the order they held the lock; nothing left locked.
    assert!(
        queued.contains("Recorded revision 3 (deployed)."),
        "{queued}"
    );
    assert!(!c.exists(LEASE));
}

#[test]
fn a_killed_apply_leaves_a_lease_that_expires() {
    let Some(c) = Cluster::new("killed") else {
        return;
    };
    c.infra_ok("apply", "development", &["--no-wait"]);
    let mut first = busy_apply(&c, "120s");
    let held_by = holder(&c);
    // SIGKILL: no chance to let the lock go.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(c.exists(LEASE));

    let out = c.infra("apply", "development", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&held_by), "{}", stderr(&out));
    assert!(stderr(&out).contains("expires at"), "{}", stderr(&out));

    let out = c.infra_ok(
        "apply",
        "development",
        &["--no-wait", "--wait-for-lock", "60s"],
    );
    assert!(out.contains("Waiting for the lock"), "{out}");
    assert!(out.contains("Recorded revision 2 (deployed)."), "{out}");
    assert!(!c.exists(LEASE));
}
