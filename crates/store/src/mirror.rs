//! The order mirror (issue 20): the latest Amazon state of each changed order of a shop, written
//! by one `searchOrders` poll on `lastUpdatedAfter` and read by both order-ingest (differential)
//! and status-sync (changes), so a change costs the shop's searchOrders quota once
//! (`migrations/20261205000000_order_mirror.sql`).
//!
//! * The poll's cursor ([`lock_cursor`], [`save_page`], [`finish_poll`]) is one row per shop,
//!   locked while a page is fetched and written: a page's rows and the cursor past it commit
//!   together, so a process killed mid-page resumes from the last committed page, and two
//!   processes never fetch the same page.
//! * Rows ([`upsert`]) keep the newest version (`last_updated_time`) only; each reader records
//!   the version it applied ([`mark`]) and reads what it has not applied yet ([`pending`]).
//! * The payload is the order as JSON, sealed with the keyring ([`seal`], [`open`]: it holds
//!   buyer and ship-to data), cleared once every reader that needs it applied that version, and
//!   by [`crate::pii::purge`] after the retention period in any case.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use crypto::Keyring;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// How long a process waits for another one's page to be written before giving up (the error
/// is transient: the run is retried).
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '30s'";

/// A shop's poll position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The next poll asks for changes after this (less the overlap).
    pub watermark: DateTime<Utc>,
    /// A poll in progress: its `lastUpdatedAfter`.
    pub poll_after: Option<DateTime<Utc>>,
    /// A poll in progress: the token of its next page.
    pub next_token: Option<String>,
    /// A poll in progress: the fulfillment statuses it asks for (its next page must ask for the
    /// same).
    pub poll_statuses: Option<Vec<String>>,
    /// When the last complete poll finished.
    pub polled_at: Option<DateTime<Utc>>,
}

/// Locks the cursor of `shop_id` for the rest of the transaction (waiting up to 30 s for a
/// process writing a page), creating it at `first_watermark` for a shop never polled.
pub async fn lock_cursor(
    conn: &mut PgConnection,
    shop_id: Uuid,
    first_watermark: DateTime<Utc>,
) -> Result<Cursor, StoreError> {
    sqlx::query(LOCK_TIMEOUT).execute(&mut *conn).await?;
    sqlx::query!(
        "INSERT INTO order_mirror_cursors (shop_id, watermark) VALUES ($1, $2)
         ON CONFLICT (shop_id) DO NOTHING",
        shop_id,
        first_watermark
    )
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query!(
        "SELECT watermark, poll_after, next_token, poll_statuses, polled_at FROM order_mirror_cursors
          WHERE shop_id = $1 FOR UPDATE",
        shop_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Cursor {
        watermark: row.watermark,
        poll_after: row.poll_after,
        next_token: row.next_token,
        poll_statuses: row.poll_statuses,
        polled_at: row.polled_at,
    })
}

/// A page of a poll written: the poll goes on after `after` with `next_token`.
pub async fn save_page(
    conn: &mut PgConnection,
    shop_id: Uuid,
    after: DateTime<Utc>,
    next_token: &str,
    statuses: &[String],
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE order_mirror_cursors
            SET poll_after = $2, next_token = $3, poll_statuses = $4, pages = pages + 1,
                updated_at = now()
          WHERE shop_id = $1",
        shop_id,
        after,
        next_token,
        statuses
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The last page of a poll written: the next poll starts from `watermark`.
pub async fn finish_poll(
    conn: &mut PgConnection,
    shop_id: Uuid,
    watermark: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE order_mirror_cursors
            SET watermark = GREATEST(watermark, $2), poll_after = NULL, next_token = NULL,
                poll_statuses = NULL, polled_at = $3, pages = pages + 1, updated_at = now()
          WHERE shop_id = $1",
        shop_id,
        watermark,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One order's state as polled.
#[derive(Debug, Clone)]
pub struct Row {
    pub amazon_order_id: String,
    pub last_updated_time: DateTime<Utc>,
    /// Merchant-fulfilled PENDING or UNSHIPPED (order-ingest imports it).
    pub importable: bool,
    /// The order as JSON, sealed ([`seal`]); `None` for a version both readers are done with
    /// ([`Row::settled`]).
    pub payload: Option<Vec<u8>>,
    /// Both readers have applied this version already (the poller did the other's work too):
    /// written applied for both, without a payload.
    pub settled: bool,
}

/// Writes `rows` as polled by `poller` (who applied them all: its version is set; the other
/// reader's only on settled rows), each only where it is newer than the version held (an older
/// or the same version, read again in the poll's overlap, changes nothing). Returns the Amazon
/// order ids written; the others are for [`mark`].
pub async fn upsert(
    conn: &mut PgConnection,
    shop_id: Uuid,
    poller: Reader,
    rows: &[Row],
) -> Result<HashSet<String>, StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.amazon_order_id.as_str()).collect();
    let times: Vec<DateTime<Utc>> = rows.iter().map(|r| r.last_updated_time).collect();
    let importable: Vec<bool> = rows.iter().map(|r| r.importable).collect();
    let payloads: Vec<Option<&[u8]>> = rows.iter().map(|r| r.payload.as_deref()).collect();
    let settled: Vec<bool> = rows.iter().map(|r| r.settled).collect();
    let written = sqlx::query_scalar!(
        "INSERT INTO order_mirror (shop_id, amazon_order_id, last_updated_time, importable, payload,
                                   ingest_version, sync_version)
         SELECT $1, r.id, r.t, r.i, r.p, CASE WHEN r.s OR $7 THEN r.t END,
                CASE WHEN r.s OR NOT $7 THEN r.t END
           FROM unnest($2::text[], $3::timestamptz[], $4::bool[], $5::bytea[], $6::bool[])
                AS r(id, t, i, p, s)
          ORDER BY r.id
         ON CONFLICT (shop_id, amazon_order_id) DO UPDATE
            SET last_updated_time = EXCLUDED.last_updated_time,
                importable = EXCLUDED.importable, payload = EXCLUDED.payload, polled_at = now(),
                ingest_version = COALESCE(EXCLUDED.ingest_version, order_mirror.ingest_version),
                sync_version = COALESCE(EXCLUDED.sync_version, order_mirror.sync_version)
          WHERE order_mirror.last_updated_time < EXCLUDED.last_updated_time
         RETURNING amazon_order_id",
        shop_id,
        &ids as &[&str],
        &times,
        &importable,
        &payloads as &[Option<&[u8]>],
        &settled,
        poller == Reader::Ingest
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(written.into_iter().collect())
}

/// A reader of the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// order-ingest's differential import: reads importable orders only.
    Ingest,
    /// status-sync's changes: reads every order.
    Sync,
}

/// A version a reader has not applied yet.
#[derive(Debug, Clone)]
pub struct Pending {
    pub amazon_order_id: String,
    pub last_updated_time: DateTime<Utc>,
    /// `None` once purged (the order is then read from Amazon again by the next poll).
    pub payload: Option<Vec<u8>>,
}

/// Up to `limit` versions `reader` has not applied, in Amazon order id order.
/// One statement per reader: each is answered from its reader's partial index
/// (`order_mirror_ingest_pending`, `order_mirror_sync_pending`), which a reader parameter would
/// keep the planner from using.
pub async fn pending(
    conn: &mut PgConnection,
    shop_id: Uuid,
    reader: Reader,
    limit: i64,
) -> Result<Vec<Pending>, StoreError> {
    let rows = match reader {
        Reader::Ingest => {
            sqlx::query_as!(
                Pending,
                "SELECT amazon_order_id, last_updated_time, payload FROM order_mirror
                  WHERE shop_id = $1 AND importable
                    AND ingest_version IS DISTINCT FROM last_updated_time
                  ORDER BY amazon_order_id LIMIT $2",
                shop_id,
                limit
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Reader::Sync => {
            sqlx::query_as!(
                Pending,
                "SELECT amazon_order_id, last_updated_time, payload FROM order_mirror
                  WHERE shop_id = $1 AND sync_version IS DISTINCT FROM last_updated_time
                  ORDER BY amazon_order_id LIMIT $2",
                shop_id,
                limit
            )
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(rows)
}

/// Records that `reader` applied these versions (order id, `last_updated_time`). A row that a
/// poll has meanwhile replaced by a newer version stays pending. The payload is cleared once
/// the other reader needs it no more.
pub async fn mark(
    conn: &mut PgConnection,
    shop_id: Uuid,
    reader: Reader,
    versions: &[(String, DateTime<Utc>)],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = versions.iter().map(|(id, _)| id.as_str()).collect();
    let times: Vec<DateTime<Utc>> = versions.iter().map(|(_, t)| *t).collect();
    sqlx::query!(
        "UPDATE order_mirror m
            SET ingest_version = CASE WHEN $4 THEN v.t ELSE m.ingest_version END,
                sync_version = CASE WHEN $4 THEN m.sync_version ELSE v.t END,
                payload = CASE WHEN (CASE WHEN $4 THEN m.sync_version = v.t
                                          ELSE m.ingest_version = v.t OR NOT m.importable END)
                               THEN NULL ELSE m.payload END
           FROM unnest($2::text[], $3::timestamptz[]) AS v(id, t)
          WHERE m.shop_id = $1 AND m.amazon_order_id = v.id AND m.last_updated_time = v.t",
        shop_id,
        &ids as &[&str],
        &times,
        reader == Reader::Ingest
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Seals an order's JSON for the mirror row of `amazon_order_id` of `shop_id`.
pub fn seal(keys: &Keyring, shop_id: Uuid, amazon_order_id: &str, json: &[u8]) -> Vec<u8> {
    keys.encrypt(json, &aad(shop_id, amazon_order_id))
}

/// Opens a payload sealed by [`seal`].
pub fn open(
    keys: &Keyring,
    shop_id: Uuid,
    amazon_order_id: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    Ok(keys.decrypt(sealed, &aad(shop_id, amazon_order_id))?)
}

fn aad(shop_id: Uuid, amazon_order_id: &str) -> String {
    format!("order_mirror.payload:{shop_id}:{amazon_order_id}")
}

/// Clears payloads polled before `cutoff` that a reader never applied (the PII retention
/// limit); the rows stay pending and are read from Amazon again if they change.
pub async fn purge_payloads(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        "UPDATE order_mirror SET payload = NULL WHERE payload IS NOT NULL AND polled_at < $1",
        cutoff
    )
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
