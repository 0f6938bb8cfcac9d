//! Publishes the broker does not accept are errors, and outbox rows stay unsent.

mod common;

use bus::{OutboxMessage, OutgoingMessage, PublishError, Publisher, Relay, outbox};
use common::with_bus;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Must show 4: a publish to a routing key with no queue is not marked sent; it is retried with
/// back-off and goes out once the topology is repaired.
#[sqlx::test(migrations = "../../migrations")]
async fn outbox_row_for_unbound_routing_key_is_not_marked_sent(pool: PgPool) {
    with_bus(3, async |bus| {
        let mut tx = pool.begin().await.unwrap();
        let msg = OutboxMessage::new(
            bus.topology.commands_exchange(),
            "nobody-listens",
            json!({"x": 1}),
        );
        let id = msg.id;
        outbox::enqueue(&mut tx, msg).await.unwrap();
        tx.commit().await.unwrap();

        let relay = Relay::new(pool.clone(), Publisher::new(bus.conn.clone()).await.unwrap());
        let stats = relay.relay_once().await.unwrap();
        assert_eq!((stats.claimed, stats.sent, stats.failed), (1, 0, 1));

        let row = sqlx::query!(
            r#"SELECT sent_at, attempts, last_error, claimed_until, not_before > now() AS "later!" FROM outbox WHERE id = $1"#,
            id
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(row.sent_at.is_none(), "unroutable publish must not be marked sent");
        assert_eq!(row.attempts, 1);
        let last_error = row.last_error.unwrap();
        assert!(last_error.contains("312") && last_error.contains("NO_ROUTE"), "{last_error}");
        assert!(row.claimed_until.is_none(), "claim released");
        assert!(row.later, "retry scheduled in the future");
        assert_eq!(relay.relay_once().await.unwrap().claimed, 0, "backing off");

        // Topology repaired: a queue is bound for the key; the row goes out on its next turn.
        let queue = bus.service("nobody-listens", &[]).await;
        sqlx::query!("UPDATE outbox SET not_before = now() WHERE id = $1", id)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(relay.relay_once().await.unwrap().sent, 1);
        let sent = sqlx::query_scalar!("SELECT sent_at FROM outbox WHERE id = $1", id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(sent.is_some());
        assert_eq!(bus.ready(&queue).await, 1);
    })
    .await;
}

/// The publisher reports NO_ROUTE, and a publish to a missing exchange (the broker closes the
/// channel with 404) is an error after which the publisher keeps working.
#[tokio::test]
async fn publisher_reports_unroutable_and_recovers_from_a_closed_channel() {
    with_bus(3, async |bus| {
        let queue = bus.service("order-ingest", &[]).await;
        let publisher = Publisher::with_options(bus.conn.clone(), 1, bus::DEFAULT_CONFIRM_TIMEOUT)
            .await
            .unwrap();
        let msg = |exchange: String, key: &str| OutgoingMessage {
            message_id: Uuid::now_v7(),
            exchange,
            routing_key: key.to_owned(),
            payload: json!({}),
            headers: bus::Headers::new(),
        };

        let err = publisher
            .publish(&msg(bus.topology.commands_exchange(), "no-such-service"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PublishError::Unroutable {
                    reply_code: 312,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_transport());

        let missing = format!("{}missing", bus.topology.prefix);
        let err = publisher
            .publish(&msg(missing, "order-ingest"))
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Amqp(_)), "{err:?}");
        assert!(
            !err.is_transport(),
            "404 is about the message, not the broker: {err}"
        );

        // The same single channel was closed by the broker; the next publish reopens it.
        publisher
            .publish(&msg(bus.topology.commands_exchange(), "order-ingest"))
            .await
            .unwrap();
        assert_eq!(bus.ready(&queue).await, 1);
    })
    .await;
}

/// An event nobody subscribes to yet is still routable (the events log queue takes every key),
/// so event rows never get stuck in the outbox.
#[sqlx::test(migrations = "../../migrations")]
async fn event_without_subscribers_lands_in_the_events_log(pool: PgPool) {
    with_bus(3, async |bus| {
        let mut tx = pool.begin().await.unwrap();
        let msg = OutboxMessage::new(
            bus.topology.events_exchange(),
            "order.imported",
            json!({"x": 1}),
        );
        outbox::enqueue(&mut tx, msg).await.unwrap();
        tx.commit().await.unwrap();
        let relay = Relay::new(
            pool.clone(),
            Publisher::new(bus.conn.clone()).await.unwrap(),
        );
        let stats = relay.relay_once().await.unwrap();
        assert_eq!((stats.claimed, stats.sent), (1, 1));
        assert_eq!(bus.ready(&bus.topology.events_log_queue()).await, 1);
    })
    .await;
}
