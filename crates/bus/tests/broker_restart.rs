//! Must show 2: the relay loses nothing when RabbitMQ is restarted (`rabbitmqctl stop_app` /
//! `start_app`) while 200 outbox rows are being published; every row is consumed once.
//!
//! This stops the shared local broker for a few seconds, so it runs alone in the nextest
//! test-group `broker-restart` (see `.config/nextest.toml`). The broker is started again when
//! the test ends in any way: by a drop guard on success or panic, and by a detached
//! `sleep; rabbitmqctl start_app` safety process in case the test process itself is killed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bus::{
    Handler, HandlerError, Incoming, OutboxMessage, Publisher, Relay, RelayConfig, WithInbox,
    consume, dlq_peek, outbox,
};
use chrono::Utc;
use common::{RecordEffect, Seen, create_effects_table, total_effects, wait_until, with_bus};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const ROWS: i64 = 200;
const SERVICE: &str = "order-ingest";
/// If this process dies while the broker is stopped, the safety process starts it after this.
const SAFETY_START_AFTER_SECS: u32 = 90;

fn rabbitmqctl(args: &[&str]) -> bool {
    match Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
    {
        Ok(status) => status.success(),
        Err(err) => {
            eprintln!("rabbitmqctl {args:?}: {err}");
            false
        }
    }
}

/// Stops the broker app; starting it again is guaranteed by `Drop` and by a safety process.
struct StoppedBroker {
    started_again: bool,
    safety: Option<Child>,
}

impl StoppedBroker {
    fn stop() -> Self {
        let safety = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep {SAFETY_START_AFTER_SECS}; rabbitmqctl start_app >/dev/null 2>&1"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| eprintln!("cannot spawn safety restart: {err}"))
            .ok();
        let guard = Self {
            started_again: false,
            safety,
        };
        assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app failed");
        guard
    }

    fn start(mut self) {
        let ok = self.start_now();
        assert!(ok, "rabbitmqctl start_app failed");
    }

    fn start_now(&mut self) -> bool {
        let started = rabbitmqctl(&["start_app"]) && rabbitmqctl(&["await_startup"]);
        self.started_again = true;
        if let Some(mut safety) = self.safety.take() {
            // Only the `sh` we spawned; its `sleep` child exits on its own.
            let _ = safety.kill();
            let _ = safety.wait();
        }
        started
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if !self.started_again {
            // The test failed while the broker was stopped: start it before anything else.
            let _ = self.start_now();
        }
    }
}

/// Commits the effect, then waits a little before letting the driver ack, so a broker stop
/// often lands between a commit and its ack (the redelivery must then be absorbed by the inbox).
#[derive(Clone)]
struct SlowAck<H>(H);

impl<H: Handler> Handler for SlowAck<H> {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.0.handle(msg).await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok(())
    }
}

async fn sent(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM outbox WHERE sent_at IS NOT NULL"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn broker_restart_while_relaying_200_rows_loses_nothing(pool: PgPool) {
    create_effects_table(&pool).await;
    with_bus(5, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;

        // 200 rows, due one every 40 ms, so publishing spans the restart.
        let start = Utc::now();
        let mut tx = pool.begin().await.unwrap();
        for n in 0..ROWS {
            let msg = OutboxMessage::new(bus.topology.commands_exchange(), SERVICE, json!({"n": n}))
                .not_before(start + chrono::Duration::milliseconds(40 * n));
            outbox::enqueue(&mut tx, msg).await.unwrap();
        }
        tx.commit().await.unwrap();

        // Relay and consumer are separate "services" with their own connections.
        let relay_conn = bus::connect(&common::amqp_url(), "restart-test relay").await.unwrap();
        let consumer_conn = bus::connect(&common::amqp_url(), "restart-test consumer").await.unwrap();
        let cancel = CancellationToken::new();
        let relay = Relay::with_config(
            pool.clone(),
            Publisher::new(relay_conn.clone()).await.unwrap(),
            RelayConfig {
                batch_size: 20,
                poll_interval: Duration::from_millis(100),
                retry_base: Duration::from_millis(200),
                retry_max: Duration::from_secs(2),
                transport_retry: Duration::from_millis(200),
                ..RelayConfig::default()
            },
        );
        let relay_task = tokio::spawn({
            let cancel = cancel.clone();
            async move { relay.run(cancel).await }
        });
        let handler = Seen::new(SlowAck(WithInbox::new(pool.clone(), SERVICE, RecordEffect)));
        let consumer_task = tokio::spawn({
            let (conn, queue, handler, cancel) =
                (consumer_conn.clone(), queue.clone(), handler.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 10, cancel).await }
        });

        wait_until(Duration::from_secs(30), "40 rows sent", || async { sent(&pool).await >= 40 }).await;
        let before = sent(&pool).await;
        let broker = tokio::task::spawn_blocking(StoppedBroker::stop).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        tokio::task::spawn_blocking(move || broker.start()).await.unwrap();
        println!("restarted broker after {before} of {ROWS} rows were sent");

        wait_until(Duration::from_secs(120), "every row sent and consumed", || async {
            sent(&pool).await == ROWS && total_effects(&pool).await == ROWS
        })
        .await;
        // Give stray redeliveries a moment to show up before stopping.
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
        relay_task.await.unwrap().unwrap();
        consumer_task.await.unwrap().unwrap();

        let duplicates: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT message_id FROM test_effects GROUP BY message_id HAVING count(*) > 1) d",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(duplicates, 0, "no effect applied twice");
        let missing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM test_effects e WHERE e.message_id = o.id)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(missing, 0, "every outbox row consumed");
        assert_eq!(total_effects(&pool).await, ROWS);
        let failures = sqlx::query!(
            r#"SELECT COALESCE(sum(attempts), 0) AS "attempts!", count(*) FILTER (WHERE last_error IS NOT NULL) AS "rows!" FROM outbox"#
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let redelivered = handler.deliveries().iter().filter(|d| d.redelivered).count();
        println!(
            "deliveries seen: {} ({redelivered} redelivered) for {ROWS} rows; failed publish attempts: {} on {} rows",
            handler.count(),
            failures.attempts,
            failures.rows
        );
        // The test's own connection recovers from the restart on its own schedule (lapin's
        // automatic recovery): the checks below need it back.
        wait_until(Duration::from_secs(30), "the test's connection recovered", || async {
            bus.conn.status().connected()
        })
        .await;
        assert!(dlq_peek(&bus.conn, &queue, 10).await.unwrap().is_empty(), "nothing dead-lettered");
        assert_eq!(bus.ready_settled(&queue).await, 0);
        let _ = bus::close(&relay_conn).await;
        let _ = bus::close(&consumer_conn).await;
    })
    .await;
}
