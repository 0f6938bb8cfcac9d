//! Helpers shared by the bus integration tests (real PostgreSQL and RabbitMQ on 127.0.0.1).
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use bus::lapin::types::FieldTable;
use bus::lapin::{BasicProperties, Channel, Connection};
use bus::{Handler, HandlerError, Incoming, Topology, TxHandler};
use futures_util::FutureExt;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.to_owned())
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,bus=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A uniquely prefixed topology for one test, deleted again by [`with_bus`].
pub struct TestBus {
    pub conn: Arc<Connection>,
    pub topology: Topology,
    pub setup: Channel,
    services: Mutex<Vec<String>>,
}

impl TestBus {
    /// Declares a service queue (+ DLQ, bindings) and returns the queue name.
    pub async fn service(&self, name: &str, event_keys: &[&str]) -> String {
        self.services.lock().unwrap().push(name.to_owned());
        self.topology
            .declare_service(&self.setup, name, event_keys)
            .await
            .expect("declare service")
    }

    /// Ready messages in `queue` (unacknowledged ones are not counted).
    pub async fn ready(&self, queue: &str) -> u32 {
        let channel = self.conn.create_channel().await.expect("channel");
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::durable().passive(),
                FieldTable::default(),
            )
            .await
            .expect("passive declare");
        let _ = channel.close(200, "OK".into()).await;
        q.message_count()
    }

    /// Ready messages once the broker has caught up: messages left unacknowledged by a closed
    /// channel are requeued asynchronously, so an immediate count could miss them.
    pub async fn ready_settled(&self, queue: &str) -> u32 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.ready(queue).await
    }

    async fn cleanup(&self) {
        let channel = match self.conn.create_channel().await {
            Ok(c) => c,
            Err(err) => {
                eprintln!("cleanup: cannot open channel: {err}");
                return;
            }
        };
        let services = self.services.lock().unwrap().clone();
        for service in services {
            if let Err(err) = self.topology.delete_service(&channel, &service).await {
                eprintln!("cleanup: {err}");
            }
        }
        if let Err(err) = self.topology.delete_exchanges(&channel).await {
            eprintln!("cleanup: {err}");
        }
        let _ = channel.close(200, "OK".into()).await;
        let _ = bus::close(&self.conn).await;
    }
}

/// Runs `test` with a fresh uniquely prefixed topology and always deletes it afterwards
/// (also when the test panics; the panic is then resumed).
pub async fn with_bus<F>(delivery_limit: u32, test: F)
where
    F: AsyncFnOnce(&TestBus),
{
    init_tracing();
    let prefix = format!("bus-test.{}.", &Uuid::now_v7().simple().to_string()[20..]);
    let conn = bus::connect(&amqp_url(), &format!("test {prefix}"))
        .await
        .expect("connect to RabbitMQ");
    let setup = conn.create_channel().await.expect("channel");
    let bus = TestBus {
        conn,
        topology: Topology::new(prefix, delivery_limit),
        setup,
        services: Mutex::new(Vec::new()),
    };
    bus.topology
        .declare_exchanges(&bus.setup)
        .await
        .expect("declare exchanges");
    let outcome = AssertUnwindSafe(test(&bus)).catch_unwind().await;
    bus.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls `check` every 50 ms until it returns true; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A table without a unique key on the message id, so a duplicate effect would show.
pub async fn create_effects_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE test_effects (message_id uuid NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await
    .expect("create test_effects");
}

pub async fn effect_count(pool: &PgPool, message_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM test_effects WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(pool)
        .await
        .expect("count effects")
}

pub async fn total_effects(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM test_effects")
        .fetch_one(pool)
        .await
        .expect("count effects")
}

/// The effect under test: one row per application.
#[derive(Clone, Default)]
pub struct RecordEffect;

impl TxHandler for RecordEffect {
    async fn handle(&self, tx: &mut PgConnection, msg: &Incoming) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO test_effects (message_id) VALUES ($1)")
            .bind(msg.message_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// Records every delivery it sees, then delegates.
#[derive(Clone)]
pub struct Seen<H> {
    pub inner: H,
    pub seen: Arc<Mutex<Vec<Incoming>>>,
}

impl<H> Seen<H> {
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            seen: Arc::default(),
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn deliveries(&self) -> Vec<Incoming> {
        self.seen.lock().unwrap().clone()
    }
}

impl<H: Handler> Handler for Seen<H> {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(msg.clone());
        self.inner.handle(msg).await
    }
}

/// Publishes raw bytes with arbitrary properties (for malformed messages), confirmed.
pub async fn publish_raw(
    conn: &Connection,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) {
    let channel = conn.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirm_select");
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert_eq!(confirm, bus::lapin::Confirmation::Ack(None));
    let _ = channel.close(200, "OK".into()).await;
}
