//! order-ingest service: consumes the `order-ingest` command queue.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    order_ingest::main_from_env().await
}
