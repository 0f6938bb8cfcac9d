//! order-ingest (出荷指示取得): imports Amazon orders (PENDING and UNSHIPPED, merchant-fulfilled)
//! as shipping instructions, through Orders v2026-01-01 `searchOrders`.
//!
//! A run: command in → window planned (`domain::window`) → pages fetched one by one, each page
//! upserted in one transaction together with the run's cursor → watermark = Amazon's
//! `createdBefore` of the last page. When the shared limiter says the next page is not due
//! soon, the run stores its cursor, schedules a `Continue` command through the outbox
//! (`not_before`) and acknowledges the message: no handler ever sleeps on Amazon's quota.
//!
//! The handler ([`OrderIngest`]) is a plain async function of the message; the binary wires
//! it with `runtime::run`.

pub mod convert;
mod engine;
pub mod upsert;

pub use engine::{
    ACTION, Counts, ImportError, IngestConfig, OrderIngest, SingleImport, import_order, shop_handle,
};
pub use upsert::{INCLUDED_DATA, Outcome, pick_delivery};

/// The SP-API client a service uses: `rate_scale` as configured (`SPAPI_RATE_SCALE`, only for
/// a simulator run), limiter waits longer than `max_limiter_wait` become continuations.
///
/// With a scaled rate the client does not adopt `x-amzn-RateLimit-Limit` (the simulator
/// reports Amazon's unscaled rate, which would slow the shared bucket down to real time) and
/// refreshes tokens a scaled margin before they expire (the simulator shortens their life).
pub fn service_client(
    pool: &sqlx::PgPool,
    rate_scale: f64,
    max_limiter_wait: std::time::Duration,
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
