//! One apply at a time per environment: a `coordination.k8s.io/v1` Lease `<parent>-lock` in
//! the set's namespace, held and renewed for the whole apply or rollback, deleted at the end.
//!
//! Taking it: create the Lease, or take over one that is free or expired (renewed longer than
//! its duration ago), with the resourceVersion read, so of two takers exactly one wins. A
//! holder renews it every [`RENEW_EVERY`]; a holder that crashed stops renewing, and its lease
//! expires [`DURATION`] later, so nothing stays locked forever. Expiry is judged by this
//! machine's clock against the holder's renew time (clocks a few seconds apart only shift it).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use tokio::task::JoinHandle;

use super::{Error, Problem, Result};

/// How long a lease stays valid after its last renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a queued apply (`--wait-for-lock`) looks again.
const POLL: Duration = Duration::from_secs(1);

/// Who holds the lock, and since when (for the refusal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The Lease, `namespace/name`.
    pub lease: String,
    /// Its `holderIdentity`.
    pub identity: String,
    /// When it was taken (RFC 3339), if recorded.
    pub since: Option<String>,
    /// When it expires unless renewed (RFC 3339).
    pub expires: Option<String>,
}

/// A held lock: renewed in the background until [`Lock::release`].
pub struct Lock {
    api: Api<Lease>,
    name: String,
    /// The resourceVersion of our last write of the Lease (so releasing it is one request that
    /// fails if someone else wrote it since).
    version: Arc<Mutex<Option<String>>>,
    renewer: JoinHandle<()>,
}

/// The Lease's name for the set whose parent is `parent`.
pub fn name(parent: &str) -> String {
    format!("{parent}-lock")
}

/// Takes the lock of `namespace/name` as `identity`; when someone else holds it, waits up to
/// `wait` (telling `waiting` who holds it), then fails naming the holder. `None` when the
/// namespace does not exist yet (nothing of the set can exist either, so there is nothing to
/// interleave with but another first apply).
pub async fn acquire(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    identity: &str,
    wait: Duration,
    waiting: &mut impl FnMut(&Holder),
) -> Result<Option<Lock>> {
    let api = Api::<Lease>::namespaced(client.clone(), namespace);
    let shown = format!("{namespace}/{name}");
    let deadline = tokio::time::Instant::now() + wait;
    // The common case first, in one request: no Lease (the last holder deleted it).
    let mut create_first = true;
    loop {
        let now = Timestamp::now();
        let live = if std::mem::take(&mut create_first) {
            let new = lease(name, identity, now, None);
            match api.create(&PostParams::default(), &new).await {
                Ok(held) => return Ok(Some(Lock::hold(api, name, identity, held))),
                Err(kube::Error::Api(s)) if s.code == 409 => api
                    .get_opt(name)
                    .await
                    .map_err(refused("get", namespace, &shown))?,
                // No namespace: nothing to lock yet.
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
                Err(e) => return Err(refused("create", namespace, &shown)(e)),
            }
        } else {
            api.get_opt(name)
                .await
                .map_err(refused("get", namespace, &shown))?
        };
        let taken = match &live {
            None => {
                api.create(&PostParams::default(), &lease(name, identity, now, None))
                    .await
            }
            Some(held) => match holder(held, &shown, now) {
                Some(holder) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Error::Locked(holder));
                    }
                    waiting(&holder);
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                None => {
                    api.replace(
                        name,
                        &PostParams::default(),
                        &lease(name, identity, now, Some(held)),
                    )
                    .await
                }
            },
        };
        match taken {
            Ok(held) => return Ok(Some(Lock::hold(api, name, identity, held))),
            // Someone else took it between our read and our write: look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            // No namespace: nothing to lock yet.
            Err(kube::Error::Api(s)) if s.is_not_found() && live.is_none() => return Ok(None),
            Err(e) => {
                let verb = if live.is_none() { "create" } else { "update" };
                return Err(refused(verb, namespace, &shown)(e));
            }
        }
    }
}

/// The error of `verb` on the Lease: a refusal by RBAC is reported as preflight reports it.
fn refused(verb: &'static str, namespace: &str, shown: &str) -> impl FnOnce(kube::Error) -> Error {
    let namespace = namespace.to_owned();
    let action = format!("{verb} Lease {shown}");
    move |e| match e {
        kube::Error::Api(s) if s.code == 403 => Error::Preflight(vec![Problem::Forbidden {
            verb,
            resource: "leases.coordination.k8s.io".into(),
            namespace: Some(namespace),
            reason: Some(format!(
                "the lock that keeps applies one at a time needs it ({})",
                s.message
            )),
        }]),
        e => Error::kube(action)(e),
    }
}

impl Lock {
    /// The lock `held` (as the server returned it), renewed from now on.
    fn hold(api: Api<Lease>, name: &str, identity: &str, held: Lease) -> Self {
        let version = Arc::new(Mutex::new(held.metadata.resource_version));
        let renewer = tokio::spawn(renew(
            api.clone(),
            name.to_owned(),
            identity.to_owned(),
            version.clone(),
        ));
        Self {
            api,
            name: name.to_owned(),
            version,
            renewer,
        }
    }

    /// Stops renewing and deletes the Lease, unless someone else wrote it since (then it is
    /// theirs). Best effort: a lease left behind expires by itself.
    pub async fn release(self) {
        self.renewer.abort();
        let version = self
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: version,
                uid: None,
            }),
            ..Default::default()
        };
        let _ = self.api.delete(&self.name, &params).await;
    }
}

/// Renews the lease every [`RENEW_EVERY`] while we hold it.
async fn renew(
    api: Api<Lease>,
    name: String,
    identity: String,
    version: Arc<Mutex<Option<String>>>,
) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Ok(Some(mut live)) = api.get_opt(&name).await else {
            continue;
        };
        let Some(spec) = live.spec.as_mut() else {
            continue;
        };
        if spec.holder_identity.as_deref() != Some(identity.as_str()) {
            return;
        }
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Ok(renewed) = api.replace(&name, &PostParams::default(), &live).await {
            *version.lock().unwrap_or_else(PoisonError::into_inner) =
                renewed.metadata.resource_version;
        }
    }
}

/// The Lease `name` held by `identity` from `now`, replacing `previous` (its resourceVersion,
/// so a concurrent taker fails with a conflict, and one more transition).
fn lease(name: &str, identity: &str, now: Timestamp, previous: Option<&Lease>) -> Lease {
    let transitions = previous
        .and_then(|l| l.spec.as_ref()?.lease_transitions)
        .map_or(0, |t| t + 1);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "infra".to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_owned()),
            lease_duration_seconds: Some(DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

/// Who holds `lease` at `now`: `None` when it is free (no holder) or expired.
pub fn holder(lease: &Lease, shown: &str, now: Timestamp) -> Option<Holder> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0)?;
    let expires = renewed.checked_add(duration).ok()?;
    (expires > now).then(|| Holder {
        lease: shown.to_owned(),
        identity,
        since: spec.acquire_time.as_ref().map(|t| t.0.to_string()),
        expires: Some(expires.to_string()),
    })
}

/// `Lease ns/name is held by X since T (expires at T unless renewed)`.
pub fn describe_holder(holder: &Holder) -> String {
    let mut out = format!("Lease {} is held by {}", holder.lease, holder.identity);
    if let Some(since) = &holder.since {
        out.push_str(&format!(" since {since}"));
    }
    if let Some(expires) = &holder.expires {
        out.push_str(&format!(" (expires at {expires} unless renewed)"));
    }
    out
}

/// Who we are in a lease: `user@host (pid N)`.
pub fn identity(user: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_lease_is_held_until_its_duration_past_the_last_renewal() {
        let l = lease(
            "set-lock",
            "ci@runner (pid 7)",
            at("2026-12-03T08:00:00Z"),
            None,
        );
        let held = holder(&l, "ns/set-lock", at("2026-12-03T08:00:14Z")).unwrap();
        assert_eq!(held.identity, "ci@runner (pid 7)");
        assert_eq!(held.since.as_deref(), Some("2026-12-03T08:00:00Z"));
        assert_eq!(held.expires.as_deref(), Some("2026-12-03T08:00:15Z"));
        assert_eq!(holder(&l, "ns/set-lock", at("2026-12-03T08:00:15Z")), None);
        let mut free = l.clone();
        free.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(
            holder(&free, "ns/set-lock", at("2026-12-03T08:00:01Z")),
            None
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_keeps_the_resource_version() {
        let mut old = lease("x", "a", at("2026-12-03T08:00:00Z"), None);
        old.metadata.resource_version = Some("42".into());
        let new = lease("x", "b", at("2026-12-03T09:00:00Z"), Some(&old));
        assert_eq!(new.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(new.spec.unwrap().lease_transitions, Some(1));
        assert!(identity("me").starts_with("me@"));
    }
}
