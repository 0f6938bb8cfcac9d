//! Shared set-up: a shop pointed at an embedded simulator, a unique bus prefix, runtime
//! configuration, queue clean-up, and a tracing subscriber that keeps every finished span.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bus::Topology;
use chrono::Utc;
use domain::{
    messages::{Action, Command, CommandParams},
    window::ImportMode,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SdkTracerProvider, SpanData, SpanProcessor},
};
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};
use uuid::Uuid;

pub const SHOP_CODE: &str = "acme-jp";

/// `crypto::Keyring::for_testing()` as `CONNECTOR_ENCRYPTION_KEYS` (32 bytes of 7s).
pub const TEST_KEYS_ENV: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub const JP_ONLY: MarketplaceMix = MarketplaceMix {
    jp: 1,
    au: 0,
    sg: 0,
    pending_ratio: 0.4,
};

pub use service_testkit::{amqp_url, database_url};

/// A bus prefix no other test uses.
pub fn unique_prefix(tag: &str) -> String {
    format!("obs-{tag}.{}.", &Uuid::now_v7().simple().to_string()[20..])
}

/// A free local port (bound then released) for `ADMIN_ADDR`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn config(pool: &PgPool, prefix: &str, admin_port: u16, rate_scale: f64) -> runtime::Config {
    runtime::Config {
        database_url: database_url(pool),
        amqp_url: amqp_url(),
        bus_prefix: prefix.to_owned(),
        admin_addr: ([127, 0, 0, 1], admin_port).into(),
        prefetch: 2,
        pool_size: 4,
        spapi_rate_scale: rate_scale,
    }
}

/// Inserts the shop (credentials encrypted with `Keyring::for_testing()`) pointed at `sim`,
/// with the simulator's 40 catalog SKUs mapped to products.
pub async fn insert_shop(pool: &PgPool, sim_base_url: &str) -> Uuid {
    service_testkit::seed_shop(pool, SHOP_CODE, sim_base_url, &[]).await
}

/// A differential order-ingest trigger.
pub fn ingest_trigger(shop_id: Uuid) -> Command {
    Command::new(
        shop_id,
        Action::OrderIngest,
        CommandParams::OrderIngest {
            mode: ImportMode::Differential,
        },
        "test",
        Utc::now(),
    )
}

/// Writes `cmd` to the outbox (the relay of a running service publishes it); the current
/// span's trace context goes into its `traceparent` header.
pub async fn enqueue(pool: &PgPool, topology: &Topology, cmd: &Command) {
    let msg = bus::OutboxMessage::command(topology, cmd);
    let mut conn = pool.acquire().await.unwrap();
    bus::outbox::enqueue(&mut conn, msg).await.unwrap();
}

/// Messages in `queue` (ready ones; a closed consumer's unacknowledged ones come back as ready).
pub async fn queue_depth(amqp: &bus::lapin::Connection, queue: &str) -> u32 {
    let ch = amqp.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue.into(),
            bus::lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            bus::lapin::types::FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
    let _ = ch.close(200, "OK".into()).await;
    q.message_count()
}

/// Deletes the services' queues (and DLQs) and the exchanges of `topology`, over a fresh
/// connection (the test's own may have died with a broker restart).
pub async fn cleanup(topology: &Topology, services: &[&str]) {
    let Ok(conn) = bus::connect(&amqp_url(), "obs test cleanup").await else {
        eprintln!(
            "cleanup: RabbitMQ unreachable; {} queues left",
            topology.prefix
        );
        return;
    };
    if let Ok(ch) = conn.create_channel().await {
        for s in services {
            let _ = topology.delete_service(&ch, s).await;
        }
        let _ = topology.delete_exchanges(&ch).await;
    }
    let _ = bus::close(&conn).await;
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Finished spans, kept in memory.
#[derive(Debug, Default, Clone)]
pub struct Captured(Arc<Mutex<Vec<SpanData>>>);

impl Captured {
    pub fn spans(&self) -> Vec<SpanData> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct CaptureProcessor(Captured);

impl SpanProcessor for CaptureProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.0.lock().unwrap().push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Like `telemetry::init_for_test` (W3C propagator, spans with OpenTelemetry ids, logs to the
/// test output when `TEST_LOG` is set), plus a processor that keeps every finished span.
/// Installed once per process; returns the shared capture.
pub fn init_tracing_with_capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let provider = SdkTracerProvider::builder()
                .with_span_processor(CaptureProcessor(captured.clone()))
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
            let logs = std::env::var_os("TEST_LOG").map(|_| {
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::new("debug"))
            });
            tracing_subscriber::registry()
                .with(EnvFilter::new(
                    "info,sqlx=warn,lapin=warn,h2=warn,hyper=warn,reqwest=warn",
                ))
                .with(otel)
                .with(logs)
                .try_init()
                .expect("no other subscriber in this test binary");
            captured
        })
        .clone()
}

use tracing_subscriber::Layer as _;
