//! PII retention (Amazon DPP: no buyer data kept longer than 30 days after the order is done).
//!
//! Buyer and ship-to columns of shipping instructions are nulled (and `pii_purged_at` set)
//! once the instruction was shipped more than the retention period ago, or was canceled (last
//! change) more than the retention period ago. Everything else (order id, lines, tracking,
//! country for statistics) stays. Idempotent; run daily (`ctl pii purge`, a CronJob).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::StoreError;

/// Days after shipment (or cancellation) that buyer and ship-to data is kept.
pub const RETENTION_DAYS: i64 = 30;

/// The columns of `shipping_instructions` that hold buyer or ship-to PII (the only place PII
/// may be stored; nulled by [`purge`]).
pub const PII_COLUMNS: [&str; 8] = [
    "buyer_name",
    "buyer_email",
    "ship_to_name",
    "ship_to_postal_code",
    "ship_to_state",
    "ship_to_city",
    "ship_to_address",
    "ship_to_phone",
];

/// Purges the PII of instructions shipped (or canceled) before `now - older_than`. Returns how
/// many instructions were purged.
pub async fn purge(
    conn: &mut PgConnection,
    older_than: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let cutoff = now - older_than;
    let done = sqlx::query(
        r#"UPDATE shipping_instructions
              SET buyer_name = NULL, buyer_email = NULL, ship_to_name = NULL,
                  ship_to_postal_code = NULL, ship_to_state = NULL, ship_to_city = NULL,
                  ship_to_address = NULL, ship_to_phone = NULL, pii_purged_at = $2
            WHERE pii_purged_at IS NULL
              AND ((status = 'shipped'
                    AND COALESCE(shipped_at, shipped_on::timestamp AT TIME ZONE 'UTC') < $1)
                OR (status = 'canceled' AND updated_at < $1))"#,
    )
    .bind(cutoff)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
