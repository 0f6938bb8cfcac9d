//! inventory-sync service binary: consumes `inventory-sync` commands.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::run(inventory_sync::SERVICE, &[], |ctx| {
        inventory_sync::Service::from_ctx(ctx).expect("SP-API client configuration")
    })
    .await
}
