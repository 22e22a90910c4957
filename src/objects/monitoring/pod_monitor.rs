//! The PodMonitor: Prometheus scrapes every proxy pod's metrics endpoint.

use infra_crds::PodMonitor;
use infra_crds::monitoring::podmonitors::{
    PodMonitorPodMetricsEndpoints, PodMonitorSelector, PodMonitorSpec,
};

use crate::config::Environment;
use crate::objects::{ADMIN_PORT_NAME, labels};

/// The container port that serves metrics: the admin port, which the Service never exposes.
pub const METRICS_PORT_NAME: &str = ADMIN_PORT_NAME;

/// The PodMonitor, or `None` when `metrics.pod_monitor` is off. A PodMonitor rather than a
/// ServiceMonitor: the metrics port is the pods', not something the Service exposes.
pub fn pod_monitor(env: &Environment, env_name: &str) -> Option<PodMonitor> {
    if !env.metrics.pod_monitor {
        return None;
    }
    Some(PodMonitor {
        metadata: super::metadata(env, env_name),
        spec: PodMonitorSpec {
            selector: PodMonitorSelector {
                match_labels: Some(labels::selector(env, env_name)),
                ..Default::default()
            },
            pod_metrics_endpoints: Some(vec![PodMonitorPodMetricsEndpoints {
                port: Some(METRICS_PORT_NAME.into()),
                path: Some(env.proxy.endpoints.metrics.clone()),
                interval: Some(format!("{}s", env.metrics.scrape_interval.as_secs_ceil())),
                ..Default::default()
            }]),
            ..Default::default()
        },
    })
}
