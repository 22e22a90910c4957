//! What lets people see and be told about the proxy: a PodMonitor for Prometheus, a
//! PrometheusRule with the alerts, and a Grafana dashboard. Every PromQL expression is written
//! from the metric catalogue (`ai_api_proxy_config::metrics`) through [`promql`].

pub mod alerts;
pub mod dashboard;
pub mod grafana;
pub mod pod_monitor;
pub mod prometheus_rule;
pub mod promql;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels;
use crate::config::Environment;

/// Metadata of the PodMonitor and PrometheusRule: ours, plus the labels Prometheus selects by.
fn metadata(env: &Environment, env_name: &str) -> ObjectMeta {
    let mut metadata = labels::metadata(env, env_name);
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(env.metrics.prometheus_labels.clone());
    metadata
}
