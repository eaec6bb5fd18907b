//! reqwest-retry's own retry scenarios (TrueLayer/reqwest-middleware,
//! `reqwest-retry/tests/all/retry.rs`), ported against the DEFAULT middleware
//! (`GatewayMiddleware::builder().gateway_host(..).build()`): 3 attempts per model,
//! reqwest-retry's classification, full-jitter backoff from 500 ms.
//!
//! reqwest-retry's tests use wiremock and its own `SimpleServer`; here one small raw server
//! ([`Scripted`]) answers request number n with the n-th [`Answer`] of a script. Each test
//! asserts what a user notices: the status and body the caller gets (or its error), how many
//! requests reached the server, and the call span's `http.request.resend_count` and attempt
//! spans.
//!
//! Each test was checked to FAIL with retries off: with `.retry(Retry::disabled())` added in
//! [`middleware`], every test fails except the "returned after one attempt" rows of the status
//! table, which were checked to fail with a classifier that retries everything
//! (`Retry::default().classifier(|_: &_| Some(Retryable::Transient))`).
//!
//! Most tests run on tokio's paused clock so the backoff waits pass at once. The timeout test
//! runs on the real clock: with a paused clock and real sockets tokio advances time whenever
//! the runtime is idle, which fires a client timeout while the server is still answering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_gateway_otel::names::*;
use llm_gateway_otel::{GatewayMiddleware, Region};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// The 200 body the scripted server sends for [`Answer::Chat`].
const CHAT_BODY: &str = r#"{"id":"x","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"request_id":"req-1"}"#;

/// What the scripted server does with one request (read whole first, then answered; every
/// answer closes the connection, so each request comes on a connection of its own).
#[derive(Clone, Debug)]
enum Answer {
    /// 200 with [`CHAT_BODY`].
    Chat,
    /// This status with [`scripted_body`] (no body for 204, 205 and 304).
    Status(u16),
    /// These bytes, then close.
    Raw(&'static str),
    /// Shut the connection down (both ways) without a byte of answer.
    Shutdown,
    /// Reset the connection (linger zero) without a byte of answer.
    Reset,
    /// Wait, then answer.
    After(Duration, Box<Answer>),
}

/// The body of [`Answer::Status`]: a gateway-shaped error naming the status.
fn scripted_body(status: u16) -> String {
    if matches!(status, 204 | 205 | 304) {
        String::new()
    } else {
        format!(r#"{{"error":{{"code":{status},"message":"scripted {status}"}}}}"#)
    }
}

/// A local HTTP/1.1 server on 127.0.0.1 answering by script, counting the requests it read.
struct Scripted {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Scripted {
    /// Answers request n (from 0) with `script[n]`, and every request past the script with its
    /// last answer.
    async fn start(script: Vec<Answer>) -> Scripted {
        assert!(!script.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let script = script.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    if !read_request(&mut sock).await {
                        return;
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let answer = script[n.min(script.len() - 1)].clone();
                    answer_with(sock, answer).await;
                });
            }
        });
        Scripted { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    /// Requests read whole so far.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request, head and Content-Length body; false if the client left first.
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn answer_with(mut sock: TcpStream, answer: Answer) {
    let mut answer = answer;
    while let Answer::After(wait, then) = answer {
        tokio::time::sleep(wait).await;
        answer = *then;
    }
    let bytes = match answer {
        Answer::Chat => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{CHAT_BODY}",
            CHAT_BODY.len()
        ),
        Answer::Status(status) => {
            let body = scripted_body(status);
            let length = match status {
                204 | 304 => String::new(),
                _ => format!("content-length: {}\r\n", body.len()),
            };
            format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n{body}"
            )
        }
        Answer::Raw(raw) => raw.to_owned(),
        Answer::Shutdown => {
            if let Ok(std) = sock.into_std() {
                let _ = std.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
        Answer::Reset => {
            // Linger zero: the close sends a reset instead of a FIN.
            #[allow(deprecated)]
            let _ = sock.set_linger(Some(Duration::ZERO));
            drop(sock);
            return;
        }
        Answer::After(..) => unreachable!(),
    };
    let _ = sock.write_all(bytes.as_bytes()).await;
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

/// The middleware under test: the default one, for the scripted server's address.
fn middleware(addr: SocketAddr) -> GatewayMiddleware {
    GatewayMiddleware::builder()
        .traced()
        .gateway_host(addr.to_string(), Region::US)
        .build()
        .expect("config")
}

/// What one call through the default middleware came to.
struct Observed {
    /// The status and body the caller got, or its error.
    outcome: Result<(u16, String), reqwest_middleware::Error>,
    /// Requests that reached the server.
    requests: usize,
    /// The call span's `http.request.resend_count`.
    resend_count: Option<i64>,
    /// The call span's `llm_gateway.retry.stop_reason`.
    stop_reason: Option<String>,
    /// `error.type` of each attempt span, in order.
    attempt_errors: Vec<Option<String>>,
}

impl Observed {
    fn status_and_body(&self) -> (u16, &str) {
        match &self.outcome {
            Ok((status, body)) => (*status, body),
            Err(e) => panic!("the call failed: {e:?}"),
        }
    }

    /// Two attempts failed without an answer, the third got the chat answer, and the caller
    /// saw only that.
    fn assert_two_transport_failures_then_the_answer(&self) {
        assert_eq!(self.status_and_body(), (200, CHAT_BODY));
        assert_eq!(self.requests, 3);
        assert_eq!(self.resend_count, Some(2));
        assert_eq!(
            self.attempt_errors,
            vec![Some("request".to_owned()), Some("request".to_owned()), None]
        );
    }
}

/// One chat call to a server answering by `script`, with `http` under the default middleware
/// (and `timeout` on the request when given); the body is read whole.
async fn call(script: Vec<Answer>, http: reqwest::Client, timeout: Option<Duration>) -> Observed {
    let capture = Capture::start();
    let server = Scripted::start(script).await;
    let client: ClientWithMiddleware = ClientBuilder::new(http)
        .with(middleware(server.addr))
        .build();
    let mut request = client.post(server.url()).json(&chat("gpt-4o"));
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.expect("the body");
            Ok((status, body))
        }
        Err(e) => Err(e),
    };
    let span = capture.call();
    let mut attempts = capture.attempts_of(&span);
    attempts.sort_by_key(|a| attr_i64(a, HTTP_REQUEST_RESEND_COUNT));
    Observed {
        outcome,
        requests: server.requests(),
        resend_count: attr_i64(&span, HTTP_REQUEST_RESEND_COUNT),
        stop_reason: attr_str(&span, LLM_GATEWAY_RETRY_STOP_REASON),
        attempt_errors: attempts.iter().map(|a| attr_str(a, ERROR_TYPE)).collect(),
    }
}

/// [`call`] with a plain reqwest client and no timeout.
async fn plain_call(script: Vec<Answer>) -> Observed {
    call(script, reqwest::Client::new(), None).await
}

/// Statuses reqwest-retry's table returns after one attempt (`assert_no_retry!`): 2xx, 3xx,
/// and 4xx but 408 and 429.
const NOT_RETRIED: &[u16] = &[
    200, 201, 202, 203, 204, 205, 206, 207, 226, // 2xx
    300, 301, 302, 303, 304, 307, 308, // 3xx
    400, 401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
    422, 423, 424, 426, 428, 431, 451, // 4xx
];

/// Statuses reqwest-retry's table retries (`assert_retry_succeeds!`): 5xx, 408 and 429.
const RETRIED: &[u16] = &[
    500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511, 408, 429,
];

/// What the table tests compare per status: (status, body) the caller got, requests the
/// server read, the call's resend count, the attempt spans.
type Row = (u16, String, usize, Option<i64>, usize);

fn row(seen: &Observed) -> Row {
    let (status, body) = seen.status_and_body();
    (
        status,
        body.to_owned(),
        seen.requests,
        seen.resend_count,
        seen.attempt_errors.len(),
    )
}

/// Runs `script_for(status)` for each status and fails listing every status whose row is not
/// `expected(status)`.
async fn table(
    statuses: &[u16],
    script_for: impl Fn(u16) -> Vec<Answer>,
    expected: impl Fn(u16) -> Row,
) {
    // One reqwest client (its TLS set-up is most of a row's time) under a new middleware per
    // status: each row starts with a full retry budget.
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for &status in statuses {
        let seen = row(&call(script_for(status), http.clone(), None).await);
        let want = expected(status);
        if seen != want {
            wrong.push(format!("{status}: got {seen:?}, want {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "(status, body, requests, resend_count, attempt spans):\n{}",
        wrong.join("\n")
    );
}

/// From `assert_no_retry!` (`assert_no_retry_on_200` ... `assert_no_retry_on_451`): the
/// server always answers the status; it reaches the caller after one request.
#[tokio::test(start_paused = true)]
async fn statuses_returned_after_one_attempt() {
    table(
        NOT_RETRIED,
        |status| vec![Answer::Status(status)],
        // One attempt: no attempt span (the call's span holds its status).
        |status| (status, scripted_body(status), 1, None, 0),
    )
    .await;
}

/// From `assert_retry_succeeds!` (`assert_retry_succeeds_on_500` ... `_on_511`, `_on_408`,
/// `_on_429`): the server answers the status once, then 200; the caller gets the 200 after
/// two requests.
#[tokio::test(start_paused = true)]
async fn statuses_retried_until_a_200() {
    table(
        RETRIED,
        |status| vec![Answer::Status(status), Answer::Chat],
        |_| (200, CHAT_BODY.to_owned(), 2, Some(1), 2),
    )
    .await;
}

/// The other end of `assert_retry_succeeds!`, which never runs out of retries: a server that
/// always answers a retried status gets the default 3 attempts, and the caller gets the last
/// answer as it came.
#[tokio::test(start_paused = true)]
async fn statuses_retried_up_to_three_attempts_then_returned() {
    table(
        RETRIED,
        |status| vec![Answer::Status(status)],
        |status| (status, scripted_body(status), 3, Some(2), 3),
    )
    .await;
}

/// From `assert_retry_on_request_timeout`: the first answer (a 500) comes after the
/// request's timeout, the second at once; the caller gets the 200. Real clock (see the top
/// of the file). reqwest-retry sets the timeout on the request (10 ms against a 1 s delay);
/// here 300 ms, on the request and, as users more often do, on the client.
#[tokio::test]
async fn a_timed_out_attempt_is_retried() {
    let slow_then_fast = || {
        vec![
            Answer::After(Duration::from_secs(2), Box::new(Answer::Status(500))),
            Answer::Chat,
        ]
    };
    let timeout = Duration::from_millis(300);
    let on_the_client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client");
    for (how, http, on_request) in [
        ("request timeout", reqwest::Client::new(), Some(timeout)),
        ("client timeout", on_the_client, None),
    ] {
        let started = std::time::Instant::now();
        let seen = call(slow_then_fast(), http, on_request).await;
        let elapsed = started.elapsed();
        assert_eq!(seen.status_and_body(), (200, CHAT_BODY), "{how}");
        assert_eq!(
            seen.requests, 2,
            "{how}: the slow request reached the server"
        );
        assert_eq!(seen.resend_count, Some(1), "{how}");
        assert_eq!(
            seen.attempt_errors,
            vec![Some("timeout".to_owned()), None],
            "{how}"
        );
        // 300 ms timeout + at most 500 ms of backoff + a fast answer.
        assert!(elapsed < Duration::from_millis(1500), "{how}: {elapsed:?}");
    }
}

/// From `assert_retry_on_incomplete_message`: "HTTP/1.1" and a close (hyper's
/// IncompleteMessage), then a complete answer. reqwest-retry sends three incomplete answers
/// with 3 retries (4 attempts); the default here is 3 attempts, so two incomplete answers.
#[tokio::test(start_paused = true)]
async fn an_incomplete_http_answer_is_retried() {
    let seen = plain_call(vec![
        Answer::Raw("HTTP/1.1"),
        Answer::Raw("HTTP/1.1"),
        Answer::Chat,
    ])
    .await;
    seen.assert_two_transport_failures_then_the_answer();
}

/// reqwest-retry's exact script for `assert_retry_on_incomplete_message` (three incomplete
/// answers, then a good one) against the default 3 attempts: the third incomplete answer is
/// the last attempt, and the caller gets its error; the good answer is never asked for. The
/// error is the last attempt's `reqwest_middleware::Error::Reqwest` as it came (reqwest-retry
/// would wrap it in `Error::Middleware(RetryError::WithRetries { .. })`).
#[tokio::test(start_paused = true)]
async fn three_incomplete_http_answers_use_up_the_default_attempts() {
    let seen = plain_call(vec![
        Answer::Raw("HTTP/1.1"),
        Answer::Raw("HTTP/1.1"),
        Answer::Raw("HTTP/1.1"),
        Answer::Chat,
    ])
    .await;
    let err = seen.outcome.as_ref().expect_err("out of attempts");
    assert!(
        matches!(err, reqwest_middleware::Error::Reqwest(e) if e.is_request() && !e.is_timeout() && !e.is_connect()),
        "{err:?}"
    );
    assert_eq!(seen.requests, 3);
    assert_eq!(seen.resend_count, Some(2));
    assert_eq!(seen.stop_reason.as_deref(), Some("max_attempts"));
    assert_eq!(seen.attempt_errors, vec![Some("request".to_owned()); 3]);
}

/// From `assert_retry_on_hyper_canceled`: the server reads the request and shuts the
/// connection down without answering. (reqwest-retry's handler answers 200 to its first two
/// connections and shuts down only from the third on, so its call succeeds at once and no
/// retry happens; this is the scenario its comments describe: failures first, then a 200.)
#[tokio::test(start_paused = true)]
async fn a_connection_shut_down_without_an_answer_is_retried() {
    let seen = plain_call(vec![Answer::Shutdown, Answer::Shutdown, Answer::Chat]).await;
    seen.assert_two_transport_failures_then_the_answer();
}

/// From `assert_retry_on_connection_reset_by_peer`: the server reads the request and resets
/// the connection. (reqwest-retry's handler has the same counter as above, so its first call
/// also succeeds at once; and it drops the stream, a plain close. A linger-zero close is a
/// real reset: the client's read fails with ConnectionReset.)
#[tokio::test(start_paused = true)]
async fn a_connection_reset_by_the_server_is_retried() {
    let seen = plain_call(vec![Answer::Reset, Answer::Reset, Answer::Chat]).await;
    seen.assert_two_transport_failures_then_the_answer();
}
