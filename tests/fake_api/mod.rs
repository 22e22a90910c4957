//! A stand-in Kubernetes API server on 127.0.0.1 for `tests/apply.rs`: it speaks the REST wire
//! protocol `infra apply` uses (GET, server-side apply PATCH, LIST with labelSelector, DELETE
//! with DeleteOptions), keeps objects in memory, records every request, and reports the
//! Deployment's rollout as it is told to. Plus the scratch folder and kubeconfig pointing at it.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::sandbox::Sandbox;

pub const NS: &str = "ai-services";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ai-services/deployments/ai-api-proxy";
pub const INGRESS: &str =
    "/apis/networking.k8s.io/v1/namespaces/ai-services/ingresses/ai-api-proxy";
pub const PARENT: &str = "/api/v1/namespaces/ai-services/configmaps/applyset-ai-api-proxy";
/// kubectl's id of the ApplySet whose parent is ConfigMap ai-services/applyset-ai-api-proxy.
pub const APPLYSET_ID: &str = "applyset-jAaSmi-V8MfU0eDSkAuwfauQFEnTg14w8fbrfg4zINo-v1";
/// A value that must never be printed.
pub const SECRET_VALUE: &str = "sk-do-not-print-me";

/// How the stand-in reports the Deployment's rollout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rollout {
    /// Every replica updated and available.
    Done,
    /// Updated but never available.
    Never,
    /// The progress deadline has passed.
    DeadlineExceeded,
}

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

struct Cluster {
    objects: BTreeMap<String, Value>,
    requests: Vec<Request>,
    rollout: Rollout,
    resource_version: u64,
}

type Shared = Arc<Mutex<Cluster>>;

/// The stand-in API server and a scratch folder with a kubeconfig and a copy of environments/.
pub struct Fake {
    state: Shared,
    pub sandbox: Sandbox,
}

impl Fake {
    pub fn start(rollout: Rollout) -> Self {
        let state = Arc::new(Mutex::new(Cluster {
            objects: BTreeMap::new(),
            requests: Vec::new(),
            rollout,
            resource_version: 100,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().fallback(handle).with_state(state.clone());
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

        let sandbox = Sandbox::new();
        fs::write(
            sandbox.root().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 users:\n- name: fake\n  user: {{}}\n"
            ),
        )
        .unwrap();
        Self { state, sandbox }
    }

    /// The namespace and both Secrets the proxy reads, each with its key.
    pub fn with_secrets(self) -> Self {
        self.put_namespace();
        self.put_secret("holysheep-api-key", "api-key");
        self.put_secret("ai-api-client-keys", "keys");
        self.put_secret("ai-api-redis", "password");
        self
    }

    pub fn put_namespace(&self) {
        self.put(
            &format!("/api/v1/namespaces/{NS}"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        );
    }

    pub fn put_secret(&self, name: &str, key: &str) {
        let encoded = base64(SECRET_VALUE);
        self.put(
            &format!("/api/v1/namespaces/{NS}/secrets/{name}"),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": name, "namespace": NS}, "data": {key: encoded}}),
        );
    }

    pub fn put(&self, path: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        state.objects.insert(path.into(), object);
    }

    pub fn has(&self, path: &str) -> bool {
        self.state.lock().unwrap().objects.contains_key(path)
    }

    pub fn get(&self, path: &str) -> Value {
        self.state.lock().unwrap().objects[path].clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.method,
                    Method::PATCH | Method::DELETE | Method::POST | Method::PUT
                )
            })
            .collect()
    }

    /// Runs `infra` with the scratch kubeconfig; a hung process is killed after a minute.
    pub fn infra(&self, args: &[&str]) -> Output {
        let mut child = self
            .sandbox
            .infra()
            .env("KUBECONFIG", self.sandbox.root().join("kubeconfig"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("infra {args:?} did not finish within a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// The objects `infra render` writes for `env`, in render order, as JSON.
    pub fn rendered(&self, env: &str, sets: &[&str]) -> Vec<Value> {
        let mut args = vec!["render", "--env", env];
        args.extend(sets);
        let o = self.infra(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = self.sandbox.out().join(env);
        let kustomization: Value =
            serde_yaml::from_str(&fs::read_to_string(out.join("kustomization.yaml")).unwrap())
                .unwrap();
        kustomization["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let text = fs::read_to_string(out.join(f.as_str().unwrap())).unwrap();
                serde_yaml::from_str(&text).unwrap()
            })
            .collect()
    }
}

pub fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                      "code": code.as_u16(), "reason": reason, "message": message});
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// What the server alone writes; left out when deciding whether an apply changed anything.
fn without_server_fields(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = o["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(k);
        }
    }
    o
}

/// The Deployment as the controller would report it, per the chosen rollout.
fn with_rollout(mut deployment: Value, rollout: Rollout) -> Value {
    let generation = deployment["metadata"]["generation"].clone();
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let (available, conditions) = match rollout {
        Rollout::Done => (
            desired,
            json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability."}]),
        ),
        Rollout::Never => (
            0,
            json!([{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability."},
                   {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                    "message": "ReplicaSet \"ai-api-proxy-5d4f\" is progressing."}]),
        ),
        Rollout::DeadlineExceeded => (
            0,
            json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet \"ai-api-proxy-5d4f\" has timed out progressing."}]),
        ),
    };
    deployment["status"] = json!({
        "observedGeneration": generation, "replicas": desired, "updatedReplicas": desired,
        "readyReplicas": available, "availableReplicas": available, "conditions": conditions,
    });
    deployment
}

fn labels_match(object: &Value, selector: Option<&String>) -> bool {
    selector.is_none_or(|s| {
        s.split(',').filter(|t| !t.is_empty()).all(|term| {
            let (k, v) = term.split_once('=').unwrap();
            object["metadata"]["labels"][k].as_str() == Some(v)
        })
    })
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body_json: Option<Value> =
        (!body.is_empty()).then(|| serde_json::from_slice(&body).unwrap());
    let mut state = state.lock().unwrap();
    state.requests.push(Request {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: body_json.clone(),
    });
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let rest = match segments.first() {
        Some(&"api") => segments.len().saturating_sub(2),
        Some(&"apis") => segments.len().saturating_sub(3),
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no route {path}"),
            );
        }
    };
    let is_object = rest > 0 && rest % 2 == 0;
    // Apply takes `dryRun` as a query parameter, delete in its DeleteOptions body.
    let dry_run = query.get("dryRun").map(String::as_str) == Some("All")
        || body_json
            .as_ref()
            .is_some_and(|b| b["dryRun"] == json!(["All"]));
    let name = segments.last().copied().unwrap_or_default().to_owned();
    let not_found = || {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("\"{name}\" not found"),
        )
    };

    match (method, is_object) {
        (Method::GET, true) => match state.objects.get(&path) {
            Some(o) if o["kind"] == "Deployment" => {
                ok(StatusCode::OK, &with_rollout(o.clone(), state.rollout))
            }
            Some(o) => ok(StatusCode::OK, o),
            None => not_found(),
        },
        (Method::GET, false) => {
            let prefix = format!("{path}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(k, _)| k.strip_prefix(&prefix).is_some_and(|n| !n.contains('/')))
                .map(|(_, v)| v.clone())
                .filter(|o| labels_match(o, query.get("labelSelector")))
                .collect();
            let rv = state.resource_version.to_string();
            ok(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "List",
                                       "metadata": {"resourceVersion": rv}, "items": items}),
            )
        }
        (Method::PATCH, true) => {
            if content_type.as_deref() != Some("application/apply-patch+yaml") {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "apply only".into(),
                );
            }
            let Some(mut desired) = body_json else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "empty body".into());
            };
            let existing = state.objects.get(&path).cloned();
            if let Some(existing) = &existing
                && without_server_fields(existing) == without_server_fields(&desired)
            {
                return ok(StatusCode::OK, existing);
            }
            state.resource_version += 1;
            let generation = existing
                .as_ref()
                .and_then(|e| e["metadata"]["generation"].as_i64())
                .unwrap_or(0)
                + 1;
            desired["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
            desired["metadata"]["generation"] = json!(generation);
            desired["metadata"]["uid"] = json!(format!("uid-{name}"));
            let code = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            if !dry_run {
                state.objects.insert(path, desired.clone());
            }
            ok(code, &desired)
        }
        (Method::DELETE, true) => {
            let Some(existing) = state.objects.get(&path).cloned() else {
                return not_found();
            };
            if !dry_run {
                state.objects.remove(&path);
            }
            ok(StatusCode::OK, &existing)
        }
        (method, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} {path}"),
        ),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
