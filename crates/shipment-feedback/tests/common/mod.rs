//! Helpers of the shipment-feedback and feed-poller integration tests (real PostgreSQL through
//! `#[sqlx::test]`, embedded simulator; RabbitMQ where a test uses the bus). Shared with
//! feed-poller's tests through `#[path]`.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use crypto::Keyring;
use domain::shop::{ShipmentStrategy, Shop};
use spapi_sim::{ItemSpec, OrderSpec, OrderStatus, RunningSim, SimConfig};
use sqlx::PgPool;
use store::shops::NewShop;
use uuid::Uuid;

pub struct Fixture {
    pub pool: PgPool,
    pub keys: Keyring,
    pub sim: RunningSim,
    pub shop: Shop,
}

/// A simulator with fast feed processing and a JP shop pointing at it.
pub async fn fixture(pool: PgPool, strategy: ShipmentStrategy) -> Fixture {
    let sim = spapi_sim::spawn(SimConfig {
        feed_processing: Duration::from_millis(600),
        ..Default::default()
    })
    .await
    .expect("simulator");
    // The processing time of the running simulator follows its options.
    let mut opts = sim.sim().options();
    opts.feed_processing_ms = 600;
    sim.sim().set_options(opts).expect("sim options");
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let base = sim.base_url();
    let shop = store::shops::insert(
        &mut conn,
        &keys,
        &NewShop {
            shipment_strategy: strategy,
            ..NewShop::japan_at(
                "acme-jp".parse().unwrap(),
                "Acme Japan",
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

impl Fixture {
    pub fn today(&self) -> NaiveDate {
        domain::eligibility::today_in(self.shop.time_zone, Utc::now())
    }

    pub fn api(&self) -> spapi::SpApi {
        spapi::SpApi::new(self.pool.clone(), spapi::ClientConfig::default()).unwrap()
    }

    pub fn service(&self, settings: shipment_feedback::Settings) -> shipment_feedback::Service {
        shipment_feedback::Service::new(
            self.pool.clone(),
            self.keys.clone(),
            self.api(),
            bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5),
            settings,
        )
    }

    /// A delivery method with its external delivery method (外部連携先配送方法).
    pub async fn delivery_method(&self, code: &str, name: &str, external: Option<&str>) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO delivery_methods (id, shop_id, code, name, external_delivery_method) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(self.shop.id)
            .bind(code)
            .bind(name)
            .bind(external)
            .execute(&self.pool)
            .await
            .unwrap();
        id
    }

    /// An unshipped JP order at the simulator with one line.
    pub fn sim_order(&self) -> spapi_sim::Order {
        self.sim_order_created(chrono::Duration::minutes(5))
    }

    /// An unshipped JP order placed `ago`.
    pub fn sim_order_created(&self, ago: chrono::Duration) -> spapi_sim::Order {
        self.sim
            .sim()
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                created_time: Some(Utc::now() - ago),
                items: vec![ItemSpec {
                    seller_sku: Some("SKU-1".into()),
                    quantity: Some(1),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap()
    }

    /// A shipped, API-imported instruction for `order`, awaiting print, with its lines.
    pub async fn shipped_instruction(
        &self,
        order: &spapi_sim::Order,
        delivery_method: Uuid,
        tracking: &[&str],
        shipped_on: NaiveDate,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let name: String = sqlx::query_scalar("SELECT name FROM delivery_methods WHERE id = $1")
            .bind(delivery_method)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        let tracking: Vec<String> = tracking.iter().map(|s| s.to_string()).collect();
        sqlx::query(
            r#"INSERT INTO shipping_instructions (id, shop_id, source, amazon_order_id, marketplace_id, status, payment_status,
                      api_status, delivery_method_id, delivery_method_name, tracking_numbers, shipped_on)
               VALUES ($1, $2, 'amazon_api', $3, $4, 'shipped', 'paid', 'awaiting_print', $5, $6, $7, $8)"#,
        )
        .bind(id)
        .bind(self.shop.id)
        .bind(&order.order_id)
        .bind(&order.marketplace_id)
        .bind(delivery_method)
        .bind(name)
        .bind(&tracking)
        .bind(shipped_on)
        .execute(&self.pool)
        .await
        .unwrap();
        for (n, item) in order.items.iter().enumerate() {
            sqlx::query(
                r#"INSERT INTO instruction_lines (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, quantity)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(self.shop.id)
            .bind(n as i32 + 1)
            .bind(&item.order_item_id)
            .bind(&item.seller_sku)
            .bind(item.quantity_ordered as i32)
            .execute(&self.pool)
            .await
            .unwrap();
        }
        id
    }

    /// (api_status, api_error) of an instruction.
    pub async fn api_status(&self, id: Uuid) -> (String, Option<String>) {
        sqlx::query_as("SELECT api_status, api_error FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until the simulator has processed every feed.
    pub async fn wait_sim_feeds_done(&self) {
        for _ in 0..200 {
            if self.sim.sim().feeds().iter().all(|f| {
                !matches!(
                    f.processing_status,
                    spapi_sim::FeedStatus::InQueue | spapi_sim::FeedStatus::InProgress
                )
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("simulator feeds not processed in time");
    }
}

/// Fast settings for tests.
pub fn fast_feedback() -> shipment_feedback::Settings {
    shipment_feedback::Settings {
        first_poll_delay: chrono::Duration::milliseconds(200),
        retry_delay: chrono::Duration::seconds(1),
        ..Default::default()
    }
}

/// A 12-digit tracking number.
pub fn tracking12(n: usize) -> String {
    format!("{:012}", 300_000_000_000u64 + n as u64)
}

/// The URL of the test database behind `pool` (for services started with their own config).
pub fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.to_owned())
}

/// `CONNECTOR_ENCRYPTION_KEYS` matching [`Keyring::for_testing`].
pub const TEST_KEYS: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
