//! Hand `spec.replicas` over to the HPA when autoscaling is switched on.
//!
//! With autoscaling off, `infra` owns the Deployment's `spec.replicas`. When autoscaling is
//! switched on, the Deployment is applied without it; the API server would then remove the
//! field `infra` no longer sets, it would default to 1, and the Deployment would scale down to
//! one pod until the HPA reacts. As the Kubernetes documentation recommends ("transferring
//! ownership"), a second field manager first applies the current count alone, so the field
//! survives `infra` letting go of it and the HPA takes it over from there.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::{Error, FIELD_MANAGER, Result};
use crate::objects::Object;

/// The field manager that keeps `spec.replicas` while `infra` lets go of it.
pub const HANDOVER_MANAGER: &str = "infra-handover-to-hpa";

/// The replica count to hand over: `Some` when `desired` is a Deployment without
/// `spec.replicas` and `live` is one whose `spec.replicas` our field manager applied.
pub fn replicas_to_hand_over(desired: &Object, live: &DynamicObject) -> Option<i64> {
    let Object::Deployment(d) = desired else {
        return None;
    };
    if d.spec.as_ref().and_then(|s| s.replicas).is_some() {
        return None;
    }
    let ours = live.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:spec"))
                .and_then(|spec| spec.get("f:replicas"))
                .is_some()
    });
    ours.then(|| live.data["spec"]["replicas"].as_i64())
        .flatten()
}

/// The replicas a Deployment that does not exist yet starts with when an HPA in `objects`
/// scales it: the HPA's `minReplicas` (default 1). `None` when `desired` sets its own replicas
/// or nothing scales it. Created without `spec.replicas`, it would start at 1 and wait there
/// until the HPA raised it to the environment's floor.
pub fn first_replicas(desired: &Object, objects: &[&Object]) -> Option<i32> {
    let Object::Deployment(d) = desired else {
        return None;
    };
    if d.spec.as_ref().and_then(|s| s.replicas).is_some() {
        return None;
    }
    objects.iter().find_map(|o| match o {
        Object::HorizontalPodAutoscaler(hpa) => {
            let spec = hpa.spec.as_ref()?;
            (spec.scale_target_ref.kind == "Deployment"
                && spec.scale_target_ref.name == desired.name())
            .then_some(spec.min_replicas.unwrap_or(1))
        }
        _ => None,
    })
}

/// Creates `desired` with `spec.replicas: replicas` (ours, for this one request) and hands
/// the count over at once; the apply that follows (without replicas) leaves it to the HPA.
pub async fn start_at(api: &Api<DynamicObject>, desired: &Object, replicas: i32) -> Result<()> {
    let mut first = serde_json::to_value(desired).unwrap_or_default();
    first["spec"]["replicas"] = json!(replicas);
    let params = PatchParams::apply(FIELD_MANAGER);
    api.patch(desired.name(), &params, &Patch::Apply(&first))
        .await
        .map_err(Error::kube(format!(
            "create Deployment {}/{} with {replicas} replicas",
            desired.namespace().unwrap_or_default(),
            desired.name()
        )))?;
    hand_over(api, desired, i64::from(replicas)).await
}

/// Applies `spec.replicas: replicas` alone with [`HANDOVER_MANAGER`] (forced: the value is
/// the live one, so nothing changes but who owns it).
pub async fn hand_over(api: &Api<DynamicObject>, desired: &Object, replicas: i64) -> Result<()> {
    let patch = json!({
        "apiVersion": desired.api_version(),
        "kind": desired.kind(),
        "metadata": { "name": desired.name(), "namespace": desired.namespace() },
        "spec": { "replicas": replicas },
    });
    let params = PatchParams::apply(HANDOVER_MANAGER).force();
    api.patch(desired.name(), &params, &Patch::Apply(&patch))
        .await
        .map_err(Error::kube(format!(
            "hand spec.replicas of Deployment {}/{} over to the HPA",
            desired.namespace().unwrap_or_default(),
            desired.name()
        )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    use super::*;
    use crate::objects::{objects, tests::load};

    fn live(manager: &str, fields: serde_json::Value) -> DynamicObject {
        let mut o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ai-api-proxy"}, "spec": {"replicas": 3},
        }))
        .unwrap();
        o.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }]);
        o
    }

    fn deployment(env: &str) -> Object {
        objects(&load(env), env)
            .into_iter()
            .find(|o| o.kind() == "Deployment")
            .unwrap()
    }

    #[test]
    fn replicas_we_applied_are_handed_over_when_autoscaling_takes_them() {
        let owned = json!({"f:spec": {"f:replicas": {}, "f:template": {}}});
        // production autoscales: its Deployment has no replicas.
        assert_eq!(
            replicas_to_hand_over(&deployment("production"), &live("infra", owned.clone())),
            Some(3)
        );
        // Someone else's replicas, or none of ours: nothing to hand over.
        assert_eq!(
            replicas_to_hand_over(&deployment("production"), &live("kubectl", owned.clone())),
            None
        );
        assert_eq!(
            replicas_to_hand_over(
                &deployment("production"),
                &live("infra", json!({"f:spec": {"f:template": {}}}))
            ),
            None
        );
        // development sets replicas itself: it keeps them.
        assert_eq!(
            replicas_to_hand_over(&deployment("development"), &live("infra", owned)),
            None
        );
    }

    #[test]
    fn a_new_autoscaled_deployment_starts_at_the_hpas_floor() {
        let all = objects(&load("production"), "production");
        let refs: Vec<&Object> = all.iter().collect();
        // production: autoscaling with min_replicas = 2.
        assert_eq!(first_replicas(&deployment("production"), &refs), Some(2));
        let without_hpa: Vec<&Object> = refs
            .iter()
            .copied()
            .filter(|o| o.kind() != "HorizontalPodAutoscaler")
            .collect();
        assert_eq!(
            first_replicas(&deployment("production"), &without_hpa),
            None
        );
        assert_eq!(first_replicas(&deployment("development"), &refs), None);
    }
}
