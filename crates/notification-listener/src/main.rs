//! notification-listener: long-polls the SQS queue Amazon delivers notifications to and turns
//! them into status-sync and feed-poller commands (see the library; `--help` lists the
//! environment).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    notification_listener::main_from_env().await
}
