//! feed-poller service binary: consumes `feed-poller` commands and `feed.submitted` events.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    feed_poller::main_from_env().await
}
