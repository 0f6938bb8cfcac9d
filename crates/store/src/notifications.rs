//! Amazon's notifications received from SQS (issue 19): each NotificationId once, with what
//! became of it, and the look-ups that turn a notification into a shop's work.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Turned into a command for status-sync or feed-poller (in the same transaction).
    Queued,
    /// Not ours, or nothing to do: an unknown seller, marketplace or feed.
    Ignored,
    /// Unreadable: not JSON, or without the fields every notification has.
    Poison,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ignored => "ignored",
            Self::Poison => "poison",
        }
    }
}

/// One notification as recorded.
#[derive(Debug, Clone)]
pub struct Received<'a> {
    pub notification_id: &'a str,
    pub notification_type: &'a str,
    pub shop_id: Option<Uuid>,
    /// The Amazon order id or feed id.
    pub subject: Option<&'a str>,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub event_time: Option<DateTime<Utc>>,
}

/// Records a notification; `false` when its NotificationId was recorded before (a duplicate
/// delivery: nothing more to do). Call in the transaction that queues its work.
pub async fn record(conn: &mut PgConnection, n: &Received<'_>) -> Result<bool, StoreError> {
    let inserted = sqlx::query!(
        r#"INSERT INTO notifications_received
               (notification_id, notification_type, shop_id, subject, outcome, reason, event_time)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (notification_id) DO NOTHING"#,
        n.notification_id,
        n.notification_type,
        n.shop_id,
        n.subject,
        n.outcome.as_str(),
        n.reason,
        n.event_time
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The active shop of a selling partner on a marketplace (the marketplace's two-letter code:
/// shops store codes), if the connector serves it.
pub async fn shop_for(
    conn: &mut PgConnection,
    seller_id: &str,
    marketplace_code: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM shops WHERE seller_id = $1 AND $2 = ANY(marketplaces) AND active ORDER BY created_at LIMIT 1",
        seller_id,
        marketplace_code
    )
    .fetch_optional(conn)
    .await?)
}

/// The submission and shop of the feed Amazon knows as `amazon_feed_id`.
pub async fn feed(
    conn: &mut PgConnection,
    amazon_feed_id: &str,
) -> Result<Option<(Uuid, Uuid)>, StoreError> {
    Ok(sqlx::query!(
        "SELECT id, shop_id FROM feed_submissions WHERE amazon_feed_id = $1 LIMIT 1",
        amazon_feed_id
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.shop_id)))
}

/// How many notifications of each outcome a shop received since `since` (ctl, console).
pub async fn counts_since(
    conn: &mut PgConnection,
    shop_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query!(
        r#"SELECT outcome, count(*) AS "n!" FROM notifications_received
            WHERE shop_id = $1 AND received_at >= $2 GROUP BY outcome ORDER BY outcome"#,
        shop_id,
        since
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| (r.outcome, r.n))
    .collect())
}
