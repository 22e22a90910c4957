//! The API surface through the real binary: routing, key injection, auth, errors, CORS,
//! rate limits, request ids and the access log.

mod common;

use ai_api_proxy_config::{ClientAuth, Passthrough};
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use common::fake::Fake;
use common::*;

const SEED_MODELS: [&str; 4] = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-3-5-sonnet",
    "deepseek-chat",
];

async fn seed_like() -> (Fake, Proxy) {
    let fake = Fake::start().await;
    let models: Vec<(&str, &[&str])> = SEED_MODELS.iter().map(|m| (*m, &["main"][..])).collect();
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &models));
    (fake, proxy)
}

#[tokio::test]
async fn models_are_listed_from_config_without_calling_upstream() {
    let (fake, proxy) = seed_like().await;
    let list = openai(&proxy, CLIENT_KEY).models().list().await.unwrap();
    let ids: Vec<_> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, SEED_MODELS);
    assert_eq!(fake.ctl.count(), 0);
}

#[tokio::test]
async fn chat_injects_upstream_key_and_never_forwards_the_clients() {
    let (fake, proxy) = seed_like().await;
    let client = openai(&proxy, CLIENT_KEY);
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("a secret prompt")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    let response = client.chat().create(request).await.unwrap();
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("Hello!")
    );
    let seen = fake.ctl.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/v1/chat/completions");
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}").as_str()
    );
    let all_headers = format!("{:?}", seen.headers);
    assert!(!all_headers.contains(CLIENT_KEY), "{all_headers}");

    // The body goes through byte for byte.
    let raw =
        r#"{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"x"}],"temperature":0.5}"#;
    let r = chat(&proxy)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.ctl.last().body, raw.as_bytes());

    let log = proxy
        .wait_log(|v| v["model"] == "gpt-4o-mini" && v["complete"] == true)
        .await;
    assert_eq!(log["client"], "team-a");
    assert_eq!(log["upstream"], "main");
    assert_eq!(log["status"], 200);
    assert_eq!(log["prompt_tokens"], 9);
    assert_eq!(log["completion_tokens"], 6);
    assert!(log["bytes_sent"].as_u64().unwrap() > 0);
    assert!(log["duration_ms"].as_f64().is_some());
    let out = proxy.all_output();
    for secret in [CLIENT_KEY, UPSTREAM_KEY, "a secret prompt", "Hello!"] {
        assert!(!out.contains(secret), "`{secret}` reached the log");
    }
    assert_eq!(
        proxy
            .metric(r#"ai_proxy_tokens_total{client="team-a",model="gpt-4o",kind="prompt"}"#)
            .await,
        9.0
    );
}

#[tokio::test]
async fn completions_and_embeddings_are_routed() {
    let (fake, proxy) = seed_like().await;
    let r = http()
        .post(proxy.url("/v1/completions?x=1"))
        .bearer_auth(CLIENT_KEY)
        .json(&serde_json::json!({"model": "deepseek-chat", "prompt": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.ctl.last().uri, "/v1/completions?x=1");
    let emb = openai(&proxy, CLIENT_KEY)
        .embeddings()
        .create(
            CreateEmbeddingRequestArgs::default()
                .model("gpt-4o")
                .input("hi")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(emb.data[0].embedding, vec![0.1, 0.2]);
    assert_eq!(fake.ctl.last().uri, "/v1/embeddings");
}

#[tokio::test]
async fn errors_have_openai_shapes() {
    let (fake, proxy) = seed_like().await;
    let key = format!("Bearer {CLIENT_KEY}");
    let chat = "/v1/chat/completions";
    let ok_body = r#"{"model":"gpt-4o","messages":[]}"#;

    let (s, b, h) = post_raw(&proxy, chat, None, ok_body).await;
    assert_eq!(s, 401);
    assert_eq!(
        b,
        r#"{"error":{"message":"Missing bearer authentication in header. Send your proxy key as `Authorization: Bearer <key>` (or `x-api-key: <key>`).","type":"invalid_request_error","param":null,"code":"missing_api_key"}}"#
    );
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-request-id"].len(), 32);

    let (s, b, _) = post_raw(&proxy, chat, Some("Bearer sk-wrong"), ok_body).await;
    assert_eq!(s, 401);
    assert_eq!(
        b,
        r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
    );

    let (s, b, _) = post_raw(
        &proxy,
        chat,
        Some(&key),
        r#"{"model":"gpt-9","messages":[]}"#,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        b,
        r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
    );

    let (s, b, _) = post_raw(&proxy, "/v1/files", Some(&key), ok_body).await;
    assert_eq!(s, 404);
    assert_eq!(
        b,
        r#"{"error":{"message":"Invalid URL (POST /v1/files)","type":"invalid_request_error","param":null,"code":"unknown_url"}}"#
    );

    let r = http()
        .get(proxy.url(chat))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Method GET is not allowed for /v1/chat/completions.","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}"#
    );

    let (s, b, _) = post_raw(
        &proxy,
        chat,
        Some(&key),
        r#"{"model": "gpt-4o", "messages": [}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b,
        r#"{"error":{"message":"We could not parse the JSON body of your request (line 1, column 34).","type":"invalid_request_error","param":null,"code":"invalid_json"}}"#
    );

    let (s, b, _) = post_raw(&proxy, chat, Some(&key), r#"{"messages":[]}"#).await;
    assert_eq!(s, 400);
    assert_eq!(
        b,
        r#"{"error":{"message":"You must provide a model parameter (a string).","type":"invalid_request_error","param":"model","code":"missing_required_parameter"}}"#
    );

    let big = format!(
        r#"{{"model":"gpt-4o","pad":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let (s, b, _) = post_raw(&proxy, chat, Some(&key), &big).await;
    assert_eq!(s, 413);
    assert_eq!(
        b,
        r#"{"error":{"message":"Request body is larger than the limit of 10485760 bytes.","type":"invalid_request_error","param":null,"code":"request_too_large"}}"#
    );

    assert_eq!(fake.ctl.count(), 0, "no error above may reach the upstream");
}

#[tokio::test]
async fn sdk_sees_api_errors() {
    let (_fake, proxy) = seed_like().await;
    let err = openai(&proxy, "sk-nope").models().list().await.unwrap_err();
    match err {
        async_openai::error::OpenAIError::ApiError(e) => {
            assert_eq!(e.status_code.as_u16(), 401);
            assert_eq!(e.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn request_id_is_taken_or_made_and_returned() {
    let (_fake, proxy) = seed_like().await;
    let r = chat(&proxy)
        .header("x-request-id", "req-123")
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-123");
    let log = proxy.wait_log(|v| v["request_id"] == "req-123").await;
    assert_eq!(log["status"], 200);
    let r = http()
        .get(proxy.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
}

#[tokio::test]
async fn operational_endpoints_are_on_the_admin_port_only() {
    let (_fake, proxy) = seed_like().await;
    let r = chat(&proxy)
        .json(&chat_body("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    proxy.wait_log(|v| v["status"] == 200).await;
    for path in ["/health", "/ready", "/metrics"] {
        let r = http().get(proxy.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        // On the API port they do not exist: unknown clients are refused, known ones get 404.
        let r = http().get(proxy.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = http()
            .get(proxy.url(path))
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = http().get(proxy.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for family in [
        "ai_proxy_requests_total",
        "ai_proxy_request_duration_seconds",
        "ai_proxy_upstream_first_byte_seconds",
        "ai_proxy_tokens_total",
        "ai_proxy_in_flight_requests",
        "ai_proxy_rate_limited_total",
        "ai_proxy_upstream_retries_total",
        "ai_proxy_circuit_breaker_state",
        "ai_proxy_stream_errors_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}"))
                || text.contains(&format!("# TYPE {}", family.trim_end_matches("_total"))),
            "{family} missing:\n{text}"
        );
    }
}

#[tokio::test]
async fn anonymous_only_when_configured() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.auth = Some(ClientAuth::Anonymous);
    let proxy = Proxy::start(c);
    let r = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = proxy.wait_log(|v| v["status"] == 200).await;
    assert_eq!(log["client"], "anonymous");
}

#[tokio::test]
async fn passthrough_only_for_configured_paths() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.passthrough = vec![Passthrough {
        path: "/v1/moderations".into(),
        upstream: "main".into(),
    }];
    let proxy = Proxy::start(c);
    let r = http()
        .post(proxy.url("/v1/moderations"))
        .bearer_auth(CLIENT_KEY)
        .json(&serde_json::json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.ctl.last().uri, "/v1/moderations");
    assert_eq!(
        fake.ctl.last().headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}").as_str()
    );
    let r = http()
        .post(proxy.url("/v1/audio/speech"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.cors.allowed_origins = vec!["https://app.example.com".into()];
    let proxy = Proxy::start(c);
    let preflight = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, proxy.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let r = preflight("https://app.example.com").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = preflight("https://evil.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = chat(&proxy)
        .header("origin", "https://app.example.com")
        .json(&chat_body("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_key() {
    let fake = Fake::start().await;
    let mut c = config(&[("main", fake.base_url())], &[("m", &["main"])]);
    c.rate_limit.requests_per_second = 1;
    c.rate_limit.burst = 2;
    let proxy = Proxy::start(c);
    let send = |key: &'static str| {
        http()
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body("m", false))
            .send()
    };
    assert_eq!(send(CLIENT_KEY).await.unwrap().status(), 200);
    assert_eq!(send(CLIENT_KEY).await.unwrap().status(), 200);
    let r = send(CLIENT_KEY).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"message":"Rate limit reached for requests. Please retry after 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
    );
    assert_eq!(
        send("sk-client-test-2").await.unwrap().status(),
        200,
        "other keys have their own bucket"
    );
    assert_eq!(fake.ctl.count(), 3);
    assert_eq!(proxy.metric("ai_proxy_rate_limited_total").await, 1.0);
}
