//! Harness: the shared service harness of `service-testkit` (real PostgreSQL, real RabbitMQ
//! under a unique prefix, an embedded SP-API simulator) serving status-sync by
//! `runtime::serve` exactly as in production, plus status-sync's own helpers. Orders are
//! imported beforehand through the `orders` library, page by page as order-ingest imports
//! them (without order-ingest's run ledger).
#![allow(dead_code)]
use chrono::Utc;
use domain::{
    messages::{Action, Command, CommandParams, StatusSyncMode},
    window::{self, ImportMode},
};
use service_testkit::Service;
use sqlx::PgPool;
use status_sync::{StatusSync, SyncConfig};
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
            client: runtime::spapi_client,
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

    /// Publishes an `orders`-mode trigger (the orders Amazon announced). Returns its id.
    pub async fn trigger_orders(&self, order_ids: &[&str]) -> Uuid {
        let cmd = Command::new(
            self.shop_id,
            Action::StatusSync,
            CommandParams::StatusSyncOrders {
                order_ids: order_ids.iter().map(|s| (*s).to_owned()).collect(),
            },
            "test",
            Utc::now(),
        );
        self.send(&cmd).await
    }

    /// Imports the simulator's orders of `mode`'s window (first run) through the `orders`
    /// library, page by page as order-ingest does. Returns what the pages did.
    pub async fn import(&self, mode: ImportMode) -> orders::Counts {
        let keys = crypto::Keyring::for_testing();
        let window = window::plan(mode, None, Utc::now()).expect("window");
        let mut conn = self.pool.acquire().await.unwrap();
        let shop = store::shops::get(&mut conn, self.shop_id).await.unwrap();
        let handle = runtime::shop_api(&mut conn, &keys, &self.api, &shop.shop)
            .await
            .expect("shop handle");
        drop(conn);
        let mut params = orders::import_search(&shop.shop, window.from, window.to, 100);
        let mut counts = orders::Counts::default();
        loop {
            let page = handle.search_orders(&params).await.expect("searchOrders");
            let mut tx = self.pool.begin().await.unwrap();
            orders::apply_orders(
                &mut tx,
                &keys,
                &self.topology.events_exchange(),
                self.shop_id,
                None,
                &page.orders,
                &mut counts,
            )
            .await
            .expect("import");
            tx.commit().await.unwrap();
            counts.pages += 1;
            params.pagination_token = page.pagination.and_then(|p| p.next_token);
            if params.pagination_token.is_none() {
                return counts;
            }
        }
    }
}
