//! shipment-feedback service binary: consumes `shipment-feedback` commands.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shipment_feedback::main_from_env().await
}
