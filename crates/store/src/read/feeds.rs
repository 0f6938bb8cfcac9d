//! フィード: submissions with their per-message results. One submission's header is
//! [`crate::feeds::get`].

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A submission with its messages counted by result.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub feed_type: String,
    pub state: String,
    pub amazon_feed_id: Option<String>,
    /// Amazon's processing status (`IN_QUEUE`, `DONE`, ...).
    pub processing_status: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub poll_attempts: i32,
    /// Messages in the feed.
    pub total: i64,
    pub ok: i64,
    pub warn: i64,
    pub err: i64,
    pub pending: i64,
}

/// Submissions of these shops (optionally in one state), newest first.
pub async fn list(
    conn: &mut PgConnection,
    shops: &[Uuid],
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<FeedRow>, StoreError> {
    Ok(sqlx::query_as!(
        FeedRow,
        r#"SELECT fs.id, fs.shop_id, fs.feed_type, fs.state, fs.amazon_feed_id, fs.processing_status, fs.error,
                  fs.created_at, fs.submitted_at, fs.finished_at, fs.poll_attempts,
                  count(fm.message_id) AS "total!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'success') AS "ok!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'warning') AS "warn!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'error') AS "err!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'pending') AS "pending!"
           FROM feed_submissions fs LEFT JOIN feed_messages fm ON fm.feed_submission_id = fs.id
           WHERE fs.shop_id = ANY($1) AND ($2::text IS NULL OR fs.state = $2)
           GROUP BY fs.id ORDER BY fs.created_at DESC LIMIT $3"#,
        shops,
        state,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// One message of a feed with Amazon's result.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub message_id: i64,
    pub amazon_order_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: Option<i32>,
    pub handling_days: Option<i16>,
    /// `pending`, `success`, `warning` or `error`.
    pub result: String,
    pub result_code: Option<String>,
    /// Amazon's message, verbatim.
    pub result_message: Option<String>,
    pub instruction_id: Option<Uuid>,
}

/// The messages of a submission, by message id.
pub async fn messages(conn: &mut PgConnection, id: Uuid) -> Result<Vec<MessageRow>, StoreError> {
    Ok(sqlx::query_as!(
        MessageRow,
        r#"SELECT fm.message_id, fm.amazon_order_id, fm.sku, fm.quantity, fm.handling_days, fm.result,
                  fm.result_code, fm.result_message, fm.instruction_id
           FROM feed_messages fm WHERE fm.feed_submission_id = $1 ORDER BY fm.message_id"#,
        id
    )
    .fetch_all(conn)
    .await?)
}
