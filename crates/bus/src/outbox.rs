//! Transactional outbox: write messages in the caller's transaction, relay them with confirms.
//!
//! Writers call [`enqueue`] inside the transaction that changes business state; the message
//! exists if and only if that transaction commits. The [`Relay`] claims due rows with
//! `FOR UPDATE SKIP LOCKED` in a short statement that sets a lease (`claimed_until`), publishes
//! each row outside any database transaction with confirms and `mandatory`, and marks `sent_at`
//! only after a clean `basic.ack`. On failure it records `attempts` and `last_error` and moves
//! `not_before` forward. Rows are never deleted by the relay (see [`purge_sent`]).
//!
//! Delivery is at least once: a relay that dies after the confirm and before marking the row
//! republishes it once the lease expires. Consumers deduplicate: the services on the command's
//! id through the run ledger (`runtime::job`), feed-poller through its atomic claim of due feeds.
//! There is no ordering guarantee between rows (they are published concurrently, and retries
//! overtake); a consumer that needs order must check versions or timestamps itself.
//!
//! A row whose exchange or routing key has no bound queue (NO_ROUTE) is never marked sent; it is
//! retried with exponential back-off (up to [`RelayConfig::retry_max`]) and `last_error` says
//! why. Every event key that is published therefore needs at least one bound queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::headers::{self, Headers};
use crate::{BusError, OutgoingMessage, PublishError, Publisher};

/// `NOTIFY` channel the relay listens on; [`enqueue`] notifies it (delivered at commit).
pub const NOTIFY_CHANNEL: &str = "bus_outbox";

/// A message to write to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Row id and AMQP `message_id`: a UUID v7 ([`Uuid::now_v7`]).
    pub id: Uuid,
    /// Exchange to publish to (see [`crate::Topology`]).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// JSON body.
    pub payload: serde_json::Value,
    /// Extra headers; [`enqueue`] adds the current `traceparent`.
    pub headers: Headers,
    /// Do not publish before this time (`None` = as soon as committed).
    pub not_before: Option<DateTime<Utc>>,
}

impl OutboxMessage {
    /// A message with a fresh UUID v7 id, no extra headers, due immediately.
    pub fn new(
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            payload,
            headers: Headers::new(),
            not_before: None,
        }
    }

    /// A command for its service's queue: the commands exchange of `topology`, the action as
    /// routing key, the command as body, and the command's own `message_id` as id (the id the
    /// relay publishes and consumers deduplicate on). The one way a command becomes an
    /// outbox message (ctl, console, continuations and retries alike).
    ///
    /// Infallible: a `Command` is plain data (ids, strings, enums, times, no maps), which
    /// always serializes to JSON.
    pub fn command(topology: &crate::Topology, cmd: &domain::messages::Command) -> Self {
        let payload = serde_json::to_value(cmd)
            .unwrap_or_else(|e| unreachable!("a command always serializes to JSON: {e}"));
        let mut msg = Self::new(topology.commands_exchange(), cmd.action.as_str(), payload);
        msg.id = cmd.message_id;
        msg
    }

    /// The same message, due at `not_before`.
    #[must_use]
    pub fn not_before(mut self, not_before: DateTime<Utc>) -> Self {
        self.not_before = Some(not_before);
        self
    }
}

/// Writes `msg` to the outbox on `conn`, which should be the caller's open transaction so the
/// message commits or rolls back together with the business change. Captures the current span's
/// trace context into the headers and notifies the relay (the notification is delivered at
/// commit).
pub async fn enqueue(conn: &mut PgConnection, msg: OutboxMessage) -> Result<(), sqlx::Error> {
    enqueue_many(conn, vec![msg]).await
}

/// [`enqueue`] for many messages: one insert and one notification whatever their count.
pub async fn enqueue_many(
    conn: &mut PgConnection,
    msgs: Vec<OutboxMessage>,
) -> Result<(), sqlx::Error> {
    if msgs.is_empty() {
        return Ok(());
    }
    let n = msgs.len();
    let (mut ids, mut exchanges, mut keys, mut payloads, mut all_headers, mut not_before) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for msg in msgs {
        let mut headers = msg.headers;
        headers::inject_current_context(&mut headers);
        ids.push(msg.id);
        exchanges.push(msg.exchange);
        keys.push(msg.routing_key);
        payloads.push(msg.payload);
        all_headers.push(serde_json::Value::Object(headers));
        not_before.push(msg.not_before);
    }
    sqlx::query!(
        r#"
        INSERT INTO outbox (id, exchange, routing_key, payload, headers, not_before)
        SELECT id, ex, rk, p, h, COALESCE(nb, now())
          FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::timestamptz[])
            AS t(id, ex, rk, p, h, nb)
        "#,
        &ids,
        &exchanges,
        &keys,
        &payloads,
        &all_headers,
        &not_before as &[Option<DateTime<Utc>>],
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes rows sent before `sent_before`. Returns how many were deleted.
pub async fn purge_sent(
    conn: &mut PgConnection,
    sent_before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1",
        sent_before
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Tuning of the [`Relay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Rows claimed per round.
    pub batch_size: i64,
    /// Sleep between rounds when nothing was due (a `NOTIFY` wakes the relay earlier).
    pub poll_interval: Duration,
    /// Lease on claimed rows; another relay may take them over after it expires.
    /// Keep it well above the publisher's confirm timeout.
    pub claim_ttl: Duration,
    /// First back-off after a message-level failure (NO_ROUTE, nack, 404); doubles per attempt.
    pub retry_base: Duration,
    /// Upper bound of the back-off.
    pub retry_max: Duration,
    /// Delay after a transport failure (broker unreachable); these do not back off
    /// exponentially because they are not the message's fault.
    pub transport_retry: Duration,
    /// How long [`Relay::run`] waits for the broker to come back after a transport failure
    /// before trying another round anyway.
    pub recovery_wait: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            claim_ttl: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            transport_retry: Duration::from_millis(500),
            recovery_wait: Duration::from_secs(30),
        }
    }
}

/// What one [`Relay::relay_once`] round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows published and marked sent.
    pub sent: usize,
    /// Rows that failed and were rescheduled.
    pub failed: usize,
    /// Of the failed rows, those that failed because the broker was unreachable.
    pub transport_failed: usize,
}

/// Publishes outbox rows. Run one or more per deployment; rows are claimed with
/// `SKIP LOCKED` and a lease, so relays do not step on each other.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    publisher: Publisher,
    config: RelayConfig,
}

struct Claimed {
    id: Uuid,
    exchange: String,
    routing_key: String,
    payload: serde_json::Value,
    headers: serde_json::Value,
    attempts: i32,
}

impl Relay {
    /// A relay with the default [`RelayConfig`].
    #[must_use]
    pub fn new(pool: PgPool, publisher: Publisher) -> Self {
        Self::with_config(pool, publisher, RelayConfig::default())
    }

    /// A relay with the given configuration.
    #[must_use]
    pub fn with_config(pool: PgPool, publisher: Publisher, config: RelayConfig) -> Self {
        Self {
            pool,
            publisher,
            config,
        }
    }

    /// Claims one batch of due rows, publishes them (up to the publisher's channel count at a
    /// time), marks the confirmed ones sent and reschedules the others.
    pub async fn relay_once(&self) -> Result<RelayStats, BusError> {
        let claimed = self.claim().await?;
        let mut stats = RelayStats {
            claimed: claimed.len(),
            ..RelayStats::default()
        };
        if claimed.is_empty() {
            return Ok(stats);
        }

        let results: Vec<(Uuid, i32, Result<(), PublishError>)> =
            futures_util::stream::iter(claimed)
                .map(|row| async move {
                    let result = self.publish_row(&row).await;
                    (row.id, row.attempts, result)
                })
                .buffer_unordered(self.publisher.channels())
                .collect()
                .await;

        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for (id, attempts, result) in results {
            match result {
                Ok(()) => sent.push(id),
                Err(err) => failed.push((id, attempts, err)),
            }
        }
        // Mark the confirmed rows first: they must not be published again needlessly.
        if !sent.is_empty() {
            let marked = sqlx::query!(
                "UPDATE outbox SET sent_at = now(), claimed_until = NULL WHERE id = ANY($1) AND sent_at IS NULL",
                &sent
            )
            .execute(&self.pool)
            .await?;
            stats.sent = usize::try_from(marked.rows_affected()).unwrap_or(usize::MAX);
        }
        let mut db_error = None;
        for (id, attempts, err) in failed {
            stats.failed += 1;
            let delay = if err.is_transport() {
                stats.transport_failed += 1;
                self.config.transport_retry
            } else {
                self.backoff(attempts)
            };
            tracing::warn!(message_id = %id, attempts = attempts + 1, ?delay, error = %err, "outbox publish failed");
            // If this fails too, the lease expires and the row is claimed again: nothing is lost.
            if let Err(err) = self.reschedule(id, &err.to_string(), delay).await {
                db_error = Some(err);
            }
        }
        if let Some(err) = db_error {
            return Err(err);
        }
        tracing::debug!(?stats, "outbox relay round");
        Ok(stats)
    }

    /// Relays until `cancel` fires: a round immediately after a full batch, otherwise after a
    /// `NOTIFY` on [`NOTIFY_CHANNEL`] or `poll_interval`, whichever comes first (polling is the
    /// correctness path; notifications only cut latency). Database errors are logged and retried;
    /// the round in progress finishes before returning.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), BusError> {
        let mut listener = self.listen().await;
        tracing::info!(notify = listener.is_some(), "outbox relay started");
        while !cancel.is_cancelled() {
            let full = match self.relay_once().await {
                Ok(stats) if stats.transport_failed > 0 => {
                    tracing::warn!("broker unreachable, relay waiting for recovery");
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        ready = self.publisher.wait_until_ready(self.config.recovery_wait) => {
                            if !ready {
                                tracing::warn!(wait = ?self.config.recovery_wait, "publisher still not ready");
                            }
                        }
                    }
                    continue;
                }
                Ok(stats) => {
                    i64::try_from(stats.claimed).unwrap_or(i64::MAX) >= self.config.batch_size
                }
                Err(err) => {
                    tracing::error!(error = %err, "outbox relay round failed");
                    false
                }
            };
            if full {
                continue;
            }
            let wait = async {
                match listener.as_mut() {
                    Some(l) => match l.recv().await {
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "outbox LISTEN failed; polling only");
                            listener = None;
                            tokio::time::sleep(self.config.poll_interval).await;
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = wait => {}
            }
        }
        tracing::info!("outbox relay stopped");
        Ok(())
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for outbox notifications; polling only");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for outbox notifications; polling only");
                None
            }
        }
    }

    async fn claim(&self) -> Result<Vec<Claimed>, BusError> {
        let rows = sqlx::query_as!(
            Claimed,
            r#"
            UPDATE outbox o
               SET claimed_until = now() + make_interval(secs => $2)
              FROM (SELECT id FROM outbox
                     WHERE sent_at IS NULL
                       AND not_before <= now()
                       AND (claimed_until IS NULL OR claimed_until < now())
                     ORDER BY not_before, id
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED) due
             WHERE o.id = due.id
            RETURNING o.id, o.exchange, o.routing_key, o.payload, o.headers, o.attempts
            "#,
            self.config.batch_size,
            self.config.claim_ttl.as_secs_f64(),
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn publish_row(&self, row: &Claimed) -> Result<(), PublishError> {
        let headers = match &row.headers {
            serde_json::Value::Object(map) => map.clone(),
            _ => Headers::new(),
        };
        let msg = OutgoingMessage {
            message_id: row.id,
            exchange: row.exchange.clone(),
            routing_key: row.routing_key.clone(),
            payload: row.payload.clone(),
            headers,
        };
        let span = tracing::info_span!("outbox.publish", message_id = %row.id, exchange = %row.exchange, routing_key = %row.routing_key);
        if msg.headers.contains_key(headers::TRACEPARENT) {
            // Continue the trace of the transaction that wrote the row.
            let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(
                &span,
                headers::extract_context(&msg.headers),
            );
        }
        tracing::Instrument::instrument(self.publisher.publish(&msg), span).await
    }

    async fn reschedule(&self, id: Uuid, error: &str, delay: Duration) -> Result<(), BusError> {
        sqlx::query!(
            r#"
            UPDATE outbox
               SET attempts = attempts + 1,
                   last_error = $2,
                   not_before = now() + make_interval(secs => $3),
                   claimed_until = NULL
             WHERE id = $1 AND sent_at IS NULL
            "#,
            id,
            error,
            delay.as_secs_f64(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(0);
        self.config
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.config.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_goes_to_its_queue_under_its_own_id() {
        use domain::messages::{Action, Command, CommandParams};
        let cmd = Command::new(
            Uuid::now_v7(),
            Action::InventorySync,
            CommandParams::InventorySync { full: true },
            "alice",
            Utc::now(),
        );
        let topology = crate::Topology::new("t.", crate::DEFAULT_DELIVERY_LIMIT);
        let msg = OutboxMessage::command(&topology, &cmd);
        assert_eq!(msg.id, cmd.message_id);
        assert_eq!(msg.exchange, "t.commands");
        assert_eq!(msg.routing_key, "inventory-sync");
        assert_eq!(msg.not_before, None);
        let back: Command = serde_json::from_value(msg.payload).unwrap();
        assert_eq!(back.message_id, cmd.message_id);
    }

    #[test]
    fn default_config_keeps_lease_above_confirm_timeout() {
        let config = RelayConfig::default();
        assert!(config.claim_ttl > crate::publisher::DEFAULT_CONFIRM_TIMEOUT * 2);
    }
}
