//! Inbox: the idempotent-consumer record of applied message ids.
//!
//! A consumer records `(consumer, message_id)` in the same transaction as its effect and
//! acknowledges the message only after that transaction commits. A redelivery (consumer died
//! before the ack, broker restart, the relay republishing after a crash) then finds the row and
//! is acknowledged without applying the effect again.
//!
//! Retired for the services: none of them wraps its handler in [`WithInbox`]. Their duplicates
//! are caught by one mechanism, the run ledger (`runtime::job`, `store::runs::lease_new_run`),
//! and feed-poller's by its atomic claim of due feeds. This module stays as a library piece for
//! consumers whose whole effect is one transaction (see the bus tests).

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{Handler, HandlerError, Incoming};

/// Records that `consumer` applies `message_id`, on `conn` (the effect's transaction).
/// Returns `true` the first time and `false` when the message was already recorded
/// (a duplicate: skip the effect, commit, acknowledge).
///
/// Concurrent deliveries of the same id serialize on the primary key: the second insert waits
/// for the first transaction and then reports a duplicate (or succeeds if the first rolled back).
pub async fn record(
    conn: &mut PgConnection,
    consumer: &str,
    message_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        message_id
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Deletes inbox rows received before `received_before`. Keep them longer than any message can
/// be redelivered or republished (days, not minutes). Returns how many were deleted.
pub async fn purge(
    conn: &mut PgConnection,
    received_before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM inbox WHERE received_at < $1", received_before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// A handler whose whole effect is a database change made in the transaction it is given.
///
/// Wrap it in [`WithInbox`] to get exactly-once effects: the inbox row and the effect commit
/// together, duplicates skip the effect, and the message is acknowledged after the commit.
/// Returning an error rolls the transaction back.
pub trait TxHandler: Send + Sync + 'static {
    /// Applies the effect of `msg` on `tx` (an open transaction; do not commit it).
    fn handle(
        &self,
        tx: &mut PgConnection,
        msg: &Incoming,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Adapts a [`TxHandler`] to a [`Handler`]: begin, [`record`], effect, commit.
/// A duplicate is acknowledged without running the effect.
#[derive(Debug, Clone)]
pub struct WithInbox<H> {
    pool: PgPool,
    consumer: String,
    inner: H,
}

impl<H: TxHandler> WithInbox<H> {
    /// Wraps `inner`; `consumer` is the inbox key (use the consumer name given to
    /// [`crate::consume`], one per service and queue).
    pub fn new(pool: PgPool, consumer: impl Into<String>, inner: H) -> Self {
        Self {
            pool,
            consumer: consumer.into(),
            inner,
        }
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H: TxHandler> Handler for WithInbox<H> {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        if !record(&mut tx, &self.consumer, msg.message_id).await? {
            tracing::info!(message_id = %msg.message_id, consumer = %self.consumer, "duplicate message, effect already applied");
            tx.rollback().await?;
            return Ok(());
        }
        // On error `tx` is dropped and rolled back, inbox row included.
        self.inner.handle(&mut tx, &msg).await?;
        tx.commit().await?;
        Ok(())
    }
}
