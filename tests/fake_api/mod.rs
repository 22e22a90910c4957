//! A stand-in Kubernetes API server on 127.0.0.1 that fails every request with a 500
//! (`InternalError` Status, as the real one sends), recording what it was asked.
//!
//! What it fakes, and why it is still here: a broken API server, which the real control plane
//! (`tests/plane`, `tests/e2e_*.rs`) cannot show cheaply. It has no storage, no server-side
//! apply, no RBAC and no controllers: every claim about how apply behaves against Kubernetes is
//! proven on the real plane instead. An unreachable server needs no stand-in (a closed port).

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::json;

use crate::sandbox::Sandbox;

/// The stand-in and a scratch folder with a kubeconfig pointing at it.
pub struct Fake {
    requests: Arc<Mutex<Vec<(Method, String)>>>,
    pub sandbox: Sandbox,
}

impl Fake {
    /// Starts the stand-in on a free port.
    pub fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = requests.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            seen.lock().unwrap().push((method, uri.path().to_owned()));
            async {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500});
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(status)).into_response()
            }
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let fake = Self {
            requests,
            sandbox: Sandbox::new(),
        };
        fake.write_kubeconfig(port);
        fake
    }

    /// Points the kubeconfig at `port` on 127.0.0.1 instead.
    pub fn write_kubeconfig(&self, port: u16) {
        fs::write(
            self.kubeconfig(),
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 users:\n- name: fake\n  user: {{}}\n"
            ),
        )
        .unwrap();
    }

    /// The scratch kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.sandbox.root().join("kubeconfig")
    }

    /// Every request so far: method and path.
    pub fn requests(&self) -> Vec<(Method, String)> {
        self.requests.lock().unwrap().clone()
    }
}
