//! The whole system in one test: a fresh database (`#[sqlx::test]`), a unique bus prefix on the
//! local RabbitMQ, an embedded simulator, shops, and the five services run in-process by
//! `runtime::serve` exactly as their binaries do (they can be stopped, or aborted as a crash).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bus::Topology;
use bus::lapin::options::{BasicGetOptions, QueueDeclareOptions};
use bus::lapin::types::FieldTable;
use chrono::{NaiveDate, Utc};
use domain::messages::{Action, Command, CommandParams, StatusSyncMode};
use domain::window::ImportMode;
use secrecy::SecretString;
use spapi_sim::{RunningSim, SimConfig};
use sqlx::PgPool;
use store::runs::Run;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `CONNECTOR_ENCRYPTION_KEYS` matching [`crypto::Keyring::for_testing`] (for service processes).
pub const TEST_KEYS: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// The services' SP-API clients run at 50 × Amazon's documented rates (the simulator does not
/// limit): a throttled run continues after seconds instead of minutes.
pub const RATE_SCALE: f64 = 50.0;

/// Catalog products per shop (`P-0001`…, SKUs `SKU-0001`…).
pub const CATALOG: usize = 40;
pub const ON_HAND: i32 = 100_000;

/// The five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Svc {
    OrderIngest,
    StatusSync,
    ShipmentFeedback,
    FeedPoller,
    InventorySync,
}

impl Svc {
    pub const ALL: [Svc; 5] = [
        Svc::OrderIngest,
        Svc::StatusSync,
        Svc::ShipmentFeedback,
        Svc::FeedPoller,
        Svc::InventorySync,
    ];

    /// Service, queue and binary name.
    pub fn name(self) -> &'static str {
        match self {
            Svc::OrderIngest => order_ingest::ACTION,
            Svc::StatusSync => status_sync::ACTION,
            Svc::ShipmentFeedback => shipment_feedback::SERVICE,
            Svc::FeedPoller => feed_poller::SERVICE,
            Svc::InventorySync => inventory_sync::SERVICE,
        }
    }

    pub fn event_keys(self) -> &'static [&'static str] {
        match self {
            Svc::FeedPoller => &["feed.submitted"],
            _ => &[],
        }
    }

    pub fn action(self) -> Action {
        match self {
            Svc::OrderIngest => Action::OrderIngest,
            Svc::StatusSync => Action::StatusSync,
            Svc::ShipmentFeedback => Action::ShipmentFeedback,
            Svc::FeedPoller => Action::FeedPoller,
            Svc::InventorySync => Action::InventorySync,
        }
    }
}

/// A shop of the system.
#[derive(Debug, Clone)]
pub struct ShopInfo {
    pub id: Uuid,
    pub code: String,
    pub seller_id: String,
    /// Delivery method used when the test ships an instruction (external `yamato`).
    pub delivery_method: Uuid,
    /// The LWA client secret and refresh token stored (encrypted) for the shop.
    pub client_secret: String,
    pub refresh_token: String,
}

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The system under test.
/// status-sync's grace before an unannounced change counts as missed, in these tests (the
/// service's default is five minutes).
pub const ANNOUNCE_GRACE: chrono::Duration = chrono::Duration::seconds(8);

pub struct System {
    pub pool: PgPool,
    pub sim: RunningSim,
    pub keys: crypto::Keyring,
    pub topology: Topology,
    pub prefix: String,
    pub amqp: Arc<bus::lapin::Connection>,
    pub shops: Vec<ShopInfo>,
    /// AMQP URL the services use (a fault proxy's address in broker-link tests).
    pub service_amqp_url: String,
    /// order-ingest's and status-sync's minimum interval between order-mirror polls, for the
    /// services started from now on (zero: every run polls).
    pub mirror_min_interval: chrono::Duration,
    services: BTreeMap<Svc, Running>,
    /// The services run here, on a multi-threaded runtime of their own, as in their binaries
    /// (`#[tokio::main]`): lapin's I/O thread blocks on the runtime while it reconnects, which
    /// on the test's single-threaded runtime could deadlock with a task waiting for lapin.
    services_rt: Option<tokio::runtime::Runtime>,
    /// The fail points of the running shipment-feedback service (crash hooks).
    pub feedback_fail_points: Arc<std::sync::Mutex<Option<Arc<shipment_feedback::FailPoints>>>>,
    cleaned: std::sync::atomic::AtomicBool,
}

impl Drop for System {
    /// A failed test never reaches `shutdown`: delete its queues and exchanges anyway, from a
    /// thread with its own runtime (drop cannot await).
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The services' logs (captured at debug level) of a failed test, for its report.
            let path = std::env::temp_dir().join(format!("system-test-{}.log", self.prefix));
            if std::fs::write(&path, crate::capture::text()).is_ok() {
                eprintln!("service logs of this test: {}", path.display());
            }
        }
        for (_, r) in std::mem::take(&mut self.services) {
            r.task.abort();
        }
        if let Some(rt) = self.services_rt.take() {
            rt.shutdown_background();
        }
        if self.cleaned.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let topology = self.topology.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) = bus::connect(&amqp_url(), "system-test cleanup").await else {
                    return;
                };
                if let Ok(ch) = conn.create_channel().await {
                    for svc in Svc::ALL {
                        let _ = topology.delete_service(&ch, svc.name()).await;
                    }
                    let _ = topology.delete_exchanges(&ch).await;
                }
                let _ = bus::close(&conn).await;
            });
        })
        .join();
    }
}

pub use service_testkit::{amqp_url, database_url, sku};

/// A 12-digit (Yamato) tracking number.
pub fn tracking12(n: u64) -> String {
    format!("{:012}", 400_000_000_000u64 + n)
}

impl System {
    /// Simulator (no rate limit, fast feeds), topology declared for the five services, one shop
    /// `shop-a` on the default seller. Services are not started yet.
    pub async fn new(pool: PgPool) -> System {
        crate::capture::install();
        let sim = spapi_sim::spawn(SimConfig {
            unlimited: true,
            feed_processing: Duration::from_millis(300),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let mut opts = sim.sim().options();
        opts.feed_processing_ms = 300;
        opts.unlimited = true;
        sim.sim().set_options(opts).expect("sim options");
        let prefix = format!("st.{}.", &Uuid::now_v7().simple().to_string()[16..]);
        let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
        let amqp = bus::connect(&amqp_url(), &format!("system-test {prefix}"))
            .await
            .expect("RabbitMQ");
        let ch = amqp.create_channel().await.unwrap();
        topology.declare_exchanges(&ch).await.unwrap();
        for svc in Svc::ALL {
            topology
                .declare_service(&ch, svc.name(), svc.event_keys())
                .await
                .unwrap();
        }
        let _ = ch.close(200, "OK".into()).await;
        let mut sys = System {
            pool,
            sim,
            keys: crypto::Keyring::for_testing(),
            topology,
            prefix,
            amqp,
            shops: vec![],
            service_amqp_url: amqp_url(),
            mirror_min_interval: chrono::Duration::zero(),
            services: BTreeMap::new(),
            services_rt: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("services")
                    .enable_all()
                    .build()
                    .expect("services runtime"),
            ),
            feedback_fail_points: Default::default(),
            cleaned: Default::default(),
        };
        sys.add_shop("shop-a", spapi_sim::DEFAULT_SELLER_ID, None)
            .await;
        sys
    }

    /// A JP shop (feed strategy) with a catalog of [`CATALOG`] mapped SKUs. `credentials` are
    /// the LWA client id / refresh token registered at the simulator for `seller_id` (None:
    /// the default seller, any credentials).
    pub async fn add_shop(
        &mut self,
        code: &str,
        seller_id: &str,
        credentials: Option<(&str, &str)>,
    ) -> ShopInfo {
        if let Some((client_id, refresh)) = credentials {
            self.sim
                .sim()
                .register_seller(client_id, "secret", refresh, seller_id);
        }
        let base = self.sim.base_url();
        self.add_shop_on(code, seller_id, credentials, &base).await
    }

    /// [`System::add_shop`] with the SP-API at `base` (another simulator).
    pub async fn add_shop_on(
        &mut self,
        code: &str,
        seller_id: &str,
        credentials: Option<(&str, &str)>,
        base: &str,
    ) -> ShopInfo {
        // Unique secrets per shop (the simulator's default seller accepts any), so the canary
        // test can search for them; a registered seller's secret is "secret".
        let unique = Uuid::new_v4().simple().to_string();
        let default_refresh = format!("Atzr|REFRESH{unique}");
        let (client_id, refresh) = match credentials {
            Some(c) => c,
            None => (
                "amzn1.application-oa2-client.test",
                default_refresh.as_str(),
            ),
        };
        let client_secret = if credentials.is_some() {
            "secret".to_owned()
        } else {
            format!("amzn1.oa2-cs.v1.SECRET{unique}")
        };
        let mut conn = self.pool.acquire().await.unwrap();
        let base = base.to_owned();
        let shop = store::shops::insert(
            &mut conn,
            &self.keys,
            &store::shops::NewShop {
                client_id: client_id.into(),
                client_secret: SecretString::from(client_secret.clone()),
                refresh_token: SecretString::from(refresh.to_owned()),
                ..store::shops::NewShop::japan_at(
                    code.parse().unwrap(),
                    &format!("Shop {code}"),
                    seller_id,
                    &base,
                )
            },
        )
        .await
        .unwrap()
        .shop;
        for n in 1..=CATALOG {
            let p = store::catalog::insert_product(
                &mut conn,
                shop.id,
                &format!("P-{n:04}"),
                &format!("Product {n}"),
            )
            .await
            .unwrap();
            store::inventory::set_on_hand(&mut conn, shop.id, p.id, ON_HAND, Some("initial count"))
                .await
                .unwrap();
            store::inventory::map_sku(&mut conn, shop.id, &sku(n), p.id, None)
                .await
                .unwrap();
        }
        let dm = Uuid::now_v7();
        sqlx::query("INSERT INTO delivery_methods (id, shop_id, code, name, external_delivery_method) VALUES ($1, $2, 'yamato', '宅急便', 'yamato')")
            .bind(dm)
            .bind(shop.id)
            .execute(&mut *conn)
            .await
            .unwrap();
        let info = ShopInfo {
            id: shop.id,
            code: code.to_owned(),
            seller_id: seller_id.to_owned(),
            delivery_method: dm,
            client_secret,
            refresh_token: refresh.to_owned(),
        };
        self.shops.push(info.clone());
        info
    }

    pub fn shop(&self, code: &str) -> &ShopInfo {
        self.shops.iter().find(|s| s.code == code).expect("shop")
    }

    pub fn a(&self) -> &ShopInfo {
        &self.shops[0]
    }

    /// Points a shop's SP-API and LWA endpoints at `base` (a fault proxy) or back.
    pub async fn set_endpoint(&self, shop: Uuid, base: &str) {
        sqlx::query("UPDATE shops SET sp_api_endpoint = $2, lwa_endpoint = $3 WHERE id = $1")
            .bind(shop)
            .bind(base)
            .bind(format!("{base}/auth/o2/token"))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    fn config(&self) -> runtime::Config {
        runtime::Config {
            database_url: database_url(&self.pool),
            amqp_url: self.service_amqp_url.clone(),
            bus_prefix: self.prefix.clone(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            prefetch: 2,
            pool_size: 4,
            spapi_rate_scale: RATE_SCALE,
        }
    }

    /// Starts a service in-process (as its binary would, without signal handling).
    pub fn start(&mut self, svc: Svc) {
        if let Some(r) = self.services.get(&svc)
            && !r.task.is_finished()
        {
            return;
        }
        let cancel = CancellationToken::new();
        let config = self.config();
        let keys = self.keys.clone();
        let c = cancel.clone();
        let fail_slot = self.feedback_fail_points.clone();
        let mirror_min_interval = self.mirror_min_interval;
        let rt = self
            .services_rt
            .as_ref()
            .expect("services runtime")
            .handle();
        let task = rt.spawn(async move {
            // The SP-API client's rate buckets live in PostgreSQL: the service's own pool.
            let api = |pool: &PgPool| {
                runtime::spapi_client(pool, RATE_SCALE, Duration::from_millis(500)).expect("client")
            };
            match svc {
                Svc::OrderIngest => {
                    runtime::serve(svc.name(), svc.event_keys(), config, keys, c, move |ctx| {
                        let api = api(&ctx.pool);
                        order_ingest::OrderIngest::new(
                            ctx.pool,
                            ctx.keys,
                            api,
                            ctx.topology,
                            order_ingest::IngestConfig {
                                page_size: 20,
                                transient_retry: chrono::Duration::milliseconds(300),
                                mirror_min_interval,
                                ..Default::default()
                            },
                        )
                    })
                    .await
                }
                Svc::StatusSync => {
                    runtime::serve(svc.name(), svc.event_keys(), config, keys, c, move |ctx| {
                        let api = api(&ctx.pool);
                        status_sync::StatusSync::new(
                            ctx.pool,
                            ctx.keys,
                            api,
                            ctx.topology,
                            status_sync::SyncConfig {
                                transient_retry: chrono::Duration::milliseconds(300),
                                announce_grace: ANNOUNCE_GRACE,
                                mirror_min_interval,
                                ..Default::default()
                            },
                        )
                    })
                    .await
                }
                Svc::ShipmentFeedback => {
                    runtime::serve(svc.name(), svc.event_keys(), config, keys, c, move |ctx| {
                        let api = api(&ctx.pool);
                        let s = shipment_feedback::Service::new(
                            ctx.pool,
                            ctx.keys,
                            api,
                            ctx.topology,
                            shipment_feedback::Settings {
                                first_poll_delay: chrono::Duration::milliseconds(200),
                                retry_delay: chrono::Duration::milliseconds(500),
                                ..Default::default()
                            },
                        );
                        *fail_slot.lock().unwrap() = Some(s.fail_points().clone());
                        s
                    })
                    .await
                }
                Svc::FeedPoller => {
                    runtime::serve(svc.name(), svc.event_keys(), config, keys, c, move |ctx| {
                        let api = api(&ctx.pool);
                        feed_poller::Poller::new(
                            ctx.pool,
                            ctx.keys,
                            api,
                            ctx.topology,
                            feed_poller::Settings {
                                first_delay: Duration::from_millis(300),
                                max_delay: Duration::from_secs(2),
                                ..Default::default()
                            },
                        )
                    })
                    .await
                }
                Svc::InventorySync => {
                    runtime::serve(svc.name(), svc.event_keys(), config, keys, c, move |ctx| {
                        let api = api(&ctx.pool);
                        inventory_sync::Service::new(
                            ctx.pool,
                            ctx.keys,
                            api,
                            ctx.topology,
                            inventory_sync::Settings {
                                first_poll_delay: chrono::Duration::milliseconds(300),
                                retry_delay: chrono::Duration::milliseconds(500),
                                ..Default::default()
                            },
                        )
                    })
                    .await
                }
            }
        });
        self.services.insert(svc, Running { cancel, task });
    }

    pub fn start_all(&mut self) {
        for svc in Svc::ALL {
            self.start(svc);
        }
    }

    /// Graceful stop (SIGTERM equivalent): finishes in-flight work.
    pub async fn stop(&mut self, svc: Svc) {
        if let Some(r) = self.services.remove(&svc) {
            r.cancel.cancel();
            match tokio::time::timeout(Duration::from_secs(20), r.task).await {
                Ok(Ok(Err(e))) => panic!("{} ended with an error: {e:#}", svc.name()),
                Ok(Err(e)) if e.is_panic() => panic!("{} panicked", svc.name()),
                Err(_) => panic!("{} did not stop within 20 s", svc.name()),
                _ => {}
            }
        }
    }

    /// Crash in-process: the service's task is aborted wherever it is (between an Amazon call
    /// and the commit, or after the commit before the ack); its unacknowledged deliveries go
    /// back to the queue when the broker notices the closed channel.
    pub async fn abort(&mut self, svc: Svc) {
        if let Some(r) = self.services.remove(&svc) {
            r.task.abort();
            let _ = r.task.await;
        }
    }

    /// Whether a service's task is still running.
    pub fn is_running(&self, svc: Svc) -> bool {
        self.services
            .get(&svc)
            .is_some_and(|r| !r.task.is_finished())
    }

    /// Leases of dead runs expire (10 minutes in production): the test expires them now.
    pub async fn expire_leases(&self) {
        sqlx::query("DELETE FROM action_leases")
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub async fn stop_all(&mut self) {
        let all: Vec<Svc> = self.services.keys().copied().collect();
        for s in all {
            self.stop(s).await;
        }
    }

    /// Enqueues a command in the outbox (a running service's relay publishes it).
    pub async fn trigger(&self, shop: Uuid, params: CommandParams) -> Uuid {
        let action = params.action().expect("not a continuation");
        let cmd = Command::new(shop, action, params, "system-test", Utc::now());
        self.send(&cmd).await
    }

    pub async fn send(&self, cmd: &Command) -> Uuid {
        let msg = bus::OutboxMessage::command(&self.topology, cmd);
        let mut conn = self.pool.acquire().await.unwrap();
        bus::outbox::enqueue(&mut conn, msg).await.unwrap();
        cmd.message_id
    }

    /// Publishes raw bytes to a service's queue (through the commands exchange), as a broken
    /// producer would.
    pub async fn publish_raw(&self, svc: Svc, body: &[u8], message_id: Option<&str>) {
        use bus::lapin::BasicProperties;
        use bus::lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
        let ch = self.amqp.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut props = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        ch.basic_publish(
            self.topology.commands_exchange().as_str().into(),
            svc.name().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
        let _ = ch.close(200, "OK".into()).await;
    }

    pub async fn ingest(&self, shop: Uuid, mode: ImportMode) -> Run {
        let id = self
            .trigger(shop, CommandParams::OrderIngest { mode })
            .await;
        self.wait_run(id, Duration::from_secs(60)).await
    }

    pub async fn status_sync(&self, shop: Uuid) -> Run {
        let id = self
            .trigger(
                shop,
                CommandParams::StatusSync {
                    mode: StatusSyncMode::Changes,
                },
            )
            .await;
        self.wait_run(id, Duration::from_secs(60)).await
    }

    pub async fn feedback(&self, shop: Uuid) -> Run {
        let id = self.trigger(shop, CommandParams::ShipmentFeedback {}).await;
        self.wait_run(id, Duration::from_secs(60)).await
    }

    pub async fn inventory(&self, shop: Uuid, full: bool) -> Run {
        let id = self
            .trigger(shop, CommandParams::InventorySync { full })
            .await;
        self.wait_run(id, Duration::from_secs(60)).await
    }

    /// The last run of a chain started by `command_id` (continuations follow the run), once
    /// finished.
    pub async fn wait_run(&self, command_id: Uuid, timeout: Duration) -> Run {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let id: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM action_runs WHERE command_id = $1 AND status NOT IN ('running', 'waiting') ORDER BY started_at DESC LIMIT 1",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap_or(None); // the database may be restarting
            if let Some(id) = id
                && let Ok(mut conn) = self.pool.acquire().await
                && let Ok(run) = store::runs::get(&mut conn, id).await
            {
                return run;
            }
            if tokio::time::Instant::now() > deadline {
                let runs: Vec<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT action, status, error FROM action_runs ORDER BY started_at",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                panic!(
                    "run of command {command_id} did not finish within {timeout:?}; runs: {runs:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until nothing is left to do: outbox sent, no run running or waiting, every work
    /// queue empty, no feed still open at the simulator or here.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet = 0;
        loop {
            let busy: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL)
                      + (SELECT count(*) FROM action_runs r WHERE status = 'waiting'
                            OR (status = 'running' AND EXISTS (SELECT 1 FROM action_leases l WHERE l.run_id = r.id)))
                      + (SELECT count(*) FROM feed_submissions WHERE state IN ('pending', 'in_flight', 'submitted'))",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap_or(1);
            let mut queued = 0;
            for svc in Svc::ALL {
                queued += self.queue_len(&self.topology.queue(svc.name())).await;
            }
            if busy == 0 && queued == 0 {
                quiet += 1;
                if quiet >= 3 {
                    return;
                }
            } else {
                quiet = 0;
            }
            if tokio::time::Instant::now() > deadline {
                let outbox: Vec<(String, i32, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT routing_key, attempts, last_error, (not_before - now())::text FROM outbox WHERE sent_at IS NULL LIMIT 5",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                let runs: Vec<(String, String, Option<serde_json::Value>)> = sqlx::query_as(
                    "SELECT action, status, cursor FROM action_runs WHERE status IN ('running', 'waiting')",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                let feeds: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
                    "SELECT feed_type, state, poll_attempts, (next_poll_at - now())::text FROM feed_submissions WHERE state IN ('pending', 'in_flight', 'submitted')",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                let last: Vec<(String, String, Option<String>, serde_json::Value)> = sqlx::query_as(
                    "SELECT action, status, error, counts FROM action_runs ORDER BY started_at DESC LIMIT 4",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                let log: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
                    "SELECT action, level, code, message FROM api_log ORDER BY id DESC LIMIT 6",
                )
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
                panic!(
                    "not drained within {timeout:?}: busy={busy} queued={queued} outbox={outbox:?} runs={runs:?} feeds={feeds:?}\nlast runs: {last:?}\napi_log: {log:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ready messages in a queue (0 when it does not exist).
    pub async fn queue_len(&self, queue: &str) -> u32 {
        let Ok(ch) = self.amqp.create_channel().await else {
            return 0;
        };
        let n = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0);
        let _ = ch.close(200, "OK".into()).await;
        n
    }

    /// Every message body of a queue (fetched unacknowledged, then returned), with its headers
    /// rendered as text.
    pub async fn peek_queue(&self, queue: &str) -> Vec<String> {
        let ch = self.amqp.create_channel().await.unwrap();
        let mut out = vec![];
        while let Ok(Some(got)) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
        {
            let d = got.delivery;
            out.push(format!(
                "{} {:?}",
                String::from_utf8_lossy(&d.data),
                d.properties.headers()
            ));
            if out.len() > 20_000 {
                break;
            }
        }
        let _ = ch.close(200, "OK".into()).await;
        out
    }

    /// The instructions awaiting shipment of a shop go out: allocated and shipped today with a
    /// Yamato tracking number (what the WMS and `ctl allocate`/`ctl ship` do). Returns how many.
    pub async fn ship_awaiting(
        &self,
        shop: &ShopInfo,
        limit: i64,
        shipped_on: Option<NaiveDate>,
    ) -> usize {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM shipping_instructions WHERE shop_id = $1 AND status = 'awaiting_shipment' ORDER BY amazon_order_id LIMIT $2",
        )
        .bind(shop.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let today = shipped_on
            .unwrap_or_else(|| domain::eligibility::today_in(chrono_tz::Asia::Tokyo, Utc::now()));
        for (i, id) in ids.iter().enumerate() {
            let mut tx = self.pool.begin().await.unwrap();
            sqlx::query(
                r#"UPDATE stock s SET reserved = s.reserved - l.reserved_quantity,
                          on_hand = GREATEST(s.on_hand - l.quantity, 0),
                          change_seq = nextval('stock_change_seq'), changed_at = now()
                   FROM (SELECT product_id, sum(reserved_quantity)::int AS reserved_quantity, sum(quantity)::int AS quantity
                         FROM instruction_lines WHERE instruction_id = $1 AND product_id IS NOT NULL GROUP BY product_id) l
                   WHERE s.product_id = l.product_id"#,
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "UPDATE instruction_lines SET reserved_quantity = 0 WHERE instruction_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            let n = u64::from_str_radix(&id.simple().to_string()[20..], 16).unwrap_or(i as u64)
                % 100_000_000;
            sqlx::query(
                r#"UPDATE shipping_instructions SET status = 'shipped', delivery_method_id = $2, delivery_method_name = '宅急便',
                          tracking_numbers = ARRAY[$3], shipped_on = $4, shipped_at = now(), updated_at = now()
                   WHERE id = $1"#,
            )
            .bind(id)
            .bind(shop.delivery_method)
            .bind(tracking12(n))
            .bind(today)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        ids.len()
    }

    /// Stops the services and deletes this test's queues and exchanges.
    pub async fn shutdown(mut self) {
        self.stop_all().await;
        self.cleanup_bus().await;
    }

    /// Deletes queues and exchanges of this prefix (also after an abort).
    pub async fn cleanup_bus(&self) {
        self.cleaned
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(ch) = self.amqp.create_channel().await {
            for svc in Svc::ALL {
                let _ = self.topology.delete_service(&ch, svc.name()).await;
            }
            let _ = self.topology.delete_exchanges(&ch).await;
            let _ = ch.close(200, "OK".into()).await;
        }
    }

    /// Waits until the database answers again (after a restart).
    pub async fn wait_db(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while sqlx::query("SELECT 1").execute(&self.pool).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "database not back within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}
