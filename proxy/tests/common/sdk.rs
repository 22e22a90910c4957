//! Where the official SDKs are: `SDK_PYTHON` (a Python with `openai` and `anthropic`
//! installed, from `.ci/sdk.sh`) and `SDK_NODE_PATH` (`node_modules` with `openai`). Missing,
//! a test prints why and skips, unless `SDK_REQUIRED=1` (set by CI) makes that a failure.

use std::path::PathBuf;

fn required() -> bool {
    std::env::var("SDK_REQUIRED").is_ok_and(|v| v == "1")
}

fn from_env(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(v) => Some(PathBuf::from(v)),
        None if required() => panic!("{var} is not set and SDK_REQUIRED=1"),
        None => {
            println!("SKIPPED: {var} is not set (run .ci/sdk.sh to install the SDKs)");
            None
        }
    }
}

/// The Python that has the SDKs.
pub fn python() -> Option<PathBuf> {
    from_env("SDK_PYTHON")
}

/// The `node_modules` directory that has the Node SDK.
pub fn node_path() -> Option<PathBuf> {
    from_env("SDK_NODE_PATH")
}
