//! Graceful shutdown: stop consuming, finish what is in flight, leave the rest queued.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bus::{HandlerError, Incoming, OutgoingMessage, Publisher, consume};
use common::with_bus;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn cancellation_finishes_the_in_flight_handler_and_leaves_the_rest_queued() {
    with_bus(3, async |bus| {
        let queue = bus.service("inventory-sync", &[]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();
        for n in 0..2 {
            publisher
                .publish(&OutgoingMessage {
                    message_id: Uuid::now_v7(),
                    exchange: bus.topology.commands_exchange(),
                    routing_key: "inventory-sync".to_owned(),
                    payload: json!({"n": n}),
                    headers: bus::Headers::new(),
                })
                .await
                .unwrap();
        }

        let started = Arc::new(Notify::new());
        let finished = Arc::new(AtomicUsize::new(0));
        let handler = {
            let (started, finished) = (started.clone(), finished.clone());
            move |_msg: Incoming| {
                let (started, finished) = (started.clone(), finished.clone());
                async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), HandlerError>(())
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, "inventory-sync", handler, 1, cancel).await }
        });
        tokio::time::timeout(Duration::from_secs(20), started.notified())
            .await
            .expect("handler started");
        let stop = Instant::now();
        cancel.cancel();
        consumer.await.unwrap().unwrap();
        assert!(
            stop.elapsed() >= Duration::from_millis(500),
            "waited for the in-flight handler"
        );

        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "in-flight handler completed"
        );
        assert_eq!(
            bus.ready_settled(&queue).await,
            1,
            "first acked, second still queued"
        );
    })
    .await;
}

#[tokio::test]
async fn shutdown_signal_helper_is_pending_without_a_signal() {
    let waited = tokio::time::timeout(Duration::from_millis(100), bus::shutdown_signal()).await;
    assert!(waited.is_err());
}

#[tokio::test]
async fn watchdog_returns_on_cancel_and_fails_on_a_closed_connection() {
    let conn = bus::connect(&common::amqp_url(), "watchdog test")
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let watch = tokio::spawn({
        let (conn, cancel) = (conn.clone(), cancel.clone());
        async move { bus::watchdog(&conn, Duration::from_secs(5), cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    cancel.cancel();
    watch.await.unwrap().unwrap();

    bus::close(&conn).await.unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        bus::watchdog(&conn, Duration::from_secs(60), CancellationToken::new()),
    )
    .await
    .expect("watchdog notices a closed connection")
    .unwrap_err();
    assert!(
        matches!(err, bus::BusError::ConnectionUnavailable { .. }),
        "{err}"
    );
}
