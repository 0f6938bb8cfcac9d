//! The SP-API client of a service, built one way, with the same settings, for every service.
//!
//! Settings (issue 16 settled a disagreement between order-ingest/status-sync and the three
//! feed-side services):
//!
//! * **Limiter wait: `SPAPI_MAX_LIMITER_WAIT_MS`, default 1 s, for every service.** A call
//!   sleeps at most this long in the shared limiter; beyond it the call returns
//!   `Throttled { retry_at }` and the run continues later through the outbox (`not_before`)
//!   instead of holding its message and lease. The feed side's 5 s bought nothing: the quotas
//!   it uses either refill within a second (getFeed 2/s, patchListingsItem 5/s,
//!   confirmShipment 2/s) or take minutes (createFeed, one per two minutes), where 5 s of
//!   sleep is as useless as 1 s.
//! * **`x-amzn-RateLimit-Limit` adopted only at rate scale 1** (Amazon: the header states the
//!   seller's real plan). In a scaled simulator run (`SPAPI_RATE_SCALE` ≠ 1) the header states
//!   the simulator's unscaled table, nothing a run can learn from; leaving it out keeps the
//!   shared buckets at exactly the configured scale. Production (scale 1) is the same for every
//!   service either way; the benchmarks were measured with this setting.
//! * **Access tokens refreshed a scaled margin before expiry** in a scaled run (the simulator
//!   shortens token life by the same factor), Amazon's 5 minutes otherwise.

use std::time::Duration;

use anyhow::Context;

/// Environment variable of the longest limiter wait, in milliseconds (0-600000, default 1000).
pub const MAX_LIMITER_WAIT_VAR: &str = "SPAPI_MAX_LIMITER_WAIT_MS";

/// Default of [`MAX_LIMITER_WAIT_VAR`].
pub const DEFAULT_MAX_LIMITER_WAIT: Duration = Duration::from_secs(1);

/// The longest limiter wait from [`MAX_LIMITER_WAIT_VAR`] (validated: the error names the
/// variable and what is valid).
pub fn max_limiter_wait() -> anyhow::Result<Duration> {
    let ms = crate::env_in_range(
        MAX_LIMITER_WAIT_VAR,
        DEFAULT_MAX_LIMITER_WAIT.as_millis() as u64,
        0..=600_000,
    )?;
    Ok(Duration::from_millis(ms))
}

/// The SP-API client with the settings of every service (see the module doc): `rate_scale` as
/// configured (`SPAPI_RATE_SCALE`, only for a simulator run), limiter waits longer than
/// `max_limiter_wait` become `Throttled` (continuations).
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

impl crate::Ctx {
    /// The service's SP-API client: [`spapi_client`] with the configured rate scale and
    /// [`max_limiter_wait`].
    pub fn spapi_client(&self) -> anyhow::Result<spapi::SpApi> {
        spapi_client(
            &self.pool,
            self.config.spapi_rate_scale,
            max_limiter_wait()?,
        )
        .context("the SP-API client cannot be built")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate_scale: f64) -> spapi::ClientConfig {
        // The settings, without a pool: what `spapi_client` passes to `SpApi::new`.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://127.0.0.1/none")
            .unwrap();
        spapi_client(&pool, rate_scale, DEFAULT_MAX_LIMITER_WAIT)
            .unwrap()
            .config()
            .clone()
    }

    #[tokio::test]
    async fn production_follows_the_header_and_waits_one_second() {
        let c = config(1.0);
        assert!(c.adapt_to_rate_limit_header);
        assert_eq!(c.max_limiter_wait, Duration::from_secs(1));
        assert_eq!(
            c.token_refresh_margin,
            spapi::ClientConfig::default().token_refresh_margin
        );
    }

    #[tokio::test]
    async fn scaled_runs_ignore_the_header_and_scale_the_token_margin() {
        let c = config(100.0);
        assert!(!c.adapt_to_rate_limit_header);
        assert_eq!(
            c.token_refresh_margin,
            spapi::ClientConfig::default().token_refresh_margin / 100
        );
    }
}
