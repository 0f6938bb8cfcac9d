//! A consumer that the broker no longer knows (its queue deleted and declared again, as after a
//! broker restart that lost it) subscribes again by itself instead of leaving messages ready.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bus::lapin::options::QueueDeleteOptions;
use bus::{ConsumeOptions, HandlerError, Incoming, OutgoingMessage, Publisher, consume_with};
use common::with_bus;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn publish(publisher: &Publisher, bus: &common::TestBus, n: u32) {
    publisher
        .publish(&OutgoingMessage {
            message_id: Uuid::now_v7(),
            exchange: bus.topology.commands_exchange(),
            routing_key: "status-sync".to_owned(),
            payload: json!({ "n": n }),
            headers: bus::Headers::new(),
        })
        .await
        .unwrap();
}

async fn wait_for(count: &AtomicUsize, n: usize, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if count.load(Ordering::SeqCst) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_consumer_lost_by_the_broker_subscribes_again() {
    with_bus(3, async |bus| {
        let queue = bus.service("status-sync", &[]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();
        let handled = Arc::new(AtomicUsize::new(0));
        let handler = {
            let handled = handled.clone();
            move |_msg: Incoming| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), HandlerError>(())
                }
            }
        };
        let cancel = CancellationToken::new();
        let options = ConsumeOptions {
            prefetch: 2,
            watch_every: Duration::from_millis(400),
            ..ConsumeOptions::default()
        };
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move {
                consume_with(
                    &conn,
                    &queue,
                    "status-sync",
                    Arc::new(handler),
                    options,
                    cancel,
                )
                .await
            }
        });
        publish(&publisher, bus, 1).await;
        assert!(
            wait_for(&handled, 1, Duration::from_secs(10)).await,
            "first message handled"
        );

        // The broker forgets the consumer: its queue goes away and comes back empty.
        bus.setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        bus.service("status-sync", &[]).await;
        publish(&publisher, bus, 2).await;
        publish(&publisher, bus, 3).await;
        assert!(
            wait_for(&handled, 3, Duration::from_secs(15)).await,
            "messages after the loss handled by a new subscription (handled {})",
            handled.load(Ordering::SeqCst)
        );
        assert_eq!(bus.ready_settled(&queue).await, 0, "nothing left ready");
        assert!(!consumer.is_finished(), "the consumer keeps running");
        cancel.cancel();
        consumer.await.unwrap().unwrap();
    })
    .await;
}

/// A connection that is gone for good ends the consumer with an error within a watch or two
/// (instead of a consumer that looks alive and receives nothing): `runtime::serve` then
/// connects afresh.
#[tokio::test]
async fn a_consumer_whose_connection_is_gone_returns_an_error() {
    with_bus(3, async |bus| {
        let queue = bus.service("feed-poller", &[]).await;
        let conn = bus::connect(&common::amqp_url(), "resubscribe-test")
            .await
            .unwrap();
        let options = ConsumeOptions {
            prefetch: 1,
            watch_every: Duration::from_millis(300),
            max_down: Duration::from_secs(2),
        };
        let handler = |_msg: Incoming| async { Ok::<(), HandlerError>(()) };
        let consumer = tokio::spawn({
            let (conn, queue) = (conn.clone(), queue.clone());
            async move {
                consume_with(
                    &conn,
                    &queue,
                    "feed-poller",
                    Arc::new(handler),
                    options,
                    CancellationToken::new(),
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        bus::close(&conn).await.unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), consumer)
            .await
            .expect("the consumer ends instead of waiting forever")
            .unwrap();
        assert!(
            matches!(ended, Err(bus::BusError::ConnectionUnavailable { .. })),
            "{ended:?}"
        );
    })
    .await;
}
