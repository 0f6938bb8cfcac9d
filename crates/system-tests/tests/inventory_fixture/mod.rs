//! Helpers of the inventory-sync integration tests: real PostgreSQL (`#[sqlx::test]`), the
//! embedded simulator, RabbitMQ where a test goes through the bus.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use crypto::Keyring;
use domain::Marketplace;
use domain::shop::Shop;
use inventory_sync::{Service, Settings};
use spapi_sim::{RunningSim, SimConfig};
use sqlx::PgPool;
use store::inventory::AppliedResults;
use store::shops::NewShop;
use uuid::Uuid;

pub struct Fixture {
    pub pool: PgPool,
    pub keys: Keyring,
    pub sim: RunningSim,
    pub shop: Shop,
}

/// Amazon's handling time of every simulated listing before the tests push anything.
pub const AMAZON_LEAD_TIME: u32 = 5;

/// A simulator (no rate limits, fast feed processing) and a shop on `marketplaces` pointing at it.
pub async fn fixture(pool: PgPool, marketplaces: &[Marketplace]) -> Fixture {
    let sim = spapi_sim::spawn(SimConfig {
        unlimited: true,
        feed_processing: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("simulator");
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let base = sim.base_url();
    let shop = store::shops::insert(
        &mut conn,
        &keys,
        &NewShop {
            marketplaces: marketplaces.to_vec(),
            ..NewShop::japan_at(
                "acme-jp".parse().unwrap(),
                "Acme",
                spapi_sim::DEFAULT_SELLER_ID,
                &base,
            )
        },
    )
    .await
    .expect("shop")
    .shop;
    Fixture {
        pool,
        keys,
        sim,
        shop,
    }
}

/// The SP-API client of the tests: the simulator is unlimited, so the shared limiter is
/// scaled up too (Amazon's 5 JSON_LISTINGS_FEED per 5 minutes would stall a test).
pub fn client_config() -> spapi::ClientConfig {
    spapi::ClientConfig {
        rate_scale: 1000.0,
        ..Default::default()
    }
}

pub fn sku(n: usize) -> String {
    format!("SKU-{n:05}")
}

pub fn product_code(n: usize) -> String {
    format!("P{n:05}")
}

impl Fixture {
    pub fn service(&self, settings: Settings) -> Service {
        Service::new(
            self.pool.clone(),
            self.keys.clone(),
            spapi::SpApi::new(self.pool.clone(), client_config()).unwrap(),
            bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5),
            settings,
        )
    }

    /// `n` products (P00001…) with stock (on hand 20 + i % 30), each mapped to one SKU
    /// (SKU-00001…); every SKU whose number is a multiple of `handling_every` has 2 handling
    /// days. The simulator has a listing for each SKU with quantity 0 and Amazon's own handling
    /// time of [`AMAZON_LEAD_TIME`] days, except the SKUs in `missing_at_amazon`.
    pub async fn seed(&self, n: usize, handling_every: usize, missing_at_amazon: &[usize]) {
        let n = i32::try_from(n).unwrap();
        let every = i32::try_from(handling_every).unwrap();
        sqlx::query(
            r#"INSERT INTO products (id, shop_id, code, name)
               SELECT gen_random_uuid(), $1, 'P' || lpad(i::text, 5, '0'), 'Product ' || i FROM generate_series(1, $2) i"#,
        )
        .bind(self.shop.id)
        .bind(n)
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            r#"INSERT INTO stock (product_id, shop_id, on_hand)
               SELECT id, shop_id, 20 + substr(code, 2)::int % 30 FROM products WHERE shop_id = $1"#,
        )
        .bind(self.shop.id)
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            r#"INSERT INTO external_products (id, shop_id, sku, product_id, handling_days, handling_days_changed_at)
               SELECT gen_random_uuid(), shop_id, 'SKU-' || substr(code, 2), id,
                      CASE WHEN substr(code, 2)::int % $2 = 0 THEN 2 END,
                      CASE WHEN substr(code, 2)::int % $2 = 0 THEN now() END
               FROM products WHERE shop_id = $1"#,
        )
        .bind(self.shop.id)
        .bind(every)
        .execute(&self.pool)
        .await
        .unwrap();
        for i in 1..=usize::try_from(n).unwrap() {
            if !missing_at_amazon.contains(&i) {
                self.sim
                    .sim()
                    .put_listing(&sku(i), 0, Some(AMAZON_LEAD_TIME));
            }
        }
    }

    pub async fn product(&self, n: usize) -> Uuid {
        store::catalog::product_by_code(
            &mut self.pool.acquire().await.unwrap(),
            self.shop.id,
            &product_code(n),
        )
        .await
        .unwrap()
        .id
    }

    /// Free stock by SKU (never negative), as inventory-sync must push it.
    pub async fn free_by_sku(&self) -> HashMap<String, i32> {
        sqlx::query_as::<_, (String, i32)>(
            r#"SELECT e.sku, GREATEST(s.free, 0) FROM external_products e JOIN stock s ON s.product_id = e.product_id
               WHERE e.shop_id = $1"#,
        )
        .bind(self.shop.id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Submissions of a run: (id, marketplace ids, message count).
    pub async fn submissions(&self, run_id: Uuid) -> Vec<(Uuid, Vec<String>, i64)> {
        sqlx::query_as::<_, (Uuid, Vec<String>, i64)>(
            r#"SELECT s.id, s.marketplace_ids, (SELECT count(*) FROM feed_messages m WHERE m.feed_submission_id = s.id)
               FROM feed_submissions s WHERE s.run_id = $1 ORDER BY s.created_at"#,
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// SP-API calls the simulator received so far (all operations but LWA).
    pub fn amazon_calls(&self) -> u64 {
        self.sim
            .sim()
            .call_counts()
            .iter()
            .filter(|(op, _)| !op.to_ascii_lowercase().contains("token"))
            .map(|(_, c)| c.calls)
            .sum()
    }

    pub fn create_feed_calls(&self) -> u64 {
        self.sim
            .sim()
            .call_counts()
            .get("createFeed")
            .map_or(0, |c| c.calls)
    }

    /// Lets Amazon finish the run's feeds and applies their reports through feed-poller (the one
    /// path that reads feed results).
    pub async fn apply_results(&self, run_id: Uuid) -> AppliedResults {
        let poller = feed_poller::Poller::new(
            self.pool.clone(),
            self.keys.clone(),
            spapi::SpApi::new(self.pool.clone(), client_config()).unwrap(),
            bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5),
            feed_poller::Settings::default(),
        );
        let mut total = AppliedResults::default();
        for (id, _, _) in self.submissions(run_id).await {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                let state: String =
                    sqlx::query_scalar("SELECT state FROM feed_submissions WHERE id = $1")
                        .bind(id)
                        .fetch_one(&self.pool)
                        .await
                        .unwrap();
                if state != "submitted" {
                    break;
                }
                self.sim.sim().complete_feeds();
                // Due now (the poller's own schedule is not what these tests are about).
                sqlx::query("UPDATE feed_submissions SET next_poll_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .unwrap();
                let report = poller.poll(self.shop.id, Some(id)).await.unwrap();
                if report.finished.contains(&id) {
                    let state: String =
                        sqlx::query_scalar("SELECT state FROM feed_submissions WHERE id = $1")
                            .bind(id)
                            .fetch_one(&self.pool)
                            .await
                            .unwrap();
                    assert_eq!(state, "done", "feed not processed");
                    total += report.inventory;
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "feed still pending");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        total
    }

    pub async fn push_state(&self, sku: &str) -> (String, Option<String>) {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT push_state, push_error FROM external_products WHERE shop_id = $1 AND sku = $2",
        )
        .bind(self.shop.id)
        .bind(sku)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.to_owned())
}

/// The URL of the test's own database (for a service started with `runtime::serve`).
pub fn database_url(pool: &PgPool) -> String {
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = base.split('?').next().unwrap_or_default().to_owned();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}
