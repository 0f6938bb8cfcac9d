//! The shared shape of a service binary: configuration from the environment (validated at
//! start-up), the Postgres pool, the RabbitMQ connection and topology, the outbox relay, the
//! consumer, an admin HTTP server (`/livez`, `/readyz`, `/metrics`) and graceful shutdown on
//! SIGTERM. A service supplies only its queue name, the event keys it listens to and a handler.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use axum::{Router, extract::State, http::StatusCode, routing::get};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub mod job;
pub mod metrics;
mod spapi_client;

pub use job_api::shop_api;
pub use spapi_client::{
    DEFAULT_MAX_LIMITER_WAIT, MAX_LIMITER_WAIT_VAR, max_limiter_wait, spapi_client,
};

/// Default AMQP URL for the local RabbitMQ.
pub const DEFAULT_AMQP_URL: &str = bus::DEFAULT_AMQP_URL;

/// Longest wait for connecting to RabbitMQ and declaring a service's queues.
const BROKER_SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Configuration every service reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` (default: local PostgreSQL, database `connector`).
    pub database_url: String,
    /// `AMQP_URL` (default: local RabbitMQ, guest/guest).
    pub amqp_url: String,
    /// `BUS_PREFIX`: prefix of exchange and queue names (empty in production).
    pub bus_prefix: String,
    /// `ADMIN_ADDR`: where `/livez`, `/readyz` and `/metrics` listen (default 127.0.0.1:0, a free port).
    pub admin_addr: SocketAddr,
    /// `PREFETCH`: messages handled at once (1-10, default 2).
    pub prefetch: u16,
    /// `DB_POOL_SIZE` (default 8).
    pub pool_size: u32,
    /// `SPAPI_RATE_SCALE`: multiplies Amazon's documented rates (only for a simulator run with
    /// `--rate-scale`; default 1).
    pub spapi_rate_scale: f64,
}

/// The environment every service reads (`<service> --help` lists it, with the service's own
/// settings read through [`env_in_range`]); `scripts/image-test` checks the manifests in
/// `deploy/` against this list as the image prints it.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "PostgreSQL, postgres://user:password@host:port/database",
    ),
    ("AMQP_URL", "RabbitMQ, amqp://user:password@host:port/vhost"),
    (
        "BUS_PREFIX",
        "prefix of exchange and queue names (empty in production)",
    ),
    (
        "CONNECTOR_ENCRYPTION_KEYS",
        "the keyring, version:base64-key[,version:base64-key...]",
    ),
    (
        "CONNECTOR_ENCRYPTION_KEYS_FILE",
        "a file holding the keyring instead (read by the image's entrypoint)",
    ),
    (
        "ADMIN_ADDR",
        "where /livez, /readyz and /metrics listen (host:port)",
    ),
    ("PREFETCH", "messages handled at once, 1-10 (default 2)"),
    ("DB_POOL_SIZE", "database connections (default 8)"),
    (
        "SPAPI_RATE_SCALE",
        "multiplies Amazon's rates, only against a simulator (default 1)",
    ),
    (
        MAX_LIMITER_WAIT_VAR,
        "longest wait for Amazon's rate limit before a continuation, ms (default 1000)",
    ),
    ("LOG_FORMAT", "json or text"),
    ("RUST_LOG", "log filter, e.g. info,sqlx=warn"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP endpoint for traces (unset: no export)",
    ),
];

/// Settings a service read through [`env_in_range`] (listed by `--help`).
static OWN_SETTINGS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// What the service's command line asks for: `--help`/`-h` prints the service and the
/// environment it reads, `--version`/`-V` its version; a service takes no other argument (its
/// configuration is the environment), so anything else is a usage error (exit 64).
///
/// Only when the process is the service's own program (its file name is the service's: the
/// binary, or the image's link to the multi-call binary); a program that runs a service inside
/// itself (the benchmark) has a command line of its own.
fn command_line(service: &str) -> Option<i32> {
    let mut all = std::env::args();
    let me = all.next().unwrap_or_default();
    let name = std::path::Path::new(&me)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name != service {
        return None;
    }
    let args: Vec<String> = all.collect();
    match args.first().map(String::as_str) {
        None => None,
        Some("--help" | "-h") => {
            use std::io::Write as _;
            // Written, not printed: `order-ingest --help | head` must not panic on a closed pipe.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{service}: a service of the Amazon connector; it consumes its RabbitMQ queue until SIGTERM.\nusage: {service} (configured by the environment only)\n\nenvironment:"
            );
            let own = OWN_SETTINGS.lock().map(|v| v.clone()).unwrap_or_default();
            for (name, what) in ENVIRONMENT
                .iter()
                .map(|(n, w)| (n.to_string(), w.to_string()))
                .chain(own)
            {
                let _ = writeln!(out, "  {name:<32} {what}");
            }
            Some(0)
        }
        Some("--version" | "-V") => {
            println!("{service} {}", env!("CARGO_PKG_VERSION"));
            Some(0)
        }
        Some(other) => {
            eprintln!(
                "{service}: unexpected argument {other:?}: a service takes no arguments (its configuration is the environment); see {service} --help"
            );
            Some(64)
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T, valid: &str) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid: expected {valid}")),
    }
}

/// A whole number from the environment variable `name` within `range` (`default` when unset or
/// empty), for a service's own settings; the error names the variable and what is valid.
pub fn env_in_range(
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    if let Ok(mut own) = OWN_SETTINGS.lock() {
        own.push((
            name.to_owned(),
            format!("{}-{} (default {default})", range.start(), range.end()),
        ));
    }
    in_range(name, var(name), default, range)
}

/// Environment variable of the delay before the first result poll of a submitted feed, in
/// seconds (shipment-feedback, inventory-sync).
pub const FIRST_POLL_VAR: &str = "FEED_FIRST_POLL_SECONDS";

/// The first result poll of a submitted feed: `FEED_FIRST_POLL_SECONDS` (1-3600) when set, else
/// `default`. Amazon takes minutes to process a feed, a simulator seconds.
pub fn first_poll_delay(default: chrono::Duration) -> anyhow::Result<chrono::Duration> {
    let seconds = env_in_range(FIRST_POLL_VAR, default.num_seconds() as u64, 1..=3600)?;
    Ok(chrono::Duration::seconds(seconds as i64))
}

fn in_range(
    name: &str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    let valid = format!("a whole number from {} to {}", range.start(), range.end());
    let value: u64 = match raw {
        None => default,
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid: expected {valid}"))?,
    };
    if !range.contains(&value) {
        bail!("{name}={value} is not valid: expected {valid}");
    }
    Ok(value)
}

impl Config {
    /// Reads and validates the environment; every error names the variable and what is valid.
    pub fn from_env() -> anyhow::Result<Self> {
        let database_url =
            var("DATABASE_URL").unwrap_or_else(|| store::DEFAULT_DATABASE_URL.to_owned());
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            bail!("DATABASE_URL must be a postgres:// URL");
        }
        let amqp_url = var("AMQP_URL").unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned());
        if !amqp_url.starts_with("amqp://") && !amqp_url.starts_with("amqps://") {
            bail!("AMQP_URL must be an amqp:// or amqps:// URL");
        }
        let prefetch: u16 = parsed("PREFETCH", 2, "a number from 1 to 10")?;
        if !(1..=10).contains(&prefetch) {
            bail!("PREFETCH={prefetch} is not valid: expected a number from 1 to 10");
        }
        let spapi_rate_scale: f64 = parsed("SPAPI_RATE_SCALE", 1.0, "a positive number")?;
        if !(spapi_rate_scale.is_finite() && spapi_rate_scale > 0.0) {
            bail!("SPAPI_RATE_SCALE={spapi_rate_scale} is not valid: expected a positive number");
        }
        Ok(Self {
            database_url,
            amqp_url,
            bus_prefix: var("BUS_PREFIX").unwrap_or_default(),
            admin_addr: parsed(
                "ADMIN_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 0)),
                "host:port, e.g. 0.0.0.0:9000",
            )?,
            prefetch,
            pool_size: parsed("DB_POOL_SIZE", 8, "a number of connections")?,
            spapi_rate_scale,
        })
    }

    /// The bus topology for this configuration.
    pub fn topology(&self) -> bus::Topology {
        bus::Topology::new(self.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT)
    }
}

/// What a handler gets from the runtime.
#[derive(Clone)]
pub struct Ctx {
    pub pool: PgPool,
    pub keys: crypto::Keyring,
    pub config: Config,
    pub topology: bus::Topology,
}

/// Health state shared with the admin server.
#[derive(Debug, Default)]
pub struct Health {
    heartbeat_unix: AtomicI64,
    consuming: AtomicBool,
}

impl Health {
    fn beat(&self) {
        self.heartbeat_unix.store(unix_now(), Ordering::Relaxed);
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct AdminState {
    health: Arc<Health>,
    pool: PgPool,
    /// The current connection (replaced when the service connects afresh).
    amqp: std::sync::RwLock<Arc<bus::lapin::Connection>>,
    topology: bus::Topology,
    service: &'static str,
}

/// See its use in [`serve`].
struct CloseOnDrop {
    cancel: CancellationToken,
    admin: Arc<AdminState>,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.cancel.cancel();
        let conn = self.admin.amqp();
        if conn.status().connected()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), bus::close(&conn)).await;
            });
        }
    }
}

impl AdminState {
    fn amqp(&self) -> Arc<bus::lapin::Connection> {
        self.amqp.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn livez(State(s): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    // Alive while the main loop beats; deliberately independent of the broker and database.
    if unix_now() - s.health.heartbeat_unix.load(Ordering::Relaxed) < 30 {
        (StatusCode::OK, "alive")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "main loop stalled")
    }
}

async fn readyz(State(s): State<Arc<AdminState>>) -> (StatusCode, String) {
    let db = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&s.pool)
        .await
        .is_ok();
    let broker = s.amqp().status().connected();
    let consumer = s.health.consuming.load(Ordering::Relaxed);
    let ok = db && broker && consumer;
    let body = format!("database={db} broker={broker} consumer={consumer}");
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body,
    )
}

async fn metrics(
    State(s): State<Arc<AdminState>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let amqp = s.amqp();
    let body = metrics::render(&metrics::Sources {
        pool: &s.pool,
        amqp: &amqp,
        topology: &s.topology,
        service: s.service,
        consuming: s.health.consuming.load(Ordering::Relaxed),
    })
    .await;
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        body,
    )
}

/// Runs a service until SIGTERM/SIGINT: `service` is its name and queue, `event_keys` the events
/// it also consumes, `make_handler` builds its handler from the context.
pub async fn run<H, F>(
    service: &'static str,
    event_keys: &[&str],
    make_handler: F,
) -> anyhow::Result<()>
where
    H: bus::Handler,
    F: FnOnce(Ctx) -> H,
{
    if let Some(code) = command_line(service) {
        std::process::exit(code);
    }
    let _guard = telemetry::init(service)?;
    let config = Config::from_env()?;
    // Validated at start-up like the rest of the configuration (read by `Ctx::spapi_client`).
    max_limiter_wait()?;
    let keys = crypto::Keyring::from_env()?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            bus::shutdown_signal().await;
            tracing::info!("shutdown requested: finishing in-flight work");
            // Paging runs hand over after the step in hand (job::request_shutdown).
            job::request_shutdown();
            cancel.cancel();
        });
    }
    serve(service, event_keys, config, keys, cancel, make_handler).await
}

/// [`run`] without telemetry set-up and signal handling, with explicit configuration (tests,
/// the demo): stops when `cancel` fires.
pub async fn serve<H, F>(
    service: &'static str,
    event_keys: &[&str],
    config: Config,
    keys: crypto::Keyring,
    cancel: CancellationToken,
    make_handler: F,
) -> anyhow::Result<()>
where
    H: bus::Handler,
    F: FnOnce(Ctx) -> H,
{
    let pool = store::connect(&config.database_url, config.pool_size)
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
    let connection_name = format!("{service}@{}", std::process::id());
    // A broker that is down or unreachable at start is waited for (not readiness), as one lost
    // later is: the service does not die because RabbitMQ restarts at the same time.
    let Some(amqp) = connect_until_cancelled(&config.amqp_url, &connection_name, &cancel).await
    else {
        pool.close().await;
        return Ok(());
    };
    let topology = config.topology();

    let health = Arc::new(Health::default());
    health.beat();
    let admin = Arc::new(AdminState {
        health: health.clone(),
        pool: pool.clone(),
        amqp: std::sync::RwLock::new(amqp.clone()),
        topology: topology.clone(),
        service,
    });
    // Dropped without finishing (its task aborted, a panic): stop the tasks spawned below and
    // close the broker connection, so that the broker hands unacknowledged deliveries to
    // another consumer at once, as it does when a process dies.
    let _closer = CloseOnDrop {
        cancel: cancel.clone(),
        admin: admin.clone(),
    };
    let app = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(admin.clone());
    let listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("cannot listen on ADMIN_ADDR {}", config.admin_addr))?;
    tracing::info!(service, admin = %listener.local_addr()?, "service starting");
    let admin_task = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
        })
    };
    let heartbeat = {
        let (health, cancel) = (health.clone(), cancel.clone());
        tokio::spawn(async move {
            while !cancel.is_cancelled() {
                health.beat();
                tokio::select! { () = cancel.cancelled() => {}, () = tokio::time::sleep(Duration::from_secs(5)) => {} }
            }
        })
    };

    let ctx = Ctx {
        pool: pool.clone(),
        keys,
        config: config.clone(),
        topology: topology.clone(),
    };
    let handler = Arc::new(make_handler(ctx));
    let options = bus::ConsumeOptions {
        prefetch: config.prefetch,
        ..bus::ConsumeOptions::default()
    };
    // One connection at a time. lapin recovers a connection by itself; when that recovery does
    // not come back (the consumer gives up after `bus::MAX_DOWN`), the service connects afresh
    // instead of staying alive without consuming.
    let mut amqp = amqp;
    let result = loop {
        let setup = tokio::time::timeout(BROKER_SETUP_TIMEOUT, async {
            let channel = amqp.create_channel().await?;
            let queue = topology
                .declare_service(&channel, service, event_keys)
                .await?;
            let _ = channel.close(200, "OK".into()).await;
            let publisher = bus::Publisher::new(amqp.clone()).await?;
            Ok::<_, bus::BusError>((queue, publisher))
        });
        // A stop asked for while the broker does not answer the set-up (a link cut at that
        // moment) is not kept waiting for the set-up's timeout.
        let session = tokio::select! {
            r = setup => r.unwrap_or(Err(bus::BusError::BrokerTimeout {
                what: "declaring the service's queues",
                after: BROKER_SETUP_TIMEOUT,
            })),
            () = cancel.cancelled() => break Ok(()),
        };
        let outcome = match session {
            Err(e) => Err(e),
            Ok((queue, publisher)) => {
                let relay_cancel = cancel.child_token();
                let relay = {
                    let relay = bus::Relay::new(pool.clone(), publisher);
                    let relay_cancel = relay_cancel.clone();
                    tokio::spawn(async move {
                        if let Err(e) = relay.run(relay_cancel).await {
                            tracing::error!(error = %e, "outbox relay stopped");
                        }
                    })
                };
                health.consuming.store(true, Ordering::Relaxed);
                let consumed = bus::consume_with(
                    &amqp,
                    &queue,
                    service,
                    handler.clone(),
                    options,
                    cancel.clone(),
                )
                .await;
                health.consuming.store(false, Ordering::Relaxed);
                relay_cancel.cancel();
                // A relay stuck in a publish on a dead connection does not see its
                // cancellation: give it a moment, then abort it (its claimed rows are taken
                // over when their claim expires).
                let mut relay = relay;
                if tokio::time::timeout(Duration::from_secs(5), &mut relay)
                    .await
                    .is_err()
                {
                    relay.abort();
                }
                consumed
            }
        };
        match outcome {
            Ok(()) => break Ok(()),
            Err(_) if cancel.is_cancelled() => break Ok(()),
            Err(e) => {
                tracing::error!(service, error = %e, "lost the broker; connecting afresh");
                let _ = tokio::time::timeout(Duration::from_secs(5), bus::close(&amqp)).await;
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                match connect_until_cancelled(&config.amqp_url, &connection_name, &cancel).await {
                    None => break Ok(()),
                    Some(c) => {
                        amqp = c;
                        *admin.amqp.write().unwrap_or_else(|p| p.into_inner()) = amqp.clone();
                    }
                }
            }
        }
    };
    cancel.cancel();
    let _ = tokio::join!(heartbeat, admin_task);
    let _ = tokio::time::timeout(Duration::from_secs(5), bus::close(&amqp)).await;
    pool.close().await;
    tracing::info!(service, "stopped");
    result
}

/// Connects to RabbitMQ, trying again every second (each attempt bounded by
/// [`BROKER_SETUP_TIMEOUT`]) until it succeeds or `cancel` fires (`None`).
async fn connect_until_cancelled(
    amqp_url: &str,
    connection_name: &str,
    cancel: &CancellationToken,
) -> Option<Arc<bus::lapin::Connection>> {
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        match tokio::time::timeout(
            BROKER_SETUP_TIMEOUT,
            bus::connect(amqp_url, connection_name),
        )
        .await
        {
            Ok(Ok(c)) => return Some(c),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot connect to RabbitMQ yet"),
            Err(_) => tracing::warn!("RabbitMQ did not answer the connection in time"),
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The outbox message that resumes `run_id` of `action` at `at`: a `Continue` command on the
/// action's own queue. Runs that wait (for Amazon's quota, or for a dead holder's lease) write it
/// in the transaction that stores their cursor, then release the message they were handling.
pub fn continuation(
    topology: &bus::Topology,
    action: domain::messages::Action,
    shop_id: uuid::Uuid,
    run_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> bus::OutboxMessage {
    use domain::messages::{Command, CommandParams};
    let cmd = Command::new(
        shop_id,
        action,
        CommandParams::Continue { run_id },
        "system",
        chrono::Utc::now(),
    );
    bus::OutboxMessage::command(topology, &cmd).not_before(at)
}

#[cfg(test)]
mod tests {
    use super::in_range;

    #[test]
    fn in_range_defaults_validates_and_names_the_variable() {
        assert_eq!(in_range("PAGE", None, 7, 1..=10).unwrap(), 7);
        assert_eq!(in_range("PAGE", Some("9".into()), 7, 1..=10).unwrap(), 9);
        let err = in_range("PAGE", Some("11".into()), 7, 1..=10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PAGE=11") && err.contains("from 1 to 10"),
            "{err}"
        );
        let err = in_range("PAGE", Some("many".into()), 7, 1..=10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PAGE=\"many\"") && err.contains("whole number"),
            "{err}"
        );
    }
}
