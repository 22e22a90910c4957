//! Writes rendered manifests to `out/<env>/`.
