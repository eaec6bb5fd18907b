//! The API key never reaches any exported attribute, event or status, even when the gateway
//! echoes it back.

use llm_gateway_simulator::{Fault, Simulator};

use crate::support::*;

const HEX_KEY: &str = "5f0e3c9a7b1d4e2f8a6c0b9d3e7f1a2c";
const ODD_KEY: &str = "letmein-please";

#[tokio::test]
async fn a_key_echoed_in_an_error_body_is_redacted_everywhere() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    for auth in [HEX_KEY.to_owned(), format!("Bearer {ODD_KEY}")] {
        sim.inject(Fault::EchoKey(401));
        let response = client
            .post(sim.chat_url())
            .header("authorization", &auth)
            .json(&chat("claude-sonnet-4-6"))
            .send()
            .await
            .unwrap();
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&auth),
            "the hostile gateway echoed the key to the user: {body}"
        );
    }
    let spans = capture.spans();
    let recorded = everything_recorded(&spans);
    assert!(recorded.contains("[REDACTED]"), "{recorded}");
    for secret in [HEX_KEY, ODD_KEY] {
        assert!(!recorded.contains(secret), "{secret} leaked:\n{recorded}");
    }
    // The key did cross the wire to the gateway, where it belongs.
    assert_eq!(
        sim.received()[0]
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1,
        HEX_KEY
    );
}

#[tokio::test]
async fn a_key_in_the_query_string_is_not_recorded_in_url_full() {
    let capture = Capture::start();
    let sim = Simulator::builder().api_key(HEX_KEY).start().await.unwrap();
    let client = client(
        llm_gateway_otel::GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), llm_gateway_otel::Region::US)
            // url.full is on the attempt span, which a single attempt has only with Always.
            .attempt_spans(llm_gateway_otel::AttemptSpans::Always)
            .build()
            .unwrap(),
    );
    let response = client
        .post(format!("{}?api_key={HEX_KEY}", sim.chat_url()))
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a key in the query string does not authenticate"
    );
    let span = capture.call();
    let attempt = &capture.attempts_of(&span)[0];
    assert_eq!(
        attr_str(attempt, "url.full"),
        Some(format!("{}?api_key=[REDACTED]", sim.chat_url()))
    );
    let recorded = everything_recorded(&capture.spans());
    assert!(!recorded.contains(HEX_KEY), "{recorded}");
}

#[tokio::test]
async fn a_wrong_key_is_rejected_and_not_recorded() {
    let capture = Capture::start();
    let sim = Simulator::builder().api_key(HEX_KEY).start().await.unwrap();
    let client = client_for(&sim.addr().to_string(), llm_gateway_otel::Region::US);
    let wrong = "0000000000aaaaaaaaaa1111111111bb";
    let response = client
        .post(sim.chat_url())
        .header("authorization", wrong)
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let ok = client
        .post(sim.chat_url())
        .header("authorization", HEX_KEY)
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    ok.bytes().await.unwrap();
    let recorded = everything_recorded(&capture.spans());
    assert!(
        !recorded.contains(wrong) && !recorded.contains(HEX_KEY),
        "{recorded}"
    );
    assert_eq!(capture.calls().len(), 2);
}

#[tokio::test]
async fn a_failed_connection_does_not_record_the_key_from_the_url() {
    let capture = Capture::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client_for(&addr.to_string(), llm_gateway_otel::Region::US);
    let err = client
        .post(format!(
            "http://{addr}/v1/chat/completions?api_key={ODD_KEY}"
        ))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(ODD_KEY),
        "reqwest's own message names the URL: {err}"
    );
    let recorded = everything_recorded(&capture.spans());
    assert!(recorded.contains("connect"), "{recorded}");
    assert!(!recorded.contains(ODD_KEY), "{recorded}");
}
