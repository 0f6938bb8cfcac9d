//! order-ingest service: consumes the `order-ingest` command queue.

use order_ingest::{IngestConfig, OrderIngest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let page_size = runtime::env_in_range("INGEST_PAGE_SIZE", 100, 1..=100)?;
    let config = IngestConfig {
        page_size: page_size as u32,
        ..IngestConfig::default()
    };
    runtime::run(order_ingest::ACTION, &[], move |ctx| {
        // Limiter waits beyond SPAPI_MAX_LIMITER_WAIT_MS become continuations (runtime).
        let api = ctx.spapi_client().expect("the SP-API client can be built");
        OrderIngest::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
