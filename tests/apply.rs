//! `infra apply` and `infra plan --live` against API servers that fail: unreachable, or
//! answering 500. Everything else about apply is proven on the real control plane
//! (`tests/e2e_*.rs`).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

mod fake_api;
mod sandbox;

use std::process::Output;

use axum::http::Method;
use fake_api::Fake;

fn run(fake: &Fake, args: &[&str]) -> Output {
    fake.sandbox
        .infra()
        .arg("--environments")
        .arg(fake.sandbox.root().join("environments"))
        .args(args)
        .arg("--kubeconfig")
        .arg(fake.kubeconfig())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_unreachable_api_server_fails_before_anything_is_sent() {
    let fake = Fake::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fake.write_kubeconfig(closed);
    for args in [
        &["apply", "--env", "production"][..],
        &["plan", "--env", "production", "--live"],
    ] {
        let o = run(&fake, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error: cannot read the API server's discovery documents"),
            "{err}"
        );
        assert!(err.contains("Connection refused"), "{err}");
    }
}

#[test]
fn a_server_answering_500_fails_with_its_message_and_nothing_is_written() {
    let fake = Fake::start();
    let o = run(&fake, &["apply", "--env", "production"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot read the API server's discovery documents: etcdserver: request timed out (InternalError)"),
        "{err}"
    );
    let requests = fake.requests();
    assert!(!requests.is_empty());
    // Reads only, and the SelfSubjectReview that asks who we are (it stores nothing).
    assert!(
        requests.iter().all(|(m, path)| m == Method::GET
            || path == "/apis/authentication.k8s.io/v1/selfsubjectreviews"),
        "{requests:?}"
    );
}
