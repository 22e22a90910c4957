//! The PrometheusRule: the alerts of [`super::alerts`], with their runbook action.

use std::collections::BTreeMap;

use infra_crds::PrometheusRule;
use infra_crds::monitoring::prometheusrules::{
    PrometheusRuleGroups, PrometheusRuleGroupsRules, PrometheusRuleSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::alerts::alerts;
use crate::config::Environment;

/// The PrometheusRule, or `None` when `metrics.alerts` is off.
pub fn prometheus_rule(env: &Environment, env_name: &str) -> Option<PrometheusRule> {
    if !env.metrics.alerts {
        return None;
    }
    let runbook = env.metrics.runbook_url.as_deref();
    let rules = alerts(env)
        .into_iter()
        .map(|a| {
            let mut annotations = BTreeMap::from([
                ("summary".to_owned(), a.summary),
                ("runbook".to_owned(), a.action.to_owned()),
            ]);
            if let Some(url) = runbook {
                annotations.insert(
                    "runbook_url".into(),
                    format!("{url}#{}", a.name.to_ascii_lowercase()),
                );
            }
            PrometheusRuleGroupsRules {
                alert: Some(a.name.into()),
                expr: IntOrString::String(a.expr),
                r#for: Some(a.for_.into()),
                labels: Some(BTreeMap::from([(
                    "severity".to_owned(),
                    a.severity.as_str().to_owned(),
                )])),
                annotations: Some(annotations),
                ..Default::default()
            }
        })
        .collect();
    Some(PrometheusRule {
        metadata: super::metadata(env, env_name),
        spec: PrometheusRuleSpec {
            groups: Some(vec![PrometheusRuleGroups {
                name: format!("{}.alerts", env.name.as_str()),
                rules: Some(rules),
                ..Default::default()
            }]),
        },
    })
}
