//! The SP-API client of a service.

use std::time::Duration;

/// The SP-API client a service uses: `rate_scale` as configured (`SPAPI_RATE_SCALE`, only for
/// a simulator run), limiter waits longer than `max_limiter_wait` become continuations.
///
/// With a scaled rate the client does not adopt `x-amzn-RateLimit-Limit` (the simulator
/// reports Amazon's unscaled rate, which would slow the shared bucket down to real time) and
/// refreshes tokens a scaled margin before they expire (the simulator shortens their life).
pub fn spapi_client(
    pool: &sqlx::PgPool,
    rate_scale: f64,
    max_limiter_wait: Duration,
) -> Result<spapi::SpApi, spapi::Error> {
    let defaults = spapi::ClientConfig::default();
    let scaled = (rate_scale - 1.0).abs() > f64::EPSILON;
    spapi::SpApi::new(
        pool.clone(),
        spapi::ClientConfig {
            rate_scale,
            max_limiter_wait,
            adapt_to_rate_limit_header: !scaled,
            token_refresh_margin: if scaled {
                defaults.token_refresh_margin.div_f64(rate_scale.max(1.0))
            } else {
                defaults.token_refresh_margin
            },
            ..defaults
        },
    )
}
