//! Start-up configuration of a simulator and the default seller.

use std::time::Duration;

/// The default seller: any LWA client id/secret/refresh token maps to it unless
/// registered otherwise.
pub const DEFAULT_SELLER_ID: &str = "A1SIMSELLER0001";

/// Start-up configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice (ids, generated orders, fault probabilities).
    pub seed: u64,
    /// Orders generated for the default seller at start-up.
    pub orders: usize,
    /// Multiplies rate-limit refill speed and divides access-token lifetime.
    pub rate_scale: f64,
    /// No rate limiting at all.
    pub unlimited: bool,
    /// Time a feed takes from IN_QUEUE to DONE.
    pub feed_processing: Duration,
    /// LWA access-token lifetime (before `rate_scale`).
    pub token_lifetime: Duration,
    /// SQS-compatible endpoint notifications are sent to (moto's server mode in tests): an SQS
    /// ARN `arn:aws:sqs:REGION:ACCOUNT:NAME` is the queue `{sqs_endpoint}/{ACCOUNT}/{NAME}`.
    pub sqs_endpoint: String,
}

/// The SQS endpoint when none is configured: `SQS_ENDPOINT`, else moto on port 4566.
pub fn default_sqs_endpoint() -> String {
    std::env::var("SQS_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SQS_ENDPOINT.to_string())
}

/// Where `scripts/local-services` starts moto.
pub const DEFAULT_SQS_ENDPOINT: &str = "http://127.0.0.1:4566";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            orders: 0,
            rate_scale: 1.0,
            unlimited: false,
            feed_processing: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(3600),
            sqs_endpoint: default_sqs_endpoint(),
        }
    }
}
