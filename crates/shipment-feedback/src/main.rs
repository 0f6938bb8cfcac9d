//! shipment-feedback service binary: consumes `shipment-feedback` commands.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::run(shipment_feedback::SERVICE, &[], |ctx| {
        shipment_feedback::Service::from_ctx(ctx).expect("SP-API client configuration")
    })
    .await
}
