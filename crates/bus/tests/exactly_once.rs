//! Effects are applied once even when a message is delivered several times.

mod common;

use std::time::Duration;

use bus::{
    Handler, HandlerError, Incoming, OutboxMessage, Publisher, Relay, WithInbox, consume, dlq_peek,
    outbox,
};
use common::{
    RecordEffect, Seen, create_effects_table, effect_count, total_effects, wait_until, with_bus,
};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "order-ingest";

/// Must show 1: a command published through the outbox is consumed and its effect applied
/// exactly once when the same message (same id) is delivered three times.
#[sqlx::test(migrations = "../../migrations")]
async fn outbox_command_delivered_three_times_applies_effect_once(pool: PgPool) {
    create_effects_table(&pool).await;
    with_bus(5, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;

        let mut tx = pool.begin().await.unwrap();
        let msg = OutboxMessage::new(
            bus.topology.commands_exchange(),
            SERVICE,
            json!({"action": "order-ingest", "shop_id": "acme", "params": {"mode": "differential"}}),
        );
        let id = msg.id;
        outbox::enqueue(&mut tx, msg).await.unwrap();
        tx.commit().await.unwrap();

        let relay = Relay::new(pool.clone(), Publisher::new(bus.conn.clone()).await.unwrap());
        let first = relay.relay_once().await.unwrap();
        assert_eq!((first.claimed, first.sent, first.failed), (1, 1, 0));
        // The relay "crashes" after the confirm and before marking the row twice: it publishes
        // the same row (same message id) again each time.
        for _ in 0..2 {
            sqlx::query!("UPDATE outbox SET sent_at = NULL WHERE id = $1", id)
                .execute(&pool)
                .await
                .unwrap();
            assert_eq!(relay.relay_once().await.unwrap().sent, 1);
        }
        assert_eq!(bus.ready(&queue).await, 3, "three copies are queued");

        let handler = Seen::new(WithInbox::new(pool.clone(), SERVICE, RecordEffect));
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, handler, cancel) =
                (bus.conn.clone(), queue.clone(), handler.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 3, cancel).await }
        });
        wait_until(Duration::from_secs(20), "three deliveries", || async {
            handler.count() >= 3
        })
        .await;
        // Graceful stop waits for the handlers and their acks; anything unacked would go back.
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        let deliveries = handler.deliveries();
        assert_eq!(deliveries.len(), 3);
        assert!(deliveries.iter().all(|d| d.message_id == id));
        assert!(deliveries.iter().all(|d| d.routing_key == SERVICE));
        assert_eq!(deliveries[0].payload["shop_id"], "acme");
        assert_eq!(effect_count(&pool, id).await, 1, "effect applied exactly once");
        let inbox = sqlx::query_scalar!(
            "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
            SERVICE,
            id
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(inbox, Some(1));
        assert_eq!(bus.ready_settled(&queue).await, 0, "all three copies acknowledged");
        assert!(dlq_peek(&bus.conn, &queue, 10).await.unwrap().is_empty());
    })
    .await;
}

/// Commits the effect, tells the test, then never returns: the process "dies" before the ack.
#[derive(Clone)]
struct DieAfterCommit {
    inner: WithInbox<RecordEffect>,
    committed: std::sync::Arc<tokio::sync::Notify>,
}

impl Handler for DieAfterCommit {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.inner.handle(msg).await?;
        self.committed.notify_one();
        std::future::pending().await
    }
}

/// Must show 5: a consumer killed after its commit and before its ack does not apply the
/// effect twice when the message is redelivered.
#[sqlx::test(migrations = "../../migrations")]
async fn consumer_killed_after_commit_before_ack_does_not_apply_twice(pool: PgPool) {
    create_effects_table(&pool).await;
    with_bus(5, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;
        let mut tx = pool.begin().await.unwrap();
        let msg = OutboxMessage::new(bus.topology.commands_exchange(), SERVICE, json!({"n": 1}));
        let id = msg.id;
        outbox::enqueue(&mut tx, msg).await.unwrap();
        tx.commit().await.unwrap();
        let relay = Relay::new(pool.clone(), Publisher::new(bus.conn.clone()).await.unwrap());
        assert_eq!(relay.relay_once().await.unwrap().sent, 1);

        // First consumer process: its own connection; dies between commit and ack.
        let doomed_conn = bus::connect(&common::amqp_url(), "doomed consumer").await.unwrap();
        let committed = std::sync::Arc::new(tokio::sync::Notify::new());
        let doomed = tokio::spawn({
            let handler = DieAfterCommit {
                inner: WithInbox::new(pool.clone(), SERVICE, RecordEffect),
                committed: committed.clone(),
            };
            let (conn, queue) = (doomed_conn.clone(), queue.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 1, CancellationToken::new()).await }
        });
        tokio::time::timeout(Duration::from_secs(20), committed.notified())
            .await
            .expect("first consumer committed");
        assert_eq!(effect_count(&pool, id).await, 1);
        // Kill: drop the task (no ack is ever sent) and cut the connection.
        doomed.abort();
        let _ = doomed.await;
        doomed_conn.close(320, "killed".into()).await.unwrap();

        // The broker redelivers to the next consumer; the inbox recognises the message.
        let handler = Seen::new(WithInbox::new(pool.clone(), SERVICE, RecordEffect));
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, handler, cancel) =
                (bus.conn.clone(), queue.clone(), handler.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 1, cancel).await }
        });
        wait_until(Duration::from_secs(20), "redelivery", || async { handler.count() >= 1 }).await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        let redelivery = &handler.deliveries()[0];
        assert_eq!(redelivery.message_id, id);
        assert!(redelivery.redelivered, "broker flags the redelivery");
        println!("redelivery x-delivery-count = {}", redelivery.delivery_count);
        assert_eq!(effect_count(&pool, id).await, 1, "effect not applied twice");
        assert_eq!(total_effects(&pool).await, 1);
        assert_eq!(bus.ready_settled(&queue).await, 0, "redelivery acknowledged");
    })
    .await;
}
