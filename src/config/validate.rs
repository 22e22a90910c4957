//! Rules across keys of an [`Environment`] that its types alone cannot express.
//!
//! Types already refuse what a single value gets wrong while the layers are read (syntax,
//! unknown keys, wrong types, quantities, DNS names, ports, durations); [`check`] adds the rules
//! that relate keys to each other. Each rule is a small function that reports against the key
//! path (from the environment root) a user has to edit, says what was expected, and quotes the
//! bad value, except for values that look like secrets: those are never repeated.

mod egress;
mod monitoring;
mod route;
mod rules;
mod secrets;
mod shared_limits;
mod telemetry;
#[cfg(test)]
mod tests;
mod traffic;

use ai_api_proxy_config::{Problem, Report};

pub use secrets::{looks_like_secret, redact_text};

use super::Environment;

/// Every broken rule, with the key path (from the environment root) where it is broken, in
/// the order the rules run. A rule that compares its key with another quotes the other key by
/// its full dotted path (`autoscaling.min_replicas`): the loader looks such paths up and names
/// the layer that set them when it is not the one that set the reported key.
pub fn check(env: &Environment) -> Vec<Problem> {
    let mut r = Report::default();
    if let Err(problems) = env.proxy.validate() {
        for p in problems {
            r.push(format!("proxy.{}", p.path), p.message);
        }
    }
    rules::image(&mut r, env);
    rules::replicas(&mut r, env);
    rules::resources(&mut r, env);
    rules::autoscaling(&mut r, env);
    rules::disruption_budget(&mut r, env);
    traffic::ingress(&mut r, env);
    traffic::ingress_nginx_annotations(&mut r, env);
    route::http_route(&mut r, env);
    traffic::network_policy(&mut r, env);
    monitoring::metrics(&mut r, env);
    rules::pod(&mut r, env);
    rules::proxy_in_a_cluster(&mut r, env);
    shared_limits::shared_limits(&mut r, env);
    egress::egress(&mut r, env);
    telemetry::telemetry(&mut r, env);
    secrets::no_secret_values(&mut r, env);
    // Messages quote the values they reject; a rejected value that is a credential is not repeated.
    r.into_problems()
        .into_iter()
        .map(|p| Problem {
            path: redact_text(&p.path),
            message: redact_text(&p.message),
        })
        .collect()
}

/// `parent.key`, quoting `key` like TOML does when it is not a bare key (`ingress.annotations."a/b"`).
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent.is_empty(), bare) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{key:?}"),
        (false, true) => format!("{parent}.{key}"),
        (false, false) => format!("{parent}.{key:?}"),
    }
}
