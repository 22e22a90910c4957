//! One pure builder per Kubernetes object: `&Environment` in, a k8s-openapi value out.
