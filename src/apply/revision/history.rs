//! The revisions of one set in the cluster: read them, record a new one (and move the others'
//! statuses along), trim to `--history-max`, and pick what a rollback returns to.

use futures_util::future::join_all;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::store::{self, OF, STATUS};
use super::{Revision, Status};
use crate::apply::{Error, Result};

/// Every revision of a set, oldest first.
pub struct History {
    api: Api<ConfigMap>,
    parent: String,
    /// The revisions, by number.
    pub revisions: Vec<Revision>,
}

impl History {
    /// Reads the revisions of the set whose parent is `namespace/parent` (none when the
    /// namespace does not exist yet). Fails on a revision this infra cannot read.
    pub async fn read(client: &kube::Client, namespace: &str, parent: &str) -> Result<Self> {
        let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
        let listed = api
            .list(&ListParams::default().labels(&format!("{OF}={parent}")))
            .await
            .map_err(Error::kube(format!(
                "list the revisions of {namespace}/{parent}"
            )))?;
        let mut revisions = listed
            .items
            .iter()
            .map(store::decode)
            .collect::<Result<Vec<_>, _>>()?;
        revisions.sort_by_key(|r| r.header.number);
        Ok(Self {
            api,
            parent: parent.to_owned(),
            revisions,
        })
    }

    /// The newest revision: what the cluster was last given.
    pub fn current(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// The number the next revision gets.
    pub fn next_number(&self) -> u32 {
        self.current().map_or(1, |r| r.header.number + 1)
    }

    /// Revision `number`.
    pub fn get(&self, number: u32) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.header.number == number)
    }

    /// What a rollback returns to: revision `to`, or (without it) the newest revision before
    /// the current one that was deployed and then replaced (`superseded`).
    pub fn rollback_target(&self, to: Option<u32>) -> Result<&Revision> {
        rollback_target(&self.revisions, to)
            .ok_or_else(|| Error::NoRevision(missing(&self.revisions, &self.parent, to)))
    }

    /// Writes `revision`. When it is deployed, the revision that was deployed becomes
    /// superseded, or rolled back when `revision` is a rollback (then the one it undid, the
    /// current one, becomes rolled back whatever it was).
    pub async fn record(&mut self, revision: Revision) -> Result<()> {
        let number = revision.header.number;
        let changes = status_changes(&self.revisions, &revision);
        let cm = store::encode(&revision);
        let create = async {
            self.api
                .create(&PostParams::default(), &cm)
                .await
                .map_err(Error::kube(format!(
                    "record revision {number} (ConfigMap {})",
                    store::name(&self.parent, number)
                )))
        };
        let patches = join_all(
            changes
                .iter()
                .map(|(n, status)| patch_status(&self.api, &self.parent, *n, *status)),
        );
        let (created, patched) = futures_util::join!(create, patches);
        created?;
        patched.into_iter().collect::<Result<Vec<()>>>()?;
        for (n, status) in changes {
            if let Some(r) = self.revisions.iter_mut().find(|r| r.header.number == n) {
                r.status = status;
            }
        }
        self.revisions.push(revision);
        Ok(())
    }

    /// Deletes the oldest revisions beyond the newest `max` (at least one is kept).
    pub async fn trim(&mut self, max: usize) -> Result<()> {
        let excess = self.revisions.len().saturating_sub(max.max(1));
        let deletes = self.revisions.drain(..excess).map(|r| {
            let name = store::name(&self.parent, r.header.number);
            let api = &self.api;
            async move {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
                    Err(e) => Err(Error::kube(format!("delete revision {name}"))(e)),
                }
            }
        });
        join_all(deletes.collect::<Vec<_>>())
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }
}

/// Sets the status label of revision `number` of the set of `parent`.
async fn patch_status(
    api: &Api<ConfigMap>,
    parent: &str,
    number: u32,
    status: Status,
) -> Result<()> {
    let patch = json!({"metadata": {"labels": {STATUS: status.as_str()}}});
    api.patch(
        &store::name(parent, number),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube(format!("mark revision {number} {status}")))?;
    Ok(())
}

/// Revision `to` of `revisions`, or (without it) the newest before the current (newest) one
/// that was deployed: `superseded` or `deployed`.
fn rollback_target(revisions: &[Revision], to: Option<u32>) -> Option<&Revision> {
    let current = revisions.last().map(|r| r.header.number);
    match to {
        Some(n) => revisions.iter().find(|r| r.header.number == n),
        None => revisions
            .iter()
            .rev()
            .filter(|r| Some(r.header.number) != current)
            .find(|r| matches!(r.status, Status::Superseded | Status::Deployed)),
    }
}

/// Why there is no rollback target, listing what there is.
fn missing(revisions: &[Revision], parent: &str, to: Option<u32>) -> String {
    let have: Vec<String> = revisions
        .iter()
        .map(|r| format!("{} ({})", r.header.number, r.status))
        .collect();
    let have = if have.is_empty() {
        "none".to_owned()
    } else {
        have.join(", ")
    };
    match to {
        Some(n) => format!("there is no revision {n} of {parent}; revisions: {have}"),
        None => {
            format!("no earlier deployed revision of {parent} to roll back to; revisions: {have}")
        }
    }
}

/// The statuses that change when `new` is recorded after `revisions`: when it is deployed, the
/// revision that was deployed becomes superseded; when it is a rollback, the revision it
/// undid (the current one, unless it re-applies that very one) becomes rolled back.
fn status_changes(revisions: &[Revision], new: &Revision) -> Vec<(u32, Status)> {
    if new.status != Status::Deployed {
        return Vec::new();
    }
    let rollback_to = new.header.rollback_to;
    let undone = rollback_to
        .and(revisions.last().map(|r| r.header.number))
        .filter(|current| Some(*current) != rollback_to);
    revisions
        .iter()
        .filter_map(|r| {
            let n = r.header.number;
            if Some(n) == undone {
                (r.status != Status::RolledBack).then_some((n, Status::RolledBack))
            } else {
                (r.status == Status::Deployed).then_some((n, Status::Superseded))
            }
        })
        .collect()
}

/// Who the API server says we are (SelfSubjectReview), e.g. `kubernetes-admin`; `unknown`
/// when the server does not tell (an old server, or the review is not allowed).
pub async fn who_am_i(client: &kube::Client) -> String {
    let review = SelfSubjectReview::default();
    Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .ok()
        .and_then(|r| r.status?.user_info?.username)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::revision::store::tests::revision;

    fn history(statuses: &[Status]) -> Vec<Revision> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut r = revision("development", "ns");
                r.header.number = i as u32 + 1;
                r.status = *s;
                r
            })
            .collect()
    }

    fn numbers(changes: Vec<(u32, Status)>) -> Vec<(u32, &'static str)> {
        changes.into_iter().map(|(n, s)| (n, s.as_str())).collect()
    }

    #[test]
    fn a_rollback_returns_to_the_last_deployed_revision_before_the_current_one() {
        use Status::*;
        // install, upgrade, failed upgrade: back to 2.
        let h = history(&[Superseded, Deployed, Failed]);
        assert_eq!(rollback_target(&h, None).unwrap().header.number, 2);
        // install, upgrade: back to 1.
        let h = history(&[Superseded, Deployed]);
        assert_eq!(rollback_target(&h, None).unwrap().header.number, 1);
        // after a rollback to 2 (4 re-applies 2): again back to 2, never to the undone 3.
        let h = history(&[Superseded, Superseded, RolledBack, Deployed]);
        assert_eq!(rollback_target(&h, None).unwrap().header.number, 2);
        assert_eq!(rollback_target(&h, Some(3)).unwrap().header.number, 3);
        assert!(rollback_target(&h, Some(9)).is_none());
        // a first install that failed: nothing to return to.
        assert!(rollback_target(&history(&[Failed]), None).is_none());
        assert_eq!(
            missing(&history(&[Failed]), "applyset-a", None),
            "no earlier deployed revision of applyset-a to roll back to; revisions: 1 (failed)"
        );
    }

    #[test]
    fn recording_moves_the_statuses_along() {
        use Status::*;
        let mut new = revision("development", "ns");
        new.status = Deployed;
        // an upgrade supersedes the deployed revision.
        let h = history(&[Superseded, Deployed]);
        assert_eq!(numbers(status_changes(&h, &new)), [(2, "superseded")]);
        // a failure changes nothing yet.
        new.status = Failed;
        assert!(status_changes(&h, &new).is_empty());
        // a rollback to 2 after a failed 3: 3 is rolled back, 2 superseded.
        new.status = Deployed;
        new.header.rollback_to = Some(2);
        let h = history(&[Superseded, Deployed, Failed]);
        assert_eq!(
            numbers(status_changes(&h, &new)),
            [(2, "superseded"), (3, "rolled-back")]
        );
        // re-applying the current revision undoes nothing.
        let h = history(&[Superseded, Superseded]);
        assert!(status_changes(&h, &new).is_empty());
    }
}
