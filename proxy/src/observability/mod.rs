//! Observability: Prometheus metrics (the GenAI conventions' among them) and the access log.

pub mod access_log;
pub mod facts;
pub mod gen_ai;
pub mod logsink;
pub mod metrics;
