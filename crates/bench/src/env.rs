//! One benchmark environment: a scratch PostgreSQL database (`bench_<uuid>`, dropped at the
//! end), a unique RabbitMQ prefix (queues and exchanges deleted at the end), an embedded
//! simulator, one shop pointing at it, and the services started as child processes of this
//! binary (`bench serve <service>`, the same code as the service binaries), so that each
//! service's memory is its own.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bus::Topology;
use chrono::{DateTime, Utc};
use domain::{
    delivery_rules::RuleConditions,
    messages::{Command, CommandParams},
    shop::ShopCode,
};
use serde_json::{Value, json};
use spapi_sim::{RunningSim, SimConfig};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// Products (= the simulator's catalog SKUs `SKU-0001` … `SKU-0040`) mapped in the shop.
pub const CATALOG: usize = 40;
/// Stock of each product: large enough that no benchmark runs out.
pub const ON_HAND: i32 = 10_000_000;

/// What the services of an environment need.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// `SPAPI_RATE_SCALE` of the services (1 against the unlimited simulator).
    pub rate_scale: f64,
    /// `SPAPI_MAX_LIMITER_WAIT_MS` (order-ingest, status-sync).
    pub max_wait_ms: u64,
}

/// The client's rate scale against the unlimited simulator: the shared Postgres buckets then
/// never make a call wait (the simulator does not throttle either), so what is measured is our
/// own side. Every bucket statement still runs.
pub const UNLIMITED_CLIENT_SCALE: f64 = 1.0e6;

impl ServiceOptions {
    /// Services against the unlimited simulator.
    pub fn unlimited() -> Self {
        Self {
            rate_scale: UNLIMITED_CLIENT_SCALE,
            ..Self::default()
        }
    }
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            rate_scale: 1.0,
            max_wait_ms: 1000,
        }
    }
}

struct ChildService {
    service: &'static str,
    child: tokio::process::Child,
}

pub struct Env {
    server: String,
    db: String,
    pub url: String,
    pub pool: PgPool,
    pub topology: Topology,
    prefix: String,
    amqp: Arc<bus::lapin::Connection>,
    keys_spec: String,
    pub sim: RunningSim,
    pub shop_id: Uuid,
    declared: Vec<&'static str>,
    children: Vec<ChildService>,
    pub options: ServiceOptions,
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.to_owned())
}

fn server_url() -> anyhow::Result<String> {
    let base =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| store::DEFAULT_DATABASE_URL.to_owned());
    let base = base.split('?').next().unwrap_or_default().to_owned();
    let (server, _) = base
        .rsplit_once('/')
        .context("DATABASE_URL has no database")?;
    Ok(server.to_owned())
}

impl Env {
    /// Creates the scratch database, the simulator and the shop. Services are started
    /// separately ([`Env::start`]). Call [`Env::cleanup`] whatever happens.
    pub async fn create(sim: SimConfig, options: ServiceOptions) -> anyhow::Result<Env> {
        let server = server_url()?;
        let id = Uuid::new_v4().simple().to_string();
        let db = format!("bench_{id}");
        let url = format!("{server}/{db}");
        store::ensure_database(&url).await?;
        let pool = match store::connect(&url, 16).await {
            Ok(p) => p,
            Err(e) => {
                drop_database(&server, &db).await;
                return Err(e.into());
            }
        };
        let prefix = format!("bench.{}.", &id[..12]);
        let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
        let amqp = match bus::connect(&amqp_url(), &format!("bench {prefix}")).await {
            Ok(a) => a,
            Err(e) => {
                pool.close().await;
                drop_database(&server, &db).await;
                return Err(e.into());
            }
        };
        let sim = spapi_sim::spawn(sim).await?;
        let keys_spec = crypto::Keyring::generate_key(1);
        let mut env = Env {
            server,
            db,
            url,
            pool,
            topology,
            prefix,
            amqp,
            keys_spec,
            sim,
            shop_id: Uuid::nil(),
            declared: Vec::new(),
            children: Vec::new(),
            options,
        };
        if let Err(e) = env.prepare().await {
            env.cleanup().await;
            return Err(e);
        }
        Ok(env)
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        store::MIGRATOR.run(&self.pool).await?;
        let ch = self.amqp.create_channel().await?;
        // Also declares the events log queue: every event is routable.
        self.topology.declare_exchanges(&ch).await?;
        let keys = crypto::Keyring::parse(&self.keys_spec)?;
        let base = self.sim.base_url();
        let mut tx = self.pool.begin().await?;
        let shop = store::shops::insert(
            &mut tx,
            &keys,
            &store::shops::NewShop::japan_at(
                "bench-jp".parse::<ShopCode>()?,
                "Bench JP",
                spapi_sim::DEFAULT_SELLER_ID,
                &base,
            ),
        )
        .await?;
        self.shop_id = shop.shop.id;
        for n in 1..=CATALOG {
            let p = store::catalog::insert_product(
                &mut tx,
                self.shop_id,
                &format!("P-{n:04}"),
                &format!("Product {n}"),
            )
            .await?;
            store::inventory::set_on_hand(&mut tx, self.shop_id, p.id, ON_HAND, Some("bench"))
                .await?;
            store::inventory::map_sku(&mut tx, self.shop_id, &format!("SKU-{n:04}"), p.id, None)
                .await?;
        }
        let yamato = store::catalog::upsert_delivery_method(
            &mut tx,
            self.shop_id,
            "yamato",
            "ヤマト宅急便",
            Some("yamato"),
        )
        .await?;
        store::catalog::add_rule(
            &mut tx,
            self.shop_id,
            10,
            "everything by Yamato",
            &RuleConditions::default(),
            yamato.id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts `replicas` processes of `service` (`bench serve <service>`) and waits until
    /// each consumes its queue.
    pub async fn start(&mut self, service: &'static str, replicas: usize) -> anyhow::Result<()> {
        let event_keys: &[&str] = if service == feed_poller::SERVICE {
            &["feed.submitted"]
        } else {
            &[]
        };
        let ch = self.amqp.create_channel().await?;
        let queue = self
            .topology
            .declare_service(&ch, service, event_keys)
            .await?;
        if !self.declared.contains(&service) {
            self.declared.push(service);
        }
        let exe = std::env::current_exe()?;
        // BENCH_SERVICE_BIN_DIR: run the service's own release binary from there instead
        // (e.g. target/release after `cargo build --release -p <service>`).
        let own_binary = std::env::var_os("BENCH_SERVICE_BIN_DIR")
            .map(|d| std::path::PathBuf::from(d).join(service))
            .filter(|p| p.is_file());
        for _ in 0..replicas {
            let mut cmd = match &own_binary {
                Some(bin) => tokio::process::Command::new(bin),
                None => {
                    let mut c = tokio::process::Command::new(&exe);
                    c.arg("serve").arg(service);
                    c
                }
            };
            let child = cmd
                .env("DATABASE_URL", &self.url)
                .env("AMQP_URL", amqp_url())
                .env("BUS_PREFIX", &self.prefix)
                .env("CONNECTOR_ENCRYPTION_KEYS", &self.keys_spec)
                .env("SPAPI_RATE_SCALE", self.options.rate_scale.to_string())
                .env(
                    "SPAPI_MAX_LIMITER_WAIT_MS",
                    self.options.max_wait_ms.to_string(),
                )
                .env("ADMIN_ADDR", "127.0.0.1:0")
                .env(
                    "RUST_LOG",
                    std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .stdin(Stdio::null())
                // The services log to stdout; with BENCH_SERVICE_LOG set their logs go to
                // stderr (stdout carries the bench's JSON).
                .stdout(match std::env::var_os("BENCH_SERVICE_LOG") {
                    Some(_) => Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?),
                    None => Stdio::null(),
                })
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start {service}"))?;
            self.children.push(ChildService { service, child });
        }
        let want = self
            .children
            .iter()
            .filter(|c| c.service == service)
            .count() as u32;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let q = ch
                .queue_declare(
                    queue.as_str().into(),
                    bus::lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await?;
            if q.consumer_count() >= want {
                break;
            }
            for c in &mut self.children {
                if let Some(status) = c.child.try_wait()? {
                    bail!("{} exited during start-up: {status}", c.service);
                }
            }
            if Instant::now() > deadline {
                bail!("{service} did not consume its queue within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Process ids of the running replicas of `service`.
    pub fn pids(&self, service: &str) -> Vec<u32> {
        self.children
            .iter()
            .filter(|c| c.service == service)
            .filter_map(|c| c.child.id())
            .collect()
    }

    /// Peak and current resident memory (MiB) of every replica of `service`: (max peak,
    /// max current).
    pub fn service_memory(&self, service: &str) -> (f64, f64) {
        let mut peak: f64 = 0.0;
        let mut cur: f64 = 0.0;
        for pid in self.pids(service) {
            peak = peak.max(crate::machine::status_mib(pid, "VmHWM:").unwrap_or(0.0));
            cur = cur.max(crate::machine::status_mib(pid, "VmRSS:").unwrap_or(0.0));
        }
        (peak, cur)
    }

    /// Resets the peak RSS of the replicas of `service` to their current RSS (Linux clear_refs).
    pub fn reset_peak(&self, service: &str) {
        for pid in self.pids(service) {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// Publishes a command through the outbox (a service's relay sends it); returns its id and
    /// the database time of the commit.
    pub async fn trigger(&self, params: CommandParams) -> anyhow::Result<(Uuid, DateTime<Utc>)> {
        let action = params.action().context("a concrete action")?;
        let cmd = Command::new(self.shop_id, action, params, "bench", Utc::now());
        let msg = bus::OutboxMessage::command(&self.topology, &cmd);
        let mut tx = self.pool.begin().await?;
        bus::outbox::enqueue(&mut tx, msg).await?;
        tx.commit().await?;
        let at: DateTime<Utc> = sqlx::query_scalar("SELECT created_at FROM outbox WHERE id = $1")
            .bind(cmd.message_id)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|_| Utc::now());
        Ok((cmd.message_id, at))
    }

    /// Waits until the run of `command_id` and every continuation of it has finished; returns it.
    pub async fn wait_run(&self, command_id: Uuid, timeout: Duration) -> anyhow::Result<RunInfo> {
        let deadline = Instant::now() + timeout;
        let mut polls = 0u32;
        loop {
            let row: Option<RunRow> = sqlx::query_as(
                    "SELECT id, status, error, counts, amazon_calls, started_at, finished_at FROM action_runs \
                     WHERE command_id = $1 AND status NOT IN ('running', 'waiting')",
                )
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some((id, status, error, counts, amazon_calls, started_at, finished_at)) = row {
                return Ok(RunInfo {
                    id,
                    status,
                    error,
                    counts,
                    amazon_calls: i64::from(amazon_calls),
                    started_at,
                    finished_at,
                });
            }
            if Instant::now() > deadline {
                bail!("the run of command {command_id} did not finish within {timeout:?}");
            }
            for c in &self.children {
                if c.child.id().is_none() {
                    bail!("{} is no longer running", c.service);
                }
            }
            // Quick at first (short runs), then every 50 ms so that polling stays negligible.
            polls += 1;
            tokio::time::sleep(Duration::from_millis(if polls < 100 { 2 } else { 50 })).await;
        }
    }

    /// Waits for `probe` (an SQL count with `$1` = shop id) to reach zero.
    pub async fn wait_zero(&self, sql: &'static str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(self.shop_id)
                .fetch_one(&self.pool)
                .await?;
            if n == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("still {n} after {timeout:?}: {sql}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn count(&self, sql: &'static str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sql)
            .bind(self.shop_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The simulator's counters: calls by operation (all, including 429s) and 429s in total.
    pub fn amazon_calls(&self) -> (BTreeMap<String, u64>, u64) {
        calls_of(&self.sim)
    }

    /// Stops the services (SIGTERM, then kill), deletes queues and exchanges, stops the
    /// simulator and drops the scratch database.
    pub async fn cleanup(mut self) {
        self.stop_services().await;
        if let Ok(ch) = self.amqp.create_channel().await {
            for s in &self.declared {
                let _ = self.topology.delete_service(&ch, s).await;
            }
            let _ = self.topology.delete_exchanges(&ch).await;
        }
        let _ = bus::close(&self.amqp).await;
        self.pool.close().await;
        self.sim.shutdown().await;
        drop_database(&self.server, &self.db).await;
    }

    pub async fn stop_services(&mut self) {
        for c in &self.children {
            if let Some(pid) = c.child.id() {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
            }
        }
        for mut c in self.children.drain(..) {
            match tokio::time::timeout(Duration::from_secs(20), c.child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("{} did not stop within 20 s: killed", c.service);
                    let _ = c.child.kill().await;
                }
            }
        }
    }
}

/// Deletes the queues and exchanges of an interrupted run (`bench cleanup --prefix bench.xxxx.`).
pub async fn delete_prefix(prefix: &str) -> anyhow::Result<()> {
    if !prefix.starts_with("bench.") {
        bail!("only bench prefixes (bench.<id>.) can be deleted");
    }
    let topology = Topology::new(prefix.to_owned(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url(), "bench cleanup").await?;
    let ch = amqp.create_channel().await?;
    for s in [
        "order-ingest",
        "status-sync",
        "shipment-feedback",
        "inventory-sync",
        "feed-poller",
    ] {
        topology.delete_service(&ch, s).await?;
    }
    topology.delete_exchanges(&ch).await?;
    let _ = bus::close(&amqp).await;
    Ok(())
}

/// Calls answered 429 by operation.
pub fn throttled_of(sim: &RunningSim) -> BTreeMap<String, u64> {
    sim.sim()
        .call_counts()
        .into_iter()
        .filter(|(_, v)| v.throttled > 0)
        .map(|(k, v)| (k, v.throttled))
        .collect()
}

pub fn calls_of(sim: &RunningSim) -> (BTreeMap<String, u64>, u64) {
    let counts = sim.sim().call_counts();
    let throttled = counts.values().map(|c| c.throttled).sum();
    (
        counts.into_iter().map(|(k, v)| (k, v.calls)).collect(),
        throttled,
    )
}

async fn drop_database(server: &str, db: &str) {
    match PgConnection::connect(&format!("{server}/postgres")).await {
        Ok(mut admin) => {
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            {
                eprintln!("could not drop {db}: {e}");
            }
        }
        Err(e) => eprintln!("could not drop {db}: {e}"),
    }
}

/// `id, status, error, counts, amazon_calls, started_at, finished_at` of `action_runs`.
type RunRow = (
    Uuid,
    String,
    Option<String>,
    Value,
    i32,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: Uuid,
    pub status: String,
    pub error: Option<String>,
    pub counts: Value,
    pub amazon_calls: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunInfo {
    pub fn ensure_succeeded(&self) -> anyhow::Result<()> {
        if self.status != "succeeded" {
            bail!(
                "run {} ended {}: {}",
                self.id,
                self.status,
                self.error.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }

    /// Database time from `from` to the run's end.
    pub fn seconds_since(&self, from: DateTime<Utc>) -> f64 {
        self.finished_at
            .map(|f| (f - from).num_microseconds().unwrap_or(0) as f64 / 1e6)
            .unwrap_or(f64::NAN)
    }

    /// The run's own span in the ledger (started → finished, continuations included).
    pub fn run_seconds(&self) -> f64 {
        self.finished_at
            .map(|f| (f - self.started_at).num_microseconds().unwrap_or(0) as f64 / 1e6)
            .unwrap_or(f64::NAN)
    }

    pub fn summary(&self) -> Value {
        json!({"status": self.status, "amazon_calls": self.amazon_calls, "counts": self.counts})
    }
}
