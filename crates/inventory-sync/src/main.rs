//! inventory-sync service binary: consumes `inventory-sync` commands.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inventory_sync::main_from_env().await
}
