//! Outbox relay mechanics: transactions, not_before, leases, SKIP LOCKED, NOTIFY wake-up.

mod common;

use std::time::Duration;

use bus::{OutboxMessage, Publisher, Relay, RelayConfig, outbox};
use chrono::Utc;
use common::{wait_until, with_bus};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM outbox WHERE sent_at IS NULL"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Rolled-back rows never exist; `not_before` and live leases hold rows back.
#[sqlx::test(migrations = "../../migrations")]
async fn relay_honours_transactions_not_before_and_leases(pool: PgPool) {
    with_bus(3, async |bus| {
        let queue = bus.service("inventory-sync", &[]).await;
        let exchange = bus.topology.commands_exchange();

        let mut tx = pool.begin().await.unwrap();
        outbox::enqueue(
            &mut tx,
            OutboxMessage::new(&exchange, "inventory-sync", json!({})),
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            unsent(&pool).await,
            0,
            "rolled back with the business change"
        );

        let mut tx = pool.begin().await.unwrap();
        let later = OutboxMessage::new(&exchange, "inventory-sync", json!({"later": true}))
            .not_before(Utc::now() + chrono::Duration::milliseconds(1500));
        let leased = OutboxMessage::new(&exchange, "inventory-sync", json!({"leased": true}));
        let (later_id, leased_id) = (later.id, leased.id);
        outbox::enqueue(&mut tx, later).await.unwrap();
        outbox::enqueue(&mut tx, leased).await.unwrap();
        tx.commit().await.unwrap();
        // Another relay holds a live lease on this one.
        sqlx::query!(
            "UPDATE outbox SET claimed_until = now() + interval '1 hour' WHERE id = $1",
            leased_id
        )
        .execute(&pool)
        .await
        .unwrap();

        let relay = Relay::new(
            pool.clone(),
            Publisher::new(bus.conn.clone()).await.unwrap(),
        );
        assert_eq!(relay.relay_once().await.unwrap().claimed, 0);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let stats = relay.relay_once().await.unwrap();
        assert_eq!((stats.claimed, stats.sent), (1, 1));
        let sent = sqlx::query_scalar!("SELECT sent_at FROM outbox WHERE id = $1", later_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(sent.is_some());

        // The lease expires (its holder died): the row is taken over.
        sqlx::query!(
            "UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = $1",
            leased_id
        )
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(relay.relay_once().await.unwrap().sent, 1);
        assert_eq!(unsent(&pool).await, 0);
        assert_eq!(bus.ready(&queue).await, 2);
    })
    .await;
}

/// Two relays running at once publish every row exactly once between them.
#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_relays_do_not_publish_a_row_twice(pool: PgPool) {
    with_bus(3, async |bus| {
        let queue = bus.service("status-sync", &[]).await;
        let mut tx = pool.begin().await.unwrap();
        for n in 0..150 {
            outbox::enqueue(
                &mut tx,
                OutboxMessage::new(
                    bus.topology.commands_exchange(),
                    "status-sync",
                    json!({"n": n}),
                ),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        let config = RelayConfig {
            batch_size: 10,
            poll_interval: Duration::from_millis(50),
            ..RelayConfig::default()
        };
        let cancel = CancellationToken::new();
        let mut relays = Vec::new();
        for _ in 0..2 {
            let relay = Relay::with_config(
                pool.clone(),
                Publisher::new(bus.conn.clone()).await.unwrap(),
                config.clone(),
            );
            let cancel = cancel.clone();
            relays.push(tokio::spawn(async move { relay.run(cancel).await }));
        }
        wait_until(Duration::from_secs(30), "outbox drained", || async {
            unsent(&pool).await == 0
        })
        .await;
        cancel.cancel();
        for relay in relays {
            relay.await.unwrap().unwrap();
        }
        assert_eq!(bus.ready(&queue).await, 150, "no row published twice");
    })
    .await;
}

/// `run` is woken by the NOTIFY sent at commit (long before its poll interval) and returns on
/// cancellation.
#[sqlx::test(migrations = "../../migrations")]
async fn run_wakes_on_notify_and_stops_on_cancel(pool: PgPool) {
    with_bus(3, async |bus| {
        let queue = bus.service("shipment-feedback", &[]).await;
        let relay = Relay::with_config(
            pool.clone(),
            Publisher::new(bus.conn.clone()).await.unwrap(),
            RelayConfig {
                poll_interval: Duration::from_secs(60),
                ..RelayConfig::default()
            },
        );
        let cancel = CancellationToken::new();
        let running = tokio::spawn({
            let cancel = cancel.clone();
            async move { relay.run(cancel).await }
        });
        // Let the relay finish its first (empty) round and start waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut tx = pool.begin().await.unwrap();
        outbox::enqueue(
            &mut tx,
            OutboxMessage::new(
                bus.topology.commands_exchange(),
                "shipment-feedback",
                json!({}),
            ),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        wait_until(Duration::from_secs(5), "notified publish", || async {
            unsent(&pool).await == 0
        })
        .await;
        assert_eq!(bus.ready(&queue).await, 1);

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("relay stops on cancel")
            .unwrap()
            .unwrap();
    })
    .await;
}
