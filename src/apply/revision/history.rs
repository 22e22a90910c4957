//! The revisions of one set in the cluster: read them, record a new one (and move the others'
//! statuses along), trim to `--history-max`, and pick what a rollback returns to.

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
        let current = self.current().map(|r| r.header.number);
        match to {
            Some(n) => self
                .get(n)
                .ok_or_else(|| Error::NoRevision(self.missing(Some(n)))),
            None => self
                .revisions
                .iter()
                .rev()
                .filter(|r| Some(r.header.number) != current)
                .find(|r| matches!(r.status, Status::Superseded | Status::Deployed))
                .ok_or_else(|| Error::NoRevision(self.missing(None))),
        }
    }

    fn missing(&self, to: Option<u32>) -> String {
        let have: Vec<String> = self
            .revisions
            .iter()
            .map(|r| format!("{} ({})", r.header.number, r.status))
            .collect();
        let have = if have.is_empty() {
            "none".to_owned()
        } else {
            have.join(", ")
        };
        match to {
            Some(n) => format!(
                "there is no revision {n} of {}; revisions: {have}",
                self.parent
            ),
            None => format!(
                "no earlier deployed revision of {} to roll back to; revisions: {have}",
                self.parent
            ),
        }
    }

    /// Writes `revision`. When it is deployed, the revision that was deployed becomes
    /// superseded, or rolled back when `revision` is a rollback (then the one it undid, the
    /// current one, becomes rolled back whatever it was).
    pub async fn record(&mut self, revision: Revision) -> Result<()> {
        let number = revision.header.number;
        if revision.status == Status::Deployed {
            // A rollback undoes the current revision (unless it re-applies that very one).
            let rollback_to = revision.header.rollback_to;
            let undone = rollback_to
                .and(self.current().map(|r| r.header.number))
                .filter(|current| Some(*current) != rollback_to);
            let changes: Vec<(u32, Status)> = self
                .revisions
                .iter()
                .filter_map(|r| {
                    let n = r.header.number;
                    if Some(n) == undone {
                        Some((n, Status::RolledBack))
                    } else if r.status == Status::Deployed {
                        Some((n, Status::Superseded))
                    } else {
                        None
                    }
                })
                .collect();
            for (n, status) in changes {
                self.set_status(n, status).await?;
            }
        }
        let cm = store::encode(&revision);
        self.api
            .create(&PostParams::default(), &cm)
            .await
            .map_err(Error::kube(format!(
                "record revision {number} (ConfigMap {})",
                store::name(&self.parent, number)
            )))?;
        self.revisions.push(revision);
        Ok(())
    }

    /// Changes the status of revision `number`.
    pub async fn set_status(&mut self, number: u32, status: Status) -> Result<()> {
        let name = store::name(&self.parent, number);
        let patch = json!({"metadata": {"labels": {STATUS: status.as_str()}}});
        self.api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!("mark revision {number} {status}")))?;
        if let Some(r) = self
            .revisions
            .iter_mut()
            .find(|r| r.header.number == number)
        {
            r.status = status;
        }
        Ok(())
    }

    /// Deletes the oldest revisions beyond the newest `max` (at least one is kept).
    pub async fn trim(&mut self, max: usize) -> Result<()> {
        let excess = self.revisions.len().saturating_sub(max.max(1));
        for r in self.revisions.drain(..excess) {
            let name = store::name(&self.parent, r.header.number);
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(Error::kube(format!("delete revision {name}"))(e)),
            }
        }
        Ok(())
    }
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
