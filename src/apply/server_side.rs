//! The objects of one apply: read live, server-side dry run of all of them (conflicts and
//! refusals surface before any write), then server-side apply, one by one in render order.

use futures_util::future::join_all;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::{
    Action, Conflict, Error, FIELD_MANAGER, Outcome, Result, api_of, conflict, describe_object,
    display_name, handover,
};
use crate::objects::Object;

/// One object to apply: the built value, what the cluster holds, what a dry run returned.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    /// What we build.
    pub object: &'a Object,
    /// The live object, `None` when it does not exist.
    pub live: Option<DynamicObject>,
    /// What the server-side dry run of our apply returned (`None` when it was not run: the
    /// namespace does not exist yet, so nothing in it can conflict).
    pub dry_run: Option<DynamicObject>,
}

impl Planned<'_> {
    /// What applying it does: create, change, or nothing.
    pub fn action(&self) -> Action {
        match (&self.live, &self.dry_run) {
            (None, _) => Action::Created,
            (Some(live), Some(after)) if same(live, after) => Action::Unchanged,
            (Some(_), _) => Action::Applied,
        }
    }
}

/// The objects in render order: kind order (what others depend on first), then name; the
/// ApplySet parent right after the Namespace, so it records the set before any member changes.
pub fn in_order(objects: &[Object]) -> Vec<&Object> {
    let rank = |o: &Object| {
        let is_parent = o
            .metadata()
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crate::objects::applyset::ID));
        match o.kind_of().rank() {
            0 => 0,
            _ if is_parent => 1,
            i => i + 1,
        }
    };
    let mut sorted: Vec<&Object> = objects.iter().collect();
    sorted.sort_by_key(|o| (rank(o), o.name().to_owned()));
    sorted
}

/// Server-side apply parameters: our field manager, forced only when asked.
pub fn params(force: bool, dry_run: bool) -> PatchParams {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = force;
    params.dry_run = dry_run;
    params
}

/// Reads every object (concurrently), then has the server dry-run our apply of each
/// (concurrently; skipped for namespaced objects when `namespace_exists` is false). Fails with
/// every conflict at once, or with the first refusal; nothing is written either way.
pub async fn check<'a>(
    client: &kube::Client,
    objects: &'a [Object],
    force: bool,
    namespace_exists: bool,
) -> Result<Vec<Planned<'a>>> {
    let ordered = in_order(objects);
    let live = join_all(ordered.iter().map(|o| async move {
        api_of(client, o)
            .get_opt(o.name())
            .await
            .map_err(Error::kube(format!("read {}", describe_object(o))))
    }))
    .await;
    let dry = params(force, true);
    let dry_runs = join_all(ordered.iter().map(|o| {
        let dry = &dry;
        async move {
            if o.namespace().is_some() && !namespace_exists {
                return Ok(None);
            }
            api_of(client, o)
                .patch(o.name(), dry, &Patch::Apply(o))
                .await
                .map(Some)
        }
    }))
    .await;
    let mut planned = Vec::with_capacity(ordered.len());
    let mut conflicts: Vec<Conflict> = Vec::new();
    for ((object, live), dry_run) in ordered.into_iter().zip(live).zip(dry_runs) {
        let shown = describe_object(object);
        let dry_run = match dry_run {
            Ok(result) => result,
            Err(kube::Error::Api(status)) => match conflict::conflicts(&shown, &status) {
                Some(found) => {
                    conflicts.extend(found);
                    None
                }
                None if conflicts.is_empty() => {
                    return Err(Error::Refused {
                        object: shown,
                        status,
                    });
                }
                None => None,
            },
            Err(source) => return Err(Error::kube(format!("dry-run apply {shown}"))(source)),
        };
        planned.push(Planned {
            object,
            live: live?,
            dry_run,
        });
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    Ok(planned)
}

/// Applies every planned object that would change, in order (unchanged ones are not sent, so
/// they keep their resourceVersion). A failure reports what was applied and what was not.
pub async fn apply(
    client: &kube::Client,
    planned: &[Planned<'_>],
    force: bool,
    report: &mut impl FnMut(&Outcome),
) -> Result<Vec<Outcome>> {
    let params = params(force, false);
    let objects: Vec<&Object> = planned.iter().map(|p| p.object).collect();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(planned.len());
    for (i, p) in planned.iter().enumerate() {
        let object = p.object;
        let action = p.action();
        if action != Action::Unchanged
            && let Err(cause) = apply_one(client, p, &objects, &params).await
        {
            return Err(Error::Partial {
                applied: outcomes,
                not_applied: planned[i..]
                    .iter()
                    .map(|p| describe_object(p.object))
                    .collect(),
                cause: Box::new(cause),
            });
        }
        let outcome = Outcome {
            action,
            kind: object.kind().to_owned(),
            name: display_name(object.namespace(), object.name()),
            dry_run: false,
        };
        report(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn apply_one(
    client: &kube::Client,
    p: &Planned<'_>,
    objects: &[&Object],
    params: &PatchParams,
) -> Result<()> {
    let api = api_of(client, p.object);
    if p.live.is_none()
        && let Some(replicas) = handover::first_replicas(p.object, objects)
    {
        handover::start_at(&api, p.object, replicas).await?;
    } else if let Some(replicas) = p
        .live
        .as_ref()
        .and_then(|live| handover::replicas_to_hand_over(p.object, live))
    {
        handover::hand_over(&api, p.object, replicas).await?;
    }
    api.patch(p.object.name(), params, &Patch::Apply(p.object))
        .await
        .map_err(Error::kube(format!("apply {}", describe_object(p.object))))?;
    Ok(())
}

/// The outcomes of a dry run: what applying would do, nothing sent.
pub fn dry_run_outcomes(planned: &[Planned<'_>]) -> Vec<Outcome> {
    planned
        .iter()
        .map(|p| Outcome {
            action: p.action(),
            kind: p.object.kind().to_owned(),
            name: display_name(p.object.namespace(), p.object.name()),
            dry_run: true,
        })
        .collect()
}

/// An object as JSON without what the server alone writes: resourceVersion, generation, uid,
/// creationTimestamp, managedFields (unless `keep_managed`, then without their timestamps)
/// and status. What `plan --live` diffs, and (with `keep_managed`) what "unchanged" compares.
pub fn comparable(object: &DynamicObject, keep_managed: bool) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
        ] {
            meta.remove(key);
        }
        if !keep_managed {
            meta.remove("managedFields");
        } else if let Some(entries) = meta.get_mut("managedFields").and_then(Value::as_array_mut) {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
    }
    value
}

/// Whether applying turned `before` into nothing new: same content and same field ownership.
fn same(before: &DynamicObject, after: &DynamicObject) -> bool {
    comparable(before, true) == comparable(after, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{Kind, applyset, objects, tests::load};

    #[test]
    fn objects_are_applied_in_render_order() {
        let built = objects(&load("production"), "production");
        let mut reversed = built.clone();
        reversed.reverse();
        let mut kinds: Vec<_> = in_order(&reversed).iter().map(|o| o.kind_of()).collect();
        kinds.dedup();
        let expected: Vec<_> = Kind::ALL
            .iter()
            .copied()
            .filter(|k| kinds.contains(k))
            .collect();
        assert_eq!(kinds, expected);
        let env = load("production");
        let parent = Object::ConfigMap(applyset::parent(&env, "production", &Default::default()));
        reversed.push(parent.clone());
        let sorted = in_order(&reversed);
        assert_eq!(sorted[0].kind(), "Namespace");
        assert_eq!(sorted[1], &parent);
        assert_eq!(sorted.len(), Kind::ALL.len() + 1);
    }

    #[test]
    fn comparison_leaves_out_what_the_server_writes() {
        let live: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "uid": "u", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "infra", "operation": "Apply", "time": "2026-01-01T00:00:00Z"}]},
            "data": {"k": "v"}
        }))
        .unwrap();
        let mut after = live.clone();
        after.metadata.resource_version = Some("8".into());
        assert!(same(&live, &after));
        let shown = comparable(&live, false);
        assert_eq!(shown["metadata"], serde_json::json!({"name": "a"}));
        after.data["data"]["k"] = "w".into();
        assert!(!same(&live, &after));
    }
}
