//! status-sync service: consumes the `status-sync` command queue.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    status_sync::main_from_env().await
}
