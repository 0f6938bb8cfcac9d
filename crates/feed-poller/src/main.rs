//! feed-poller service binary: consumes `feed-poller` commands and `feed.submitted` events.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::run(feed_poller::SERVICE, &["feed.submitted"], |ctx| {
        feed_poller::Poller::from_ctx(ctx).expect("SP-API client configuration")
    })
    .await
}
