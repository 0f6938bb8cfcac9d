//! The listener's admin server, on `ADMIN_ADDR` like the services' (deploy/ probes it there):
//! `/livez` (the receive loop is turning: a long poll takes at most 20 s), `/readyz` (database,
//! broker for its outbox relay, and the last SQS receive succeeded), `/metrics` (OpenMetrics:
//! notifications by outcome and receives by result since start-up, the time of the last good
//! receive).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use sqlx::PgPool;

/// The receive loop is stalled when it has not turned for this long (a long poll lasts up to
/// 20 s, handling a receive a few seconds more).
pub const STALLED_AFTER_SECONDS: i64 = 90;

/// What the receive loop reports, read by the admin server.
#[derive(Debug, Default)]
pub struct Stats {
    /// Unix seconds of the last turn of the loop (any result).
    pub beat: AtomicI64,
    /// Unix seconds of the last receive that succeeded.
    pub last_ok: AtomicI64,
    pub receives_ok: AtomicU64,
    pub receives_failed: AtomicU64,
    pub queued: AtomicU64,
    pub duplicates: AtomicU64,
    pub ignored: AtomicU64,
    pub poison: AtomicU64,
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().cast_signed())
}

impl Stats {
    pub(crate) fn polled(&self, p: &crate::Polled) {
        let now = unix_now();
        self.beat.store(now, Ordering::Relaxed);
        self.last_ok.store(now, Ordering::Relaxed);
        self.receives_ok.fetch_add(1, Ordering::Relaxed);
        for (counter, n) in [
            (&self.queued, p.queued),
            (&self.duplicates, p.duplicates),
            (&self.ignored, p.ignored),
            (&self.poison, p.poison),
        ] {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn failed(&self) {
        self.beat.store(unix_now(), Ordering::Relaxed);
        self.receives_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the admin server reads.
pub struct Admin {
    pub stats: Arc<Stats>,
    pub pool: PgPool,
    pub amqp: Arc<bus::lapin::Connection>,
}

/// The admin routes.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(admin)
}

async fn livez(State(a): State<Arc<Admin>>) -> (StatusCode, &'static str) {
    // Independent of SQS, the database and the broker: only a wedged loop restarts the pod.
    if unix_now() - a.stats.beat.load(Ordering::Relaxed) < STALLED_AFTER_SECONDS {
        (StatusCode::OK, "alive")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "receive loop stalled")
    }
}

async fn readyz(State(a): State<Arc<Admin>>) -> (StatusCode, String) {
    let db = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&a.pool)
        .await
        .is_ok();
    let broker = a.amqp.status().connected();
    let sqs = unix_now() - a.stats.last_ok.load(Ordering::Relaxed) < STALLED_AFTER_SECONDS;
    let body = format!("database={db} broker={broker} sqs={sqs}");
    let status = if db && broker && sqs {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

type Labels = Vec<(String, String)>;

/// The exposition of `stats` (OpenMetrics text).
pub fn render(stats: &Stats) -> String {
    let mut registry = Registry::default();
    let counters = |label: &str, values: &[(&str, &AtomicU64)]| {
        let family = Family::<Labels, Counter>::default();
        for (value, counter) in values {
            family
                .get_or_create(&vec![(label.to_owned(), (*value).to_owned())])
                .inc_by(counter.load(Ordering::Relaxed));
        }
        family
    };
    registry.register(
        "connector_notifications",
        "Notifications received from SQS since start-up, by what became of them",
        counters(
            "outcome",
            &[
                ("queued", &stats.queued),
                ("duplicate", &stats.duplicates),
                ("ignored", &stats.ignored),
                ("poison", &stats.poison),
            ],
        ),
    );
    registry.register(
        "connector_notification_receives",
        "SQS receives since start-up, by result",
        counters(
            "result",
            &[
                ("ok", &stats.receives_ok),
                ("failed", &stats.receives_failed),
            ],
        ),
    );
    let last_ok = Gauge::<i64>::default();
    last_ok.set(stats.last_ok.load(Ordering::Relaxed));
    registry.register(
        "connector_notification_last_receive_timestamp_seconds",
        "Unix time of the last SQS receive that succeeded",
        last_ok,
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

async fn metrics(
    State(a): State<Arc<Admin>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&a.stats),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_last_receive_are_exposed() {
        let stats = Stats::default();
        stats.polled(&crate::Polled {
            received: 4,
            queued: 2,
            duplicates: 1,
            ignored: 1,
            ..crate::Polled::default()
        });
        stats.failed();
        let text = render(&stats);
        assert!(
            text.contains(r#"connector_notifications_total{outcome="queued"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"connector_notifications_total{outcome="duplicate"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"connector_notification_receives_total{result="failed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("connector_notification_last_receive_timestamp_seconds "),
            "{text}"
        );
    }
}
