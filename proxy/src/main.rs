//! `ai-api-proxy`: the OpenAI-compatible gateway (server to come in its own issue).
fn main() {}
