//! Clients may speak HTTP/2 (cleartext, prior knowledge) as well as HTTP/1.1.

mod common;

use common::fake::Fake;
use common::*;

#[tokio::test]
async fn serves_http2_clients_including_streams() {
    let fake = Fake::start().await;
    let proxy = Proxy::start(config(&[("main", fake.base_url())], &[("m", &["main"])]));
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(proxy.url("/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let r = h2
        .post(proxy.url("/v1/chat/completions?chunks=3&delay_ms=10"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat_body("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let (events, error) = sse_events(r).await;
    assert_eq!(error, None);
    assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    assert_eq!(
        fake.ctl.last().headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}").as_str()
    );
}
