//! Observability: Prometheus metrics and the access log.

pub mod access_log;
pub mod facts;
pub mod logsink;
pub mod metrics;
