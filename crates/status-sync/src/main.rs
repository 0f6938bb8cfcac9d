//! status-sync service: consumes the `status-sync` command queue.

use status_sync::{StatusSync, SyncConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let page_size = runtime::env_in_range("SYNC_PAGE_SIZE", 100, 1..=100)?;
    let config = SyncConfig {
        page_size: page_size as u32,
        ..SyncConfig::default()
    };
    runtime::run(status_sync::ACTION, &[], move |ctx| {
        // Limiter waits beyond SPAPI_MAX_LIMITER_WAIT_MS become continuations (runtime).
        let api = ctx.spapi_client().expect("the SP-API client can be built");
        StatusSync::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
