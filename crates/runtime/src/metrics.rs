//! `/metrics`: OpenMetrics text (the `prometheus-client` crate's encoder), computed at scrape time.
//!
//! * From the database (shared by every service, cheap queries over the last 24 hours of the
//!   run ledger and feeds), for this service's action only: runs by status, the counts of the
//!   runs (orders imported/updated, ...), Amazon calls by operation, feed messages by result;
//!   plus the outbox backlog (all services share one outbox).
//! * From the broker: this service's work queue and dead-letter queue depth (passive declare).
//! * From this process: SP-API calls by seller, operation and outcome, 429s, retries and time
//!   spent waiting in the shared rate limiter (`spapi::process_stats`, counters since start-up).
//!
//! The 24-hour values are gauges recomputed on every scrape; every replica of a service reports
//! the same database values, so dashboards take `max` over replicas for them and `sum` for the
//! per-process counters.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use sqlx::PgPool;
use std::sync::atomic::AtomicU64;

/// The window of the ledger-derived gauges.
pub const WINDOW: &str = "24 hours";

/// Count keys of `action_runs.counts` that are not item counts.
const NOT_ITEMS: [&str; 2] = ["duration_ms", "active_ms"];

/// What `/metrics` answers with (OpenMetrics text, as `prometheus_client` encodes it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// The labels of a sample, values escaped: the encoder writes label values as they are, and a
/// quote, backslash or newline (in a shop code or an operation name from the database) would
/// break the exposition.
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), escape(v)))
        .collect()
}

/// Escapes a label value (backslash, double quote, newline) as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One sample of a family: its labels and value.
trait Sample<V> {
    fn sample(&self, pairs: &[(&str, &str)], value: V);
}

impl Sample<i64> for Family<Labels, Gauge> {
    fn sample(&self, pairs: &[(&str, &str)], value: i64) {
        self.get_or_create(&labels(pairs)).set(value);
    }
}

impl Sample<f64> for Family<Labels, Gauge<f64, AtomicU64>> {
    fn sample(&self, pairs: &[(&str, &str)], value: f64) {
        self.get_or_create(&labels(pairs)).set(value);
    }
}

impl Sample<u64> for Family<Labels, Counter> {
    fn sample(&self, pairs: &[(&str, &str)], value: u64) {
        self.get_or_create(&labels(pairs)).inc_by(value);
    }
}

impl Sample<f64> for Family<Labels, Counter<f64, AtomicU64>> {
    fn sample(&self, pairs: &[(&str, &str)], value: f64) {
        self.get_or_create(&labels(pairs)).inc_by(value);
    }
}

/// The families of one scrape, registered as they are computed, encoded at the end.
#[derive(Default)]
struct Scrape {
    registry: Registry,
}

impl Scrape {
    /// A gauge family of whole numbers. `help` as a sentence (the encoder adds the full stop).
    fn gauge(&mut self, name: &str, help: &str) -> Family<Labels, Gauge> {
        let f = Family::<Labels, Gauge>::default();
        self.registry
            .register(name, help.trim_end_matches('.'), f.clone());
        f
    }

    fn gauge_f64(&mut self, name: &str, help: &str) -> Family<Labels, Gauge<f64, AtomicU64>> {
        let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        self.registry
            .register(name, help.trim_end_matches('.'), f.clone());
        f
    }

    /// A counter family; `name` without `_total`, which the encoder appends to the samples.
    fn counter(&mut self, name: &str, help: &str) -> Family<Labels, Counter> {
        let f = Family::<Labels, Counter>::default();
        self.registry
            .register(name, help.trim_end_matches('.'), f.clone());
        f
    }

    fn counter_f64(&mut self, name: &str, help: &str) -> Family<Labels, Counter<f64, AtomicU64>> {
        let f = Family::<Labels, Counter<f64, AtomicU64>>::default();
        self.registry
            .register(name, help.trim_end_matches('.'), f.clone());
        f
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// What the metrics of one service are computed from.
pub(crate) struct Sources<'a> {
    pub pool: &'a PgPool,
    pub amqp: &'a bus::lapin::Connection,
    pub topology: &'a bus::Topology,
    pub service: &'a str,
    pub consuming: bool,
}

/// Renders every metric. A source that fails is reported by `connector_scrape_error` and
/// left out; the rest is still served.
pub(crate) async fn render(s: &Sources<'_>) -> String {
    let mut out = Scrape::default();
    let svc = s.service;
    let mut errors: Vec<(&str, String)> = Vec::new();

    out.gauge(
        "connector_consuming",
        "1 while the service's consumer is running.",
    )
    .get_or_create(&labels(&[("service", svc)]))
    .set(i64::from(s.consuming));

    if let Err(e) = ledger(&mut out, s.pool, svc).await {
        errors.push(("ledger", e.to_string()));
    }
    if let Err(e) = feeds(&mut out, s.pool, svc).await {
        errors.push(("feeds", e.to_string()));
    }
    if let Err(e) = outbox(&mut out, s.pool, svc).await {
        errors.push(("outbox", e.to_string()));
    }
    queues(&mut out, s, &mut errors).await;
    amazon(&mut out, svc);

    let f = out.gauge(
        "connector_scrape_error",
        "1 for a metric source that could not be read during this scrape.",
    );
    for source in ["ledger", "feeds", "outbox", "broker"] {
        let failed = errors.iter().any(|(s, _)| *s == source);
        f.get_or_create(&labels(&[("service", svc), ("source", source)]))
            .set(i64::from(failed));
    }
    for (source, error) in &errors {
        tracing::warn!(source, %error, "metrics source failed");
    }
    out.encode()
}

async fn ledger(out: &mut Scrape, pool: &PgPool, action: &str) -> Result<(), sqlx::Error> {
    let runs: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT s.code, r.status, count(*)
           FROM action_runs r JOIN shops s ON s.id = r.shop_id
          WHERE r.action = $1 AND r.started_at > now() - $2::interval
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(action)
    .bind(WINDOW)
    .fetch_all(pool)
    .await?;
    let f = out.gauge(
        "connector_runs_24h",
        "Runs started in the last 24 hours, by action, shop and status.",
    );
    for (shop, status, n) in &runs {
        f.sample(
            &[("action", action), ("shop", shop), ("status", status)],
            *n,
        );
    }

    // Integer counts of the runs (order-ingest: new, updated, unchanged, failed, pages, ...).
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT s.code, c.key, sum(c.value::text::bigint)::bigint
           FROM action_runs r JOIN shops s ON s.id = r.shop_id,
                jsonb_each(CASE WHEN jsonb_typeof(r.counts) = 'object' THEN r.counts ELSE '{}'::jsonb END) c
          WHERE r.action = $1 AND r.started_at > now() - $2::interval
            AND jsonb_typeof(c.value) = 'number' AND c.value::text ~ '^-?[0-9]{1,18}$'
            AND c.key <> ALL($3)
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(action)
    .bind(WINDOW)
    .bind(NOT_ITEMS.as_slice())
    .fetch_all(pool)
    .await?;
    let f = out.gauge(
        "connector_orders_24h",
        "Orders of the runs started in the last 24 hours: imported (new instructions) and updated.",
    );
    for (shop, key, n) in &counts {
        let result = match key.as_str() {
            "new" => "imported",
            "updated" => "updated",
            _ => continue,
        };
        f.sample(
            &[("action", action), ("shop", shop), ("result", result)],
            *n,
        );
    }
    let f = out.gauge(
        "connector_run_counts_24h",
        "Sum of each integer count of the run ledger (action_runs.counts) over the runs started in the last 24 hours.",
    );
    for (shop, key, n) in &counts {
        f.sample(&[("action", action), ("shop", shop), ("count", key)], *n);
    }

    let calls: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT s.code, c.key, sum(c.value::text::bigint)::bigint
           FROM action_runs r JOIN shops s ON s.id = r.shop_id,
                jsonb_each(CASE WHEN jsonb_typeof(r.counts->'calls') = 'object' THEN r.counts->'calls' ELSE '{}'::jsonb END) c
          WHERE r.action = $1 AND r.started_at > now() - $2::interval
            AND c.value::text ~ '^[0-9]{1,18}$'
          GROUP BY 1, 2
         UNION ALL
         SELECT s.code, '*', sum(r.amazon_calls)::bigint
           FROM action_runs r JOIN shops s ON s.id = r.shop_id
          WHERE r.action = $1 AND r.started_at > now() - $2::interval
          GROUP BY 1
          ORDER BY 1, 2",
    )
    .bind(action)
    .bind(WINDOW)
    .fetch_all(pool)
    .await?;
    let f = out.gauge(
        "connector_run_amazon_calls_24h",
        "Amazon calls recorded by the runs started in the last 24 hours, by operation (operation=\"*\": all, from action_runs.amazon_calls).",
    );
    for (shop, op, n) in &calls {
        f.sample(&[("action", action), ("shop", shop), ("operation", op)], *n);
    }
    Ok(())
}

async fn feeds(out: &mut Scrape, pool: &PgPool, action: &str) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT s.code, fs.feed_type, fm.result, count(*)
           FROM feed_messages fm
           JOIN feed_submissions fs ON fs.id = fm.feed_submission_id
           JOIN shops s ON s.id = fs.shop_id
           JOIN action_runs r ON r.id = fs.run_id
          WHERE r.action = $1 AND fs.created_at > now() - $2::interval
          GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(action)
    .bind(WINDOW)
    .fetch_all(pool)
    .await?;
    let f = out.gauge(
        "connector_feed_messages_24h",
        "Feed messages sent in the last 24 hours by result (pending, success, warning, error); sent = the sum.",
    );
    for (shop, feed_type, result, n) in &rows {
        f.sample(
            &[
                ("action", action),
                ("shop", shop),
                ("feed_type", feed_type),
                ("result", result),
            ],
            *n,
        );
    }
    Ok(())
}

async fn outbox(out: &mut Scrape, pool: &PgPool, service: &str) -> Result<(), sqlx::Error> {
    let (due, scheduled, oldest): (i64, i64, f64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE not_before <= now()),
                count(*) FILTER (WHERE not_before > now()),
                coalesce(extract(epoch FROM now() - min(not_before) FILTER (WHERE not_before <= now())), 0)::float8
           FROM outbox WHERE sent_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    out.gauge(
        "connector_outbox_backlog",
        "Outbox rows due but not yet published (all services share the outbox).",
    )
    .sample(&[("service", service)], due);
    out.gauge(
        "connector_outbox_scheduled",
        "Outbox rows scheduled for later (continuations waiting for Amazon's quota).",
    )
    .sample(&[("service", service)], scheduled);
    out.gauge_f64(
        "connector_outbox_oldest_due_seconds",
        "Age of the oldest due, unpublished outbox row (0 when none).",
    )
    .sample(&[("service", service)], (oldest * 1000.0).round() / 1000.0);
    Ok(())
}

async fn queues(out: &mut Scrape, s: &Sources<'_>, errors: &mut Vec<(&str, String)>) {
    let work = s.topology.queue(s.service);
    let dlq = s.topology.dlq(s.service);
    let depth = |q: String| async move {
        // A passive declare that fails closes its channel: one channel per queue.
        let name = bus::lapin::types::ShortString::try_new(q.as_str())
            .map_err(|_| format!("queue name {q:?} is too long"))?;
        let channel = s.amqp.create_channel().await.map_err(|e| e.to_string())?;
        let result = channel
            .queue_declare(
                name,
                bus::lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                bus::lapin::types::FieldTable::default(),
            )
            .await;
        if channel.status().connected() {
            let _ = channel.close(200, "OK".into()).await;
        }
        result
            .map(|q| q.message_count())
            .map_err(|e| format!("{q}: {e}"))
    };
    let work_depth = depth(work.clone()).await;
    let dlq_depth = depth(dlq.clone()).await;
    let f = out.gauge(
        "connector_queue_messages",
        "Messages ready in the service's work queue (unacknowledged ones not counted).",
    );
    match &work_depth {
        Ok(n) => f.sample(&[("queue", &work)], i64::from(*n)),
        Err(e) => errors.push(("broker", e.clone())),
    }
    let f = out.gauge(
        "connector_dead_letter_messages",
        "Messages in the service's dead-letter queue (see docs/operations.md, dead letters).",
    );
    match &dlq_depth {
        Ok(n) => f.sample(&[("queue", &dlq)], i64::from(*n)),
        Err(e) => errors.push(("broker", e.clone())),
    }
}

fn amazon(out: &mut Scrape, service: &str) {
    let stats = spapi::process_stats();
    let f = out.counter(
        "connector_amazon_calls",
        "SP-API requests sent by this process (retries included), by seller, operation and outcome (ok, throttled = HTTP 429, error).",
    );
    for ((seller, op), s) in &stats {
        let ok = s.calls.saturating_sub(s.throttled + s.errors);
        for (outcome, n) in [("ok", ok), ("throttled", s.throttled), ("error", s.errors)] {
            f.sample(
                &[
                    ("service", service),
                    ("seller", seller),
                    ("operation", op),
                    ("outcome", outcome),
                ],
                n,
            );
        }
    }
    let f = out.counter(
        "connector_amazon_throttled",
        "SP-API responses with status 429 received by this process.",
    );
    for ((seller, op), s) in &stats {
        f.sample(
            &[("service", service), ("seller", seller), ("operation", op)],
            s.throttled,
        );
    }
    let f = out.counter(
        "connector_amazon_retries",
        "SP-API requests that were retries of an earlier attempt.",
    );
    for ((seller, op), s) in &stats {
        f.sample(
            &[("service", service), ("seller", seller), ("operation", op)],
            s.retries,
        );
    }
    let f = out.counter_f64(
        "connector_amazon_limiter_wait_seconds",
        "Time this process waited in the shared rate limiter before SP-API calls.",
    );
    for ((seller, op), s) in &stats {
        f.sample(
            &[("service", service), ("seller", seller), ("operation", op)],
            s.limiter_wait_ms as f64 / 1000.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label values with quotes, backslashes and newlines stay inside their quotes; counters
    /// keep the `_total` sample names the dashboards use; the text ends with `# EOF`.
    #[test]
    fn encoded_as_openmetrics_text() {
        let mut out = Scrape::default();
        out.gauge("m", "help.").sample(&[("l", "x\"y\\z\nw")], 3);
        out.counter("c", "calls").sample(&[("op", "a")], 2);
        out.counter_f64("w_seconds", "wait")
            .sample(&[("op", "a")], 1.5);
        let text = out.encode();
        assert!(text.contains("# HELP m help.\n# TYPE m gauge\n"), "{text}");
        assert!(text.contains("m{l=\"x\\\"y\\\\z\\nw\"} 3\n"), "{text}");
        assert!(
            text.contains("# TYPE c counter\nc_total{op=\"a\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("w_seconds_total{op=\"a\"} 1.5\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
