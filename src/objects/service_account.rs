//! The proxy's own ServiceAccount, with API token automount off (the proxy never calls the API).

use k8s_openapi::api::core::v1::ServiceAccount;

use super::labels;
use crate::config::Environment;

/// The ServiceAccount the pods run as; no token is mounted into them.
pub fn service_account(env: &Environment, env_name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: labels::metadata(env, env_name),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::tests::load;

    #[test]
    fn token_automount_is_off() {
        let sa = service_account(&load("production"), "production");
        assert_eq!(sa.automount_service_account_token, Some(false));
        assert_eq!(sa.metadata.namespace.as_deref(), Some("ai-services"));
    }
}
