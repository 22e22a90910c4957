//! `infra`: typed Kubernetes manifests for the AI API proxy, from layered environment files.
#![forbid(unsafe_code)]
