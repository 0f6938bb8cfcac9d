//! order-ingest service: consumes the `order-ingest` command queue.

use std::time::Duration;

use anyhow::Context;
use order_ingest::{IngestConfig, OrderIngest};

fn env_u64(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v:?} is not valid: expected a whole number")),
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let page_size = env_u64("INGEST_PAGE_SIZE", 100)?;
    anyhow::ensure!(
        (1..=100).contains(&page_size),
        "INGEST_PAGE_SIZE={page_size} is not valid: expected 1 to 100"
    );
    // Longest time one call may sleep in the shared limiter; beyond it the run stores its
    // cursor and schedules a continuation instead of holding the message.
    let max_wait = Duration::from_millis(env_u64("SPAPI_MAX_LIMITER_WAIT_MS", 1000)?);
    let config = IngestConfig {
        page_size: page_size as u32,
        ..IngestConfig::default()
    };
    runtime::run(order_ingest::ACTION, &[], move |ctx| {
        let api = order_ingest::service_client(&ctx.pool, ctx.config.spapi_rate_scale, max_wait)
            .expect("the SP-API client can be built");
        OrderIngest::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
