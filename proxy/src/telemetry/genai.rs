//! The names the proxy's spans carry, in one place: the OpenTelemetry semantic conventions'
//! attributes (GenAI, HTTP, server) at the pinned version and the proxy's own few. Their values
//! come from the request's facts: the operation from the route, the provider from the
//! upstream's kind (`UpstreamKind::provider_name`).

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
    /// `chat`, `text_completion`, `embeddings`, …: the route's operation.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `openai`, `anthropic`: the API the upstream speaks.
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
}
