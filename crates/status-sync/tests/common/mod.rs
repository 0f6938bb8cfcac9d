//! Harness: the shared service harness of `service-testkit` (real PostgreSQL, real RabbitMQ
//! under a unique prefix, an embedded SP-API simulator) serving status-sync by
//! `runtime::serve` exactly as in production, plus status-sync's own helpers. Orders are
//! imported beforehand by calling the order-ingest handler directly (a plain async function of
//! the message).
#![allow(dead_code)]

use std::time::Duration;

use chrono::Utc;
use domain::{
    messages::{Action, Command, CommandParams, StatusSyncMode},
    window::ImportMode,
};
use order_ingest::{IngestConfig, OrderIngest};
use service_testkit::Service;
use sqlx::PgPool;
use status_sync::{StatusSync, SyncConfig};
use store::runs::Run;
use uuid::Uuid;

pub use service_testkit::Options;

service_testkit::harness_type!(
    /// The shared harness serving status-sync.
    Harness
);

impl Harness {
    /// Starts a harness, runs `test`, and always stops it and deletes the test's queues and
    /// exchanges (also when the test panics; the panic is then resumed).
    pub async fn run<F>(pool: PgPool, opts: Options, test: F)
    where
        F: AsyncFnOnce(&Harness),
    {
        let service = Service {
            queue_prefix: "ss-test",
            action: status_sync::ACTION,
            client: order_ingest::service_client,
            make_handler: |ctx: runtime::Ctx, api| {
                StatusSync::new(ctx.pool, ctx.keys, api, ctx.topology, SyncConfig::default())
            },
        };
        service_testkit::Harness::run_with(pool, opts, service, test).await
    }

    /// Publishes a status-sync trigger through the outbox. Returns its id.
    pub async fn trigger(&self, mode: StatusSyncMode) -> Uuid {
        let cmd = Command::new(
            self.shop_id,
            Action::StatusSync,
            CommandParams::StatusSync { mode },
            "test",
            Utc::now(),
        );
        self.send(&cmd).await
    }

    /// Imports orders by calling the order-ingest handler directly (no queue involved).
    pub async fn import(&self, mode: ImportMode) -> Run {
        use bus::Handler;
        let topology = self.topology.clone();
        let ingest = OrderIngest::new(
            self.pool.clone(),
            crypto::Keyring::for_testing(),
            self.api.clone(),
            topology,
            IngestConfig::default(),
        );
        let cmd = Command::new(
            self.shop_id,
            Action::OrderIngest,
            CommandParams::OrderIngest { mode },
            "test",
            Utc::now(),
        );
        ingest
            .handle(bus::Incoming::new(
                cmd.message_id,
                "order-ingest",
                serde_json::to_value(&cmd).unwrap(),
            ))
            .await
            .expect("import");
        self.wait_run(cmd.message_id, Duration::from_secs(30)).await
    }
}
