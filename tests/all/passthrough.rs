//! Calls the matcher does not select pass through untouched and leave no span.

use crate::support::*;

#[tokio::test]
async fn other_paths_and_hosts_pass_through_without_a_span() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let models = client
        .get(format!("{}/v1/models", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let listed: serde_json::Value = models.json().await.unwrap();
    assert!(listed["data"].as_array().is_some_and(|d| !d.is_empty()));
    // A chat call to a host nobody configured is not the gateway.
    let other = llm_gateway_otel::GatewayMiddleware::builder()
        .traced()
        .build()
        .unwrap();
    let plain = crate::support::client(other);
    let r = plain
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    assert!(capture.spans().is_empty(), "{:#?}", capture.spans());
}
