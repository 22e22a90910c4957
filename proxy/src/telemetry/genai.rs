//! The names the proxy's spans carry, in one place: the OpenTelemetry semantic conventions'
//! attributes (GenAI, HTTP, server) at the pinned version, the proxy's own few, and the GenAI
//! operation and provider values.

/// The semantic conventions the spans follow: v1.41.0, the last release of the main
/// repository that holds the GenAI conventions (v1.42.0 moved them to their own repository,
/// unreleased as of this pin). Named in proxy/README.md; a change is a deliberate edit here.
pub const SEMCONV_VERSION: &str = "1.41.0";

/// The schema URL of [`SEMCONV_VERSION`], set on the proxy's instrumentation scope.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.0";

/// The instrumentation scope (tracer) name.
pub const SCOPE: &str = "ai-api-proxy";

/// GenAI attributes (Development status in the conventions).
pub mod attr {
    /// `chat`, `text_completion`, `embeddings`: [`super::Operation`].
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `openai`, …: [`super::Provider`].
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// The model the client asked for.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// The model the upstream says answered.
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// Input (prompt) tokens the upstream reported.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// Output (completion) tokens the upstream reported.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// Why each choice stopped (`stop`, `length`, `tool_calls`, …), an array.
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    /// The upstream's host name (client spans).
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The upstream's port (client spans).
    pub const SERVER_PORT: &str = "server.port";
    /// HTTP method.
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// HTTP status of the answer.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// The route template of a server span.
    pub const HTTP_ROUTE: &str = "http.route";
    /// The path of a server span.
    pub const URL_PATH: &str = "url.path";
    /// The full URL of a client span (the upstream's, no query secrets: base URL + path).
    pub const URL_FULL: &str = "url.full";
    /// Why an operation failed: the proxy's error code, or the HTTP status.
    pub const ERROR_TYPE: &str = "error.type";
    /// The client key's id (from the key file), never the key; `anonymous` without auth.
    pub const CLIENT_KEY_ID: &str = "ai_proxy.client.key_id";
    /// The configured upstream name of a client span.
    pub const UPSTREAM: &str = "ai_proxy.upstream";
    /// The number of an attempt on a client span, from 1, across upstreams.
    pub const ATTEMPT: &str = "ai_proxy.attempt";
    /// The request id (`x-request-id`) of a server span.
    pub const REQUEST_ID: &str = "ai_proxy.request_id";
}

/// A GenAI operation (`gen_ai.operation.name`); each API route maps to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Chat Completions (and other chat-shaped APIs, such as Anthropic's Messages).
    Chat,
    /// Legacy Completions.
    TextCompletion,
    /// Embeddings.
    Embeddings,
}

impl Operation {
    /// The conventions' value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::TextCompletion => "text_completion",
            Self::Embeddings => "embeddings",
        }
    }

    /// The operation of an OpenAI API path (after `/v1`), if it is a GenAI one.
    pub fn of_path(path: &str) -> Option<Self> {
        match path.trim_start_matches("/v1") {
            "/chat/completions" => Some(Self::Chat),
            "/completions" => Some(Self::TextCompletion),
            "/embeddings" => Some(Self::Embeddings),
            _ => None,
        }
    }
}

/// Who serves the model (`gen_ai.provider.name`), as the wire protocol an upstream speaks
/// identifies it: an OpenAI-compatible upstream is `openai`, whoever runs it (the conventions
/// ask for the instrumentation's best knowledge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI's API, or one compatible with it.
    OpenAi,
}

impl Provider {
    /// The conventions' value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_url_names_the_pinned_version() {
        assert!(SCHEMA_URL.ends_with(SEMCONV_VERSION));
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&format!("semantic conventions v{SEMCONV_VERSION}")),
            "proxy/README.md must name the pinned version"
        );
    }

    #[test]
    fn operations_of_paths() {
        assert_eq!(
            Operation::of_path("/v1/chat/completions"),
            Some(Operation::Chat)
        );
        assert_eq!(
            Operation::of_path("/completions").map(Operation::as_str),
            Some("text_completion")
        );
        assert_eq!(Operation::of_path("/v1/moderations"), None);
    }
}
