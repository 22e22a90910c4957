//! One recorded apply or rollback: take the environment's lock, apply (the steps of
//! [`set::run`]), record the outcome as a new revision, and under `--atomic` roll a failure
//! back to the last deployed revision at once; then trim the history and let the lock go.
//!
//! An apply refused before its first write (preflight, conflicts, a refused dry run) changed
//! nothing and records nothing; a dry run takes no lock and records nothing.

use std::time::Duration;

use super::discovery::Discovery;
use super::lock::{self, Lock};
use super::revision::store::Header;
use super::revision::{self, History, Provenance, Revision, Status};
use super::set::{self, Event};
use super::target::Target;
use super::{Action, Error, Outcome, Result};

/// How to apply, record and roll back.
#[derive(Clone, Debug)]
pub struct Options {
    /// How to apply each target.
    pub apply: set::Options,
    /// Roll a failure after the first write back to the last deployed revision.
    pub atomic: bool,
    /// How many revisions to keep.
    pub history_max: usize,
    /// How long to queue for the lock when another apply holds it.
    pub wait_for_lock: Duration,
}

/// What a recorded apply did.
#[derive(Clone, Debug)]
pub struct Applied {
    /// What happened to each object.
    pub outcomes: Vec<Outcome>,
    /// The revision recorded (`None` for a dry run).
    pub revision: Option<u32>,
}

/// Applies `target` (an environment built from `provenance`) and records it as a revision.
pub async fn apply(
    client: &kube::Client,
    target: &Target,
    provenance: Provenance,
    options: &Options,
    report: &mut impl FnMut(Event<'_>),
) -> Result<Applied> {
    if options.apply.dry_run {
        let discovery = Discovery::read(client).await?;
        let outcomes = set::run(client, &discovery, target, &options.apply, report).await?;
        return Ok(Applied {
            outcomes,
            revision: None,
        });
    }
    let mut session = Session::open(client, target, options, report).await?;
    let result = async {
        let number = session.history.next_number();
        let tried = session
            .attempt(target, provenance, None, &options.apply, report)
            .await;
        match tried {
            Err(cause) if options.atomic && session.history.next_number() > number => {
                Err(session.roll_back(cause, number, options, report).await)
            }
            tried => tried,
        }
    }
    .await;
    session.close(result, options.history_max).await
}

/// Applies revision `to` (default: the last deployed before the current one) of the set of
/// `namespace/parent` again, recorded as a new revision.
pub async fn rollback(
    client: &kube::Client,
    namespace: &str,
    parent: &str,
    to: Option<u32>,
    options: &Options,
    report: &mut impl FnMut(Event<'_>),
) -> Result<Applied> {
    let place = Place {
        namespace: namespace.to_owned(),
        parent: parent.to_owned(),
    };
    let mut session = Session::open(client, &place, options, report).await?;
    let result = async {
        let good = session.history.rollback_target(to)?.clone();
        report(Event::Note(&format!(
            "Rolling back to revision {} ({}, {}: {})",
            good.header.number, good.status, good.header.time, good.header.summary
        )));
        let provenance = good.header.provenance.clone();
        session
            .attempt(
                &good.target,
                provenance,
                Some(good.header.number),
                &options.apply,
                report,
            )
            .await
    }
    .await;
    session.close(result, options.history_max).await
}

/// Where a set lives: what [`Session::open`] needs.
trait Located {
    fn namespace(&self) -> &str;
    fn parent(&self) -> &str;
}

impl Located for Target {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn parent(&self) -> &str {
        self.parent_name()
    }
}

struct Place {
    namespace: String,
    parent: String,
}

impl Located for Place {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn parent(&self) -> &str {
        &self.parent
    }
}

/// The lock held and the history read, for one apply or rollback.
struct Session<'c> {
    client: &'c kube::Client,
    discovery: Discovery,
    who: String,
    lock: Option<Lock>,
    history: History,
}

impl<'c> Session<'c> {
    async fn open(
        client: &'c kube::Client,
        place: &impl Located,
        options: &Options,
        report: &mut impl FnMut(Event<'_>),
    ) -> Result<Self> {
        let (namespace, parent) = (place.namespace(), place.parent());
        // What the server serves (or why it does not answer), and who we are to it.
        let (discovery, who) =
            futures_util::join!(Discovery::read(client), revision::history::who_am_i(client));
        let discovery = discovery?;
        let mut last_holder = None;
        let lock = lock::acquire(
            client,
            namespace,
            &lock::name(parent),
            &lock::identity(&who),
            options.wait_for_lock,
            &mut |holder| {
                if last_holder.as_ref() != Some(&holder.identity) {
                    report(Event::Note(&format!(
                        "Waiting for the lock: {}",
                        lock::describe_holder(holder)
                    )));
                    last_holder = Some(holder.identity.clone());
                }
            },
        )
        .await?;
        let history = match History::read(client, namespace, parent).await {
            Ok(history) => history,
            Err(e) => {
                if let Some(lock) = lock {
                    lock.release().await;
                }
                return Err(e);
            }
        };
        Ok(Self {
            client,
            discovery,
            who,
            lock,
            history,
        })
    }

    /// Applies `target` and records the outcome (unless it was refused before any write).
    async fn attempt(
        &mut self,
        target: &Target,
        provenance: Provenance,
        rollback_to: Option<u32>,
        options: &set::Options,
        report: &mut impl FnMut(Event<'_>),
    ) -> Result<Applied> {
        let mut wrote = false;
        let result = set::run(
            self.client,
            &self.discovery,
            target,
            options,
            &mut |event| {
                if let Event::Outcome(o) = event {
                    wrote |= o.action != Action::Unchanged;
                }
                report(event);
            },
        )
        .await;
        if result.is_err() && !wrote {
            return result.map(|outcomes| Applied {
                outcomes,
                revision: None,
            });
        }
        let (status, summary) = match &result {
            Ok(outcomes) => (Status::Deployed, revision::summary(outcomes)),
            Err(e) => (Status::Failed, revision::failure_summary(e)),
        };
        let number = self.history.next_number();
        let revision = Revision {
            header: Header {
                number,
                time: k8s_openapi::jiff::Timestamp::now()
                    .round(k8s_openapi::jiff::Unit::Second)
                    .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
                    .to_string(),
                who: self.who.clone(),
                environment: target.env_name.clone(),
                namespace: target.namespace.clone(),
                summary: match rollback_to {
                    Some(n) => format!("rollback to {n}: {summary}"),
                    None => summary,
                },
                rollback_to,
                provenance,
                selector: target.selector.clone(),
                secrets: target.secrets.clone(),
                config_maps: target.config_maps.clone(),
            },
            status,
            target: target.clone(),
        };
        let recorded = self.history.record(revision).await;
        let outcomes = match (result, recorded) {
            (Ok(outcomes), Ok(())) => outcomes,
            (Err(cause), _) => return Err(cause),
            (Ok(_), Err(e)) => return Err(e),
        };
        report(Event::Note(&format!(
            "Recorded revision {number} ({status})."
        )));
        Ok(Applied {
            outcomes,
            revision: Some(number),
        })
    }

    /// `--atomic`: revision `failed` failed with `cause`; applies the last deployed revision
    /// again and says how that went.
    async fn roll_back(
        &mut self,
        cause: Error,
        failed: u32,
        options: &Options,
        report: &mut impl FnMut(Event<'_>),
    ) -> Error {
        let cause = Box::new(cause);
        let good = match self.history.rollback_target(None) {
            Ok(good) => good.clone(),
            Err(_) => return Error::NothingToRollBackTo { cause, failed },
        };
        let to = good.header.number;
        report(Event::Note(&format!(
            "\nRevision {failed} failed; --atomic: rolling back to revision {to}."
        )));
        let back = self
            .attempt(
                &good.target,
                good.header.provenance.clone(),
                Some(to),
                &options.apply,
                report,
            )
            .await;
        match back {
            Ok(applied) => Error::RolledBack {
                cause,
                failed,
                to,
                recorded: applied.revision.unwrap_or_default(),
            },
            Err(rollback) => Error::RollbackFailed {
                cause,
                failed,
                to,
                rollback: Box::new(rollback),
            },
        }
    }

    /// Trims the history to `max` and lets the lock go; `result` stays the result (a trim
    /// failure is reported only when the apply itself succeeded).
    async fn close(mut self, result: Result<Applied>, max: usize) -> Result<Applied> {
        let release = async {
            if let Some(lock) = self.lock.take() {
                lock.release().await;
            }
        };
        let (trimmed, ()) = futures_util::join!(self.history.trim(max), release);
        let applied = result?;
        trimmed?;
        Ok(applied)
    }
}
