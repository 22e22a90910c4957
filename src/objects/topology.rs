//! Topology spread constraints: replicas spread over nodes and zones, hard or soft.

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use super::labels;
use crate::config::{Environment, Spread};

/// Node topology key.
pub const NODE_KEY: &str = "kubernetes.io/hostname";
/// Zone topology key.
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// One constraint per dimension that is not `Off`, nodes first.
///
/// `matchLabelKeys: [pod-template-hash]` spreads each ReplicaSet on its own, so the pods of the
/// outgoing release do not skew where the new ones land during a rollout.
pub fn spread_constraints(env: &Environment, env_name: &str) -> Vec<TopologySpreadConstraint> {
    let spread = &env.topology_spread;
    [
        (NODE_KEY, spread.across_nodes),
        (ZONE_KEY, spread.across_zones),
    ]
    .into_iter()
    .filter_map(|(key, how)| {
        let when = match how {
            Spread::Off => return None,
            Spread::Preferred => "ScheduleAnyway",
            Spread::Required => "DoNotSchedule",
        };
        Some(TopologySpreadConstraint {
            max_skew: i32::try_from(spread.max_skew).unwrap_or(i32::MAX),
            topology_key: key.into(),
            when_unsatisfiable: when.into(),
            label_selector: Some(labels::label_selector(env, env_name)),
            match_label_keys: Some(vec!["pod-template-hash".into()]),
            ..Default::default()
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn spread_modes_map_to_when_unsatisfiable() {
        let env = load("production");
        let c = spread_constraints(&env, "production");
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].topology_key.as_str(), c[0].when_unsatisfiable.as_str()),
            (NODE_KEY, "DoNotSchedule")
        );
        assert_eq!(
            (c[1].topology_key.as_str(), c[1].when_unsatisfiable.as_str()),
            (ZONE_KEY, "ScheduleAnyway")
        );
        let selector = c[0]
            .label_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone());
        assert_eq!(selector, Some(labels::selector(&env, "production")));
        assert!(!selector.unwrap_or_default().contains_key(labels::VERSION));
    }

    #[test]
    fn off_means_no_constraint() {
        assert!(spread_constraints(&load("development"), "development").is_empty());
    }
}
