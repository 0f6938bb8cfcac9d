//! An order import under way behind a slow link: the starting point of the tests that kill,
//! abort or restart something in the middle of a run.

use std::time::Duration;

use domain::messages::CommandParams;
use domain::window::ImportMode;
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use uuid::Uuid;

use crate::System;
use crate::harness::ShopInfo;
use crate::proxy::{FaultProxy, Mode};

/// The import the tests trigger: the last 7 days.
const WEEK: ImportMode = ImportMode::Hours { hours: 168 };

/// `orders` orders (`mix`) at the simulator for shop A behind a proxy adding `latency_ms` to
/// every call, every service started, and an import of the last week triggered.
pub struct SlowImport {
    /// The system under test.
    pub sys: System,
    /// Shop A.
    pub a: ShopInfo,
    /// The proxy between the services and the simulator.
    pub proxy: FaultProxy,
    /// The trigger's message id (what `System::wait_run` waits for).
    pub ingest: Uuid,
}

impl SlowImport {
    /// Sets the scene and triggers the import.
    pub async fn start(
        pool: PgPool,
        orders: usize,
        seed: u64,
        mix: MarketplaceMix,
        latency_ms: u64,
    ) -> Self {
        let mut sys = System::new(pool).await;
        let a = sys.a().clone();
        sys.sim
            .sim()
            .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, orders, seed, mix);
        let proxy = FaultProxy::start(sys.sim.addr()).await.unwrap();
        sys.set_endpoint(a.id, &proxy.http_url()).await;
        proxy.set(Mode::Latency(latency_ms));
        sys.start_all();
        let ingest = sys
            .trigger(a.id, CommandParams::OrderIngest { mode: WEEK })
            .await;
        Self {
            sys,
            a,
            proxy,
            ingest,
        }
    }
}

/// Waits (polling every 10 ms, at most 6 s) until the import has written `n` shipping
/// instructions.
pub async fn wait_instructions(sys: &System, n: i64) {
    for _ in 0..600 {
        if sys
            .count("SELECT count(*) FROM shipping_instructions")
            .await
            >= n
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
