//! Integration-test harness shared by the service crates: real PostgreSQL (fresh database per
//! test), real RabbitMQ (a unique prefix per test, deleted at the end), an embedded SP-API
//! simulator, a shop with a seeded catalog, and one service run by `runtime::serve` exactly as
//! in production.
//!
//! The service under test is described by a [`Service`]. A service's `tests/common/mod.rs`
//! declares its own harness type with [`harness_type!`] (a wrapper that derefs to [`Harness`]),
//! adds its own helpers to it, e.g. a `trigger` for its command, and starts it with
//! [`Harness::run_with`]:
//!
//! ```ignore
//! service_testkit::harness_type!(Harness);
//!
//! impl Harness {
//!     pub async fn run<F: AsyncFnOnce(&Harness)>(pool: PgPool, opts: Options, test: F) {
//!         let service = Service {
//!             queue_prefix: "oi-test",
//!             action: order_ingest::ACTION,
//!             client: runtime::spapi_client,
//!             make_handler: |ctx: runtime::Ctx, api| {
//!                 OrderIngest::new(ctx.pool, ctx.keys, api, ctx.topology, IngestConfig::default())
//!             },
//!         };
//!         service_testkit::Harness::run_with(pool, opts, service, test).await
//!     }
//! }
//! ```

use std::time::Duration;

use bus::Topology;
use domain::{delivery_rules::RuleConditions, messages::Command, shop::ShopCode};
use spapi_sim::{RunningSim, SimConfig};
use sqlx::PgPool;
use store::runs::Run;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Number of seeded products (`P-0001`…), each mapped to SKU `SKU-0001`… unless unmapped.
pub const CATALOG: usize = 40;
/// Initial on-hand stock of every seeded product.
pub const ON_HAND: i32 = 10_000;

pub struct Options {
    pub sim_rate_scale: f64,
    pub client_rate_scale: f64,
    pub max_limiter_wait: Duration,
    /// Catalog SKU numbers left without an external-product mapping.
    pub unmapped: Vec<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sim_rate_scale: 1.0,
            client_rate_scale: 1.0,
            max_limiter_wait: Duration::from_millis(500),
            unmapped: vec![],
        }
    }
}

/// Builds the SP-API client shared by the service and the test (pool, rate scale, longest
/// limiter wait), e.g. `runtime::spapi_client`.
pub type MakeClient = fn(&PgPool, f64, Duration) -> Result<spapi::SpApi, spapi::Error>;

/// The service under test.
pub struct Service<M> {
    /// Start of the scratch RabbitMQ prefix (`"oi-test"` gives `oi-test.<random>.`).
    pub queue_prefix: &'static str,
    /// The service's name and command routing key, as given to `runtime::serve`.
    pub action: &'static str,
    /// Builds the SP-API client; the same client is handed to `make_handler` and kept in
    /// [`Harness::api`].
    pub client: MakeClient,
    /// Builds the service's handler, like the closure given to `runtime::serve`.
    pub make_handler: M,
}

pub struct Harness {
    pub pool: PgPool,
    pub sim: RunningSim,
    pub shop_id: Uuid,
    pub topology: Topology,
    pub api: spapi::SpApi,
    pub amqp: std::sync::Arc<bus::lapin::Connection>,
    action: &'static str,
    cancel: CancellationToken,
    service: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Declares `pub struct $name(service_testkit::Harness)` with `Deref<Target = Harness>` and the
/// conversions [`Harness::run_with`] needs, so that a service's tests can add inherent helpers
/// (`h.trigger(…)`) next to the shared ones (`h.wait_run(…)`, `h.pool`).
#[macro_export]
macro_rules! harness_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        pub struct $name($crate::Harness);

        impl ::std::ops::Deref for $name {
            type Target = $crate::Harness;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::std::convert::From<$crate::Harness> for $name {
            fn from(h: $crate::Harness) -> Self {
                $name(h)
            }
        }

        impl ::std::convert::From<$name> for $crate::Harness {
            fn from(h: $name) -> Self {
                h.0
            }
        }
    };
}

/// Inserts shop `code` (JP, Tokyo, credentials encrypted with `Keyring::for_testing()`) pointed
/// at the simulator at `sim_base_url`, with the simulator's [`CATALOG`] products ([`product_code`],
/// [`ON_HAND`] on hand) and their SKUs ([`sku`]) mapped, except the numbers in `unmapped`.
/// Returns the shop's id.
pub async fn seed_shop(pool: &PgPool, code: &str, sim_base_url: &str, unmapped: &[usize]) -> Uuid {
    let keys = crypto::Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let shop = store::shops::insert(
        &mut conn,
        &keys,
        &store::shops::NewShop::japan_at(
            code.parse::<ShopCode>().unwrap(),
            "Acme JP",
            spapi_sim::DEFAULT_SELLER_ID,
            sim_base_url,
        ),
    )
    .await
    .unwrap();
    let shop_id = shop.shop.id;
    for n in 1..=CATALOG {
        let p = store::catalog::insert_product(
            &mut conn,
            shop_id,
            &product_code(n),
            &format!("Product {n}"),
        )
        .await
        .unwrap();
        store::inventory::set_on_hand(&mut conn, shop_id, p.id, ON_HAND, Some("initial count"))
            .await
            .unwrap();
        if !unmapped.contains(&n) {
            store::inventory::map_sku(&mut conn, shop_id, &sku(n), p.id, None)
                .await
                .unwrap();
        }
    }
    shop_id
}

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

pub fn sku(n: usize) -> String {
    format!("SKU-{n:04}")
}

pub fn product_code(n: usize) -> String {
    format!("P-{n:04}")
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.to_owned())
}

impl Harness {
    /// Starts the simulator, seeds the shop and its catalog, declares the scratch topology and
    /// spawns the service. Prefer [`Harness::run_with`], which always cleans up.
    pub async fn start<H, M>(pool: PgPool, opts: Options, service: Service<M>) -> Harness
    where
        H: bus::Handler,
        M: FnOnce(runtime::Ctx, spapi::SpApi) -> H + Send + 'static,
    {
        let sim = spapi_sim::spawn(SimConfig {
            rate_scale: opts.sim_rate_scale,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let shop_id = seed_shop(&pool, "acme-jp", &sim.base_url(), &opts.unmapped).await;

        let Service {
            queue_prefix,
            action,
            client,
            make_handler,
        } = service;
        let prefix = format!(
            "{queue_prefix}.{}.",
            &Uuid::now_v7().simple().to_string()[20..]
        );
        let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
        let amqp = bus::connect(&amqp_url(), &format!("test {prefix}"))
            .await
            .expect("RabbitMQ");
        // Events must be routable: a tap queue stands in for the services that consume them.
        let ch = amqp.create_channel().await.unwrap();
        topology.declare_exchanges(&ch).await.unwrap();
        topology
            .declare_service(&ch, "events-tap", &["order.#"])
            .await
            .unwrap();
        topology.declare_service(&ch, action, &[]).await.unwrap();

        let config = runtime::Config {
            database_url: database_url(&pool),
            amqp_url: amqp_url(),
            bus_prefix: prefix,
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            prefetch: 2,
            pool_size: 6,
            spapi_rate_scale: opts.client_rate_scale,
        };
        let api = client(&pool, opts.client_rate_scale, opts.max_limiter_wait).expect("client");
        let cancel = CancellationToken::new();
        let service = {
            let api = api.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                runtime::serve(
                    action,
                    &[],
                    config,
                    crypto::Keyring::for_testing(),
                    cancel,
                    move |ctx| make_handler(ctx, api),
                )
                .await
            })
        };
        Harness {
            pool,
            sim,
            shop_id,
            topology,
            api,
            amqp,
            action,
            cancel,
            service: Some(service),
        }
    }

    /// Starts a harness for `service`, runs `test` with it wrapped in `W` (the service's own
    /// harness type, or [`Harness`] itself), and always stops it and deletes the test's queues
    /// and exchanges (also when the test panics; the panic is then resumed).
    pub async fn run_with<W, H, M, F>(pool: PgPool, opts: Options, service: Service<M>, test: F)
    where
        W: From<Harness> + Into<Harness>,
        H: bus::Handler,
        M: FnOnce(runtime::Ctx, spapi::SpApi) -> H + Send + 'static,
        F: AsyncFnOnce(&W),
    {
        use futures_util::FutureExt;
        let h = W::from(Harness::start(pool, opts, service).await);
        let outcome = std::panic::AssertUnwindSafe(test(&h)).catch_unwind().await;
        let h: Harness = h.into();
        h.stop().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// Publishes any command (also invalid ones) through the outbox (the service's relay sends
    /// it). Returns its id.
    pub async fn send(&self, cmd: &Command) -> Uuid {
        let msg = bus::OutboxMessage::command(&self.topology, cmd);
        let mut conn = self.pool.acquire().await.unwrap();
        bus::outbox::enqueue(&mut conn, msg).await.unwrap();
        cmd.message_id
    }

    /// Publishes `cmd` straight to the broker again (a redelivery or a republish by a relay
    /// that died before marking the row sent): same message id.
    pub async fn republish(&self, cmd: &Command) {
        let publisher = bus::Publisher::new(self.amqp.clone()).await.unwrap();
        publisher
            .publish(&bus::OutgoingMessage {
                message_id: cmd.message_id,
                exchange: self.topology.commands_exchange(),
                routing_key: cmd.action.as_str().to_owned(),
                payload: serde_json::to_value(cmd).unwrap(),
                headers: bus::Headers::new(),
            })
            .await
            .unwrap();
    }

    /// Waits until the run started by `command_id` is finished (not running or waiting).
    pub async fn wait_run(&self, command_id: Uuid, timeout: Duration) -> Run {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let id: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM action_runs WHERE command_id = $1 AND status NOT IN ('running', 'waiting')",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            if let Some(id) = id {
                let mut conn = self.pool.acquire().await.unwrap();
                return store::runs::get(&mut conn, id).await.unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run of command {command_id} did not finish within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the outbox has no message left to publish (commands and events relayed).
    pub async fn wait_outbox_drained(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "outbox not drained: {n} left"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a `SELECT count(*)` whose only parameter `$1` is the test shop's id.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(self.shop_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn add_rule(&self, position: i32, method_code: &str, conditions: RuleConditions) {
        let mut conn = self.pool.acquire().await.unwrap();
        let m = store::catalog::upsert_delivery_method(
            &mut conn,
            self.shop_id,
            method_code,
            method_code,
            None,
        )
        .await
        .unwrap();
        store::catalog::add_rule(
            &mut conn,
            self.shop_id,
            position,
            method_code,
            &conditions,
            m.id,
        )
        .await
        .unwrap();
    }

    pub fn sim_calls(&self, op: &str) -> spapi_sim::CallCount {
        self.sim
            .sim()
            .call_counts()
            .get(op)
            .cloned()
            .unwrap_or_default()
    }

    /// Stops the service and deletes the test's queues and exchanges.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(s) = self.service.take() {
            match tokio::time::timeout(Duration::from_secs(20), s).await {
                Ok(Ok(Ok(()))) => {}
                other => eprintln!("service ended with {other:?}"),
            }
        }
        if let Ok(ch) = self.amqp.create_channel().await {
            for s in ["events-tap", self.action] {
                let _ = self.topology.delete_service(&ch, s).await;
            }
            let _ = self.topology.delete_exchanges(&ch).await;
        }
        let _ = bus::close(&self.amqp).await;
    }
}

/// The counts a finished run's job wrote (`action_runs.counts`), read as `C`.
pub fn run_counts<C: serde::de::DeserializeOwned>(run: &store::runs::Run) -> C {
    serde_json::from_value(run.counts.clone()).expect("the run's counts read as the job's counts")
}

/// The WMS payment method an imported order of the simulator's payment method `m` gets
/// (what the import and status-sync are expected to write).
pub fn expected_payment_method(m: spapi_sim::PaymentMethod) -> &'static str {
    match m {
        spapi_sim::PaymentMethod::CashOnDelivery => "cod",
        spapi_sim::PaymentMethod::ConvenienceStore => "convenience_store",
        _ => "other",
    }
}
