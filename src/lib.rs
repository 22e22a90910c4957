//! `infra`: typed Kubernetes manifests for the AI API proxy, from layered environment files.
//!
//! Data flows one way: [`config`] (layered, validated [`config::Environment`]) → [`objects`] (one
//! pure builder per Kubernetes object; [`pipeline`] runs both) → [`render`] (deterministic YAML) → [`output`] / [`plan`]
//! (the only modules that touch `out/`); [`apply`] sends the same objects to a cluster.
#![forbid(unsafe_code)]

pub mod apply;
pub mod cmd;
pub mod config;
pub mod gitops;
pub mod objects;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod render;
