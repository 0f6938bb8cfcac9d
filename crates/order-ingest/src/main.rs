//! order-ingest service: consumes the `order-ingest` command queue.

use std::time::Duration;

use order_ingest::{IngestConfig, OrderIngest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let page_size = runtime::env_in_range("INGEST_PAGE_SIZE", 100, 1..=100)?;
    // Longest time one call may sleep in the shared limiter; beyond it the run stores its
    // cursor and schedules a continuation instead of holding the message.
    let max_wait = Duration::from_millis(runtime::env_in_range(
        "SPAPI_MAX_LIMITER_WAIT_MS",
        1000,
        0..=600_000,
    )?);
    let config = IngestConfig {
        page_size: page_size as u32,
        ..IngestConfig::default()
    };
    runtime::run(order_ingest::ACTION, &[], move |ctx| {
        let api = runtime::spapi_client(&ctx.pool, ctx.config.spapi_rate_scale, max_wait)
            .expect("the SP-API client can be built");
        OrderIngest::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
