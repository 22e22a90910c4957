//! Why the proxy cannot start: the one error type of start-up (configuration, secrets,
//! sockets). Messages name files and variables, never their contents.

use std::path::PathBuf;

use ai_api_proxy_config::LoadError;

/// Why the proxy cannot start. Messages name files and variables, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is malformed or inconsistent.
    #[error("configuration file {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: LoadError,
    },
    /// The configuration says nothing about client authentication.
    #[error("the configuration has no `auth`: set a client key file or \"anonymous\"")]
    MissingAuth,
    /// A secret file is missing or unreadable.
    #[error("cannot read secret file {path}: {source}")]
    ReadSecret {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable holding a secret is not set.
    #[error("environment variable {0} is not set (or not UTF-8)")]
    MissingEnv(String),
    /// A secret is empty.
    #[error("the secret from {0} is empty")]
    EmptySecret(String),
    /// The client key file cannot be used.
    #[error("client key file from {source_name}: {error}")]
    KeyFile {
        /// Where the file came from.
        source_name: String,
        /// What is wrong (never the line itself).
        #[source]
        error: crate::guard::keys::KeyFileError,
    },
    /// The upstream key cannot be put in a header.
    #[error("upstream {0}: the API key contains characters not allowed in a header")]
    UpstreamKey(String),
    /// A header value or URL from the configuration cannot be used.
    #[error("upstream {upstream}: {message}")]
    Upstream {
        /// Upstream name.
        upstream: String,
        /// What is wrong.
        message: String,
    },
    /// The egress proxy settings (or `HTTPS_PROXY`) cannot be used.
    #[error("egress: {0}")]
    Egress(String),
    /// The shared limits store's address cannot be used.
    #[error("{0}")]
    SharedLimits(#[from] crate::limits::StoreError),
    /// A CORS origin cannot be a header value.
    #[error("cors: bad origin `{0}`")]
    Cors(String),
    /// Binding a listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listening socket cannot be shared with the workers, or a thread cannot start.
    #[error("cannot start the workers: {0}")]
    Workers(#[source] std::io::Error),
}
