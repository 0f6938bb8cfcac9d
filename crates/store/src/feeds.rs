//! Feed submissions and their messages (messageId ↔ instruction or SKU).
//!
//! A submission is recorded **before** Amazon is called (`pending`), marked `in_flight` right
//! before `createFeed`, and `submitted` with Amazon's feed id once accepted. A submission left
//! `in_flight` (crash, unknown outcome) is reconciled against Amazon (`getFeeds`) before anything
//! is sent again. feed-poller then moves it to `done`, `fatal` or `cancelled`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

/// Submission states (the `feed_submissions.state` column).
pub mod state {
    pub const PENDING: &str = "pending";
    pub const IN_FLIGHT: &str = "in_flight";
    pub const SUBMITTED: &str = "submitted";
    pub const DONE: &str = "done";
    pub const FATAL: &str = "fatal";
    pub const CANCELLED: &str = "cancelled";
    pub const FAILED: &str = "failed";
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub run_id: Option<Uuid>,
    pub feed_type: String,
    pub marketplace_ids: Vec<String>,
    pub state: String,
    pub content_sha256: Option<String>,
    pub feed_document_id: Option<String>,
    pub amazon_feed_id: Option<String>,
    pub processing_status: Option<String>,
    pub result_document_id: Option<String>,
    pub poll_attempts: i32,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub in_flight_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stuck_flagged_at: Option<DateTime<Utc>>,
}

/// A message of a submission to record.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub message_id: i64,
    pub instruction_id: Option<Uuid>,
    pub external_product_id: Option<Uuid>,
    pub amazon_order_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: Option<i32>,
    pub handling_days: Option<i16>,
    pub change_seq: Option<i64>,
    /// The package a shipment message carries (every-package mode); `None`: the whole order.
    pub package_no: Option<i16>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub feed_submission_id: Uuid,
    pub message_id: i64,
    pub instruction_id: Option<Uuid>,
    pub external_product_id: Option<Uuid>,
    pub amazon_order_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: Option<i32>,
    pub change_seq: Option<i64>,
    /// The package a shipment message carried (every-package mode); `None`: the whole order.
    pub package_no: Option<i16>,
    pub result: String,
    pub result_code: Option<String>,
    pub result_message: Option<String>,
}

/// Records a submission (state `pending`) and its messages: the intent, before any call.
pub async fn insert(
    conn: &mut PgConnection,
    shop_id: Uuid,
    run_id: Option<Uuid>,
    feed_type: &str,
    marketplace_ids: &[String],
    content_sha256: &str,
    messages: &[NewMessage],
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"INSERT INTO feed_submissions (id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256)
           VALUES ($1, $2, $3, $4, $5, 'pending', $6)"#,
        id,
        shop_id,
        run_id,
        feed_type,
        marketplace_ids,
        content_sha256
    )
    .execute(&mut *conn)
    .await?;
    for m in messages {
        sqlx::query!(
            r#"INSERT INTO feed_messages (feed_submission_id, message_id, instruction_id, external_product_id,
                                          amazon_order_id, sku, quantity, handling_days, change_seq, package_no)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#,
            id,
            m.message_id,
            m.instruction_id,
            m.external_product_id,
            m.amazon_order_id,
            m.sku,
            m.quantity,
            m.handling_days,
            m.change_seq,
            m.package_no
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// The document is uploaded and `createFeed` is about to be called: `in_flight`.
pub async fn mark_in_flight(
    conn: &mut PgConnection,
    id: Uuid,
    feed_document_id: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE feed_submissions SET state = 'in_flight', feed_document_id = $2, in_flight_at = now()
           WHERE id = $1 AND state IN ('pending', 'in_flight')"#,
        id,
        feed_document_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Amazon accepted the feed (or reconciliation found it): `submitted`, first poll at `next_poll_at`.
/// Returns false when the submission was not open any more (already recorded).
pub async fn mark_submitted(
    conn: &mut PgConnection,
    id: Uuid,
    amazon_feed_id: &str,
    next_poll_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = sqlx::query!(
        r#"UPDATE feed_submissions SET state = 'submitted', amazon_feed_id = $2, submitted_at = now(),
                  next_poll_at = $3, error = NULL
           WHERE id = $1 AND state IN ('pending', 'in_flight')"#,
        id,
        amazon_feed_id,
        next_poll_at
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The feed was never accepted by Amazon (refused, or reconciliation found nothing): `failed`.
pub async fn mark_not_sent(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE feed_submissions SET state = 'failed', error = $2, finished_at = now()
           WHERE id = $1 AND state IN ('pending', 'in_flight')"#,
        id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads a submission.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Submission, StoreError> {
    sqlx::query_as!(Submission, r#"SELECT id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256, feed_document_id,
                  amazon_feed_id, processing_status, result_document_id, poll_attempts, next_poll_at, error,
                  created_at, in_flight_at, submitted_at, finished_at, stuck_flagged_at
           FROM feed_submissions WHERE id = $1"#, id)
        .fetch_optional(conn)
        .await?
        .found("feed submission", id)
}

/// A submission by Amazon's feed id.
pub async fn get_by_amazon_id(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_feed_id: &str,
) -> Result<Submission, StoreError> {
    sqlx::query_as!(Submission, r#"SELECT id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256, feed_document_id,
                  amazon_feed_id, processing_status, result_document_id, poll_attempts, next_poll_at, error,
                  created_at, in_flight_at, submitted_at, finished_at, stuck_flagged_at
           FROM feed_submissions WHERE shop_id = $1 AND amazon_feed_id = $2"#, shop_id, amazon_feed_id)
        .fetch_optional(conn)
        .await?
        .found("feed", amazon_feed_id)
}

/// Newest submissions of a shop (optionally one state).
pub async fn list(
    conn: &mut PgConnection,
    shop_id: Uuid,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<Submission>, StoreError> {
    Ok(sqlx::query_as!(Submission, r#"SELECT id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256, feed_document_id,
                  amazon_feed_id, processing_status, result_document_id, poll_attempts, next_poll_at, error,
                  created_at, in_flight_at, submitted_at, finished_at, stuck_flagged_at
           FROM feed_submissions WHERE shop_id = $1 AND ($2::text IS NULL OR state = $2)
           ORDER BY created_at DESC LIMIT $3"#, shop_id, state, limit.clamp(1, 1000))
        .fetch_all(conn)
        .await?)
}

/// Submissions of a shop and feed type whose `createFeed` outcome is not recorded
/// (`pending` or `in_flight`), oldest first.
pub async fn unresolved(
    conn: &mut PgConnection,
    shop_id: Uuid,
    feed_type: &str,
) -> Result<Vec<Submission>, StoreError> {
    Ok(sqlx::query_as!(Submission, r#"SELECT id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256, feed_document_id,
                  amazon_feed_id, processing_status, result_document_id, poll_attempts, next_poll_at, error,
                  created_at, in_flight_at, submitted_at, finished_at, stuck_flagged_at
           FROM feed_submissions WHERE shop_id = $1 AND feed_type = $2 AND state IN ('pending', 'in_flight')
           ORDER BY created_at"#, shop_id, feed_type)
        .fetch_all(conn)
        .await?)
}

/// Amazon feed ids this shop already knows (to tell our unrecorded feed apart in `getFeeds`).
pub async fn known_amazon_ids(
    conn: &mut PgConnection,
    shop_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT amazon_feed_id AS "id!" FROM feed_submissions
           WHERE shop_id = $1 AND amazon_feed_id IS NOT NULL AND created_at >= $2"#,
        shop_id,
        since
    )
    .fetch_all(conn)
    .await?)
}

/// Claims submitted feeds that are due for a poll: `one` (regardless of the shop), or every due
/// feed of `shop_id`. The claim moves `next_poll_at` forward by `lease` so a concurrent or
/// duplicate trigger skips them; the poller then sets the real next time.
pub async fn claim_due(
    conn: &mut PgConnection,
    shop_id: Uuid,
    one: Option<Uuid>,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<Submission>, StoreError> {
    let until = Utc::now() + lease;
    Ok(sqlx::query_as!(Submission, r#"UPDATE feed_submissions SET next_poll_at = $3
           WHERE id IN (SELECT id FROM feed_submissions
                        WHERE shop_id = $1 AND ($2::uuid IS NULL OR id = $2) AND state = 'submitted'
                          AND (next_poll_at IS NULL OR next_poll_at <= now())
                        ORDER BY next_poll_at NULLS FIRST LIMIT $4
                        FOR UPDATE SKIP LOCKED)
           RETURNING id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256, feed_document_id,
                  amazon_feed_id, processing_status, result_document_id, poll_attempts, next_poll_at, error,
                  created_at, in_flight_at, submitted_at, finished_at, stuck_flagged_at"#, shop_id, one, until, limit)
        .fetch_all(conn)
        .await?)
}

/// Amazon announced that the feed finished (a FEED_PROCESSING_FINISHED notification): its
/// result is fetched now, not at its scheduled poll. Only a submitted feed whose poll lies in
/// the future is moved; a final one is left alone. Returns whether it was made due.
pub async fn announce_finished(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let n = sqlx::query!(
        r#"UPDATE feed_submissions SET next_poll_at = now()
           WHERE id = $1 AND state = 'submitted' AND (next_poll_at IS NULL OR next_poll_at > now())"#,
        id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Locks a submission for the transaction that applies its result; `false` when it is not
/// `submitted` any more (another poll applied it first: nothing to do).
pub async fn lock_submitted(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT state FROM feed_submissions WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?
    .is_some_and(|state| state == state::SUBMITTED))
}

/// When to poll a feed Amazon just accepted: after `delay`, or — when Amazon announces the
/// shop's feed results (a FEED_PROCESSING_FINISHED subscription) — not before
/// [`domain::notifications::FEED_SAFETY_POLL`]: the notification brings the result, the poll is
/// only the safety net.
pub async fn first_poll_at(
    conn: &mut PgConnection,
    shop_id: Uuid,
    delay: chrono::Duration,
) -> Result<DateTime<Utc>, StoreError> {
    let announced =
        crate::notifications::subscribed(&mut *conn, shop_id, "FEED_PROCESSING_FINISHED").await?;
    let delay = if announced {
        delay.max(domain::notifications::FEED_SAFETY_POLL)
    } else {
        delay
    };
    Ok(Utc::now() + delay)
}

/// Not final yet: record the status and the next poll.
pub async fn schedule_poll(
    conn: &mut PgConnection,
    id: Uuid,
    processing_status: &str,
    next_poll_at: DateTime<Utc>,
) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE feed_submissions SET processing_status = $2, next_poll_at = $3, poll_attempts = poll_attempts + 1
           WHERE id = $1 RETURNING poll_attempts"#,
        id,
        processing_status,
        next_poll_at
    )
    .fetch_one(conn)
    .await?)
}

/// Counts one more poll that found the feed DONE without a result document; returns how many so
/// far (the caller decides whether to ask again).
pub async fn note_missing_report(conn: &mut PgConnection, id: Uuid) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE feed_submissions SET missing_report_polls = missing_report_polls + 1
           WHERE id = $1 RETURNING missing_report_polls"#,
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Records that the feed was flagged as stuck (once).
pub async fn flag_stuck(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let n = sqlx::query!(
        "UPDATE feed_submissions SET stuck_flagged_at = now() WHERE id = $1 AND stuck_flagged_at IS NULL",
        id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Final: `done`, `fatal` or `cancelled` (or `failed` when the result could not be read).
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    final_state: &str,
    processing_status: &str,
    result_document_id: Option<&str>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE feed_submissions SET state = $2, processing_status = $3, result_document_id = $4, error = $5,
                  next_poll_at = NULL, finished_at = now(), poll_attempts = poll_attempts + 1
           WHERE id = $1"#,
        id,
        final_state,
        processing_status,
        result_document_id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the instructions of a submission's messages for the caller's transaction, in the
/// order every transaction that locks several instructions uses: (shop, Amazon order id, byte
/// order as Rust compares strings).
/// Call it before changing them; order-ingest and status-sync lock a page's orders in the same
/// order, so none of them can deadlock with another.
pub async fn lock_instructions(conn: &mut PgConnection, id: Uuid) -> Result<u64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM (
               SELECT 1 FROM shipping_instructions
               WHERE id IN (SELECT instruction_id FROM feed_messages WHERE feed_submission_id = $1)
               ORDER BY shop_id, amazon_order_id COLLATE "C"
               FOR NO KEY UPDATE) locked"#,
        id
    )
    .fetch_one(conn)
    .await? as u64)
}

/// Messages of a submission, by message id.
pub async fn messages(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Message>, StoreError> {
    Ok(sqlx::query_as!(
        Message,
        r#"SELECT feed_submission_id, message_id, instruction_id, external_product_id, amazon_order_id, sku,
                  quantity, change_seq, package_no, result, result_code, result_message
           FROM feed_messages WHERE feed_submission_id = $1 ORDER BY message_id"#,
        id
    )
    .fetch_all(conn)
    .await?)
}

/// Records one message's result (`success`, `warning` or `error`).
pub async fn set_message_result(
    conn: &mut PgConnection,
    id: Uuid,
    message_id: i64,
    result: &str,
    code: Option<&str>,
    message: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE feed_messages SET result = $3, result_code = $4, result_message = $5
           WHERE feed_submission_id = $1 AND message_id = $2"#,
        id,
        message_id,
        result,
        code,
        message
    )
    .execute(conn)
    .await?;
    Ok(())
}
