//! The one integration-test binary: real HTTP against the gateway simulator (or a raw server
//! that sends exact bytes), asserting on the spans that were exported.

mod bench_smoke;
mod bodies;
mod collector;
mod content;
mod dashboards;
mod diagnosis;
mod e2e;
mod e2e_logs;
mod e2e_secrets;
mod errors;
mod logs;
mod metrics;
mod passthrough;
mod promql;
mod retry;
mod retry_scenarios;
mod secrets;
mod setups;
#[cfg(feature = "redis")]
mod shared_quota;
mod spans;
mod spend;
mod streaming;
mod support;
