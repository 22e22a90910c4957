//! Turns built objects into deterministic YAML documents.
