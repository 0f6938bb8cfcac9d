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
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            orders: 0,
            rate_scale: 1.0,
            unlimited: false,
            feed_processing: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(3600),
        }
    }
}
