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

/// A shop's subscription to one notification type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub shop_id: Uuid,
    pub notification_type: String,
    pub subscription_id: String,
    pub destination_id: String,
    pub previous_cron: Option<String>,
    pub subscribed_at: DateTime<Utc>,
}

/// Records (or replaces) a shop's subscription to `notification_type`.
pub async fn save_subscription(
    conn: &mut PgConnection,
    shop_id: Uuid,
    notification_type: &str,
    subscription_id: &str,
    destination_id: &str,
    previous_cron: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO notification_subscriptions
               (shop_id, notification_type, subscription_id, destination_id, previous_cron)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (shop_id, notification_type) DO UPDATE
              SET subscription_id = EXCLUDED.subscription_id,
                  destination_id = EXCLUDED.destination_id,
                  previous_cron = COALESCE(notification_subscriptions.previous_cron, EXCLUDED.previous_cron),
                  subscribed_at = now()"#,
        shop_id,
        notification_type,
        subscription_id,
        destination_id,
        previous_cron
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A shop's subscriptions, by notification type.
pub async fn subscriptions(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<Subscription>, StoreError> {
    Ok(sqlx::query_as!(
        Subscription,
        r#"SELECT shop_id, notification_type, subscription_id, destination_id, previous_cron,
                  subscribed_at
             FROM notification_subscriptions WHERE shop_id = $1 ORDER BY notification_type"#,
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

/// Removes a shop's subscription record; returns it if there was one.
pub async fn remove_subscription(
    conn: &mut PgConnection,
    shop_id: Uuid,
    notification_type: &str,
) -> Result<Option<Subscription>, StoreError> {
    Ok(sqlx::query_as!(
        Subscription,
        r#"DELETE FROM notification_subscriptions
            WHERE shop_id = $1 AND notification_type = $2
        RETURNING shop_id, notification_type, subscription_id, destination_id, previous_cron,
                  subscribed_at"#,
        shop_id,
        notification_type
    )
    .fetch_optional(conn)
    .await?)
}

/// Whether Amazon announces the shop's order changes (an ORDER_CHANGE subscription): then
/// status-sync's differential poll is the sweep.
pub async fn order_changes_announced(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<bool, StoreError> {
    subscribed(conn, shop_id, "ORDER_CHANGE").await
}

/// Whether the shop is subscribed to `notification_type`.
pub async fn subscribed(
    conn: &mut PgConnection,
    shop_id: Uuid,
    notification_type: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM notification_subscriptions
                           WHERE shop_id = $1 AND notification_type = $2) AS "x!""#,
        shop_id,
        notification_type
    )
    .fetch_one(conn)
    .await?)
}

/// Of `order_ids`, those no ORDER_CHANGE notification of the shop was received for (the
/// changes the sweep found that no notification announced).
pub async fn unannounced_orders(
    conn: &mut PgConnection,
    shop_id: Uuid,
    order_ids: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT o AS "o!" FROM unnest($2::text[]) AS o
            WHERE NOT EXISTS (SELECT 1 FROM notifications_received r
                               WHERE r.shop_id = $1 AND r.subject = o
                                 AND r.notification_type = 'ORDER_CHANGE')
            ORDER BY o"#,
        shop_id,
        order_ids
    )
    .fetch_all(conn)
    .await?)
}

/// The last notification received for a shop (ctl, console).
pub async fn last_received(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Option<(String, Option<String>, String, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query!(
        r#"SELECT notification_type, subject, outcome, received_at FROM notifications_received
            WHERE shop_id = $1 ORDER BY received_at DESC LIMIT 1"#,
        shop_id
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.notification_type, r.subject, r.outcome, r.received_at)))
}
