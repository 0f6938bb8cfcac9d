//! Harness: the shared service harness of `service-testkit` (real PostgreSQL, real RabbitMQ
//! under a unique prefix, an embedded SP-API simulator) serving order-ingest by
//! `runtime::serve` exactly as in production, plus order-ingest's own helpers.
#![allow(dead_code)]

use chrono::Utc;
use domain::{
    messages::{Action, Command, CommandParams},
    window::ImportMode,
};
use order_ingest::{IngestConfig, OrderIngest};
use service_testkit::Service;
use sqlx::PgPool;
use uuid::Uuid;

pub use service_testkit::{ON_HAND, Options, product_code, sku};

service_testkit::harness_type!(
    /// The shared harness serving order-ingest.
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
            queue_prefix: "oi-test",
            action: order_ingest::ACTION,
            client: runtime::spapi_client,
            make_handler: |ctx: runtime::Ctx, api| {
                OrderIngest::new(
                    ctx.pool,
                    ctx.keys,
                    api,
                    ctx.topology,
                    IngestConfig::default(),
                )
            },
        };
        service_testkit::Harness::run_with(pool, opts, service, test).await
    }

    /// Publishes a trigger through the outbox (the service's relay sends it). Returns its id.
    pub async fn trigger(&self, mode: ImportMode) -> Uuid {
        let cmd = Command::new(
            self.shop_id,
            Action::OrderIngest,
            CommandParams::OrderIngest { mode },
            "test",
            Utc::now(),
        );
        self.send(&cmd).await
    }
}
