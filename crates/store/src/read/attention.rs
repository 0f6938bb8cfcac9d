//! 要対応: what an operator has to act on, one function per section of the attention page, and
//! the number of open items for the dashboard tile.
//!
//! A feed is stuck by the one rule of [`domain::feed_stuck`]: not final [`STUCK_AFTER`] after its
//! submission (its creation when it never reached Amazon).
//!
//! [`STUCK_AFTER`]: domain::feed_stuck::STUCK_AFTER

use chrono::{DateTime, NaiveDate, Utc};
use domain::feed_stuck;
use sqlx::PgConnection;
use uuid::Uuid;

use super::LIST_LIMIT;
use crate::{StoreError, api_log::Record};

/// API-log code of an Amazon cancellation that arrived after stock was allocated.
pub const CANCELED_AFTER_ALLOCATION: &str = "amazon_cancelled_after_allocation";

/// Number of open items at `now`: unmapped SKUs, failed shipment results, stuck feeds, shops
/// needing re-authorization, cancellations after allocation and open instructions whose ship-by
/// time is within [`domain::ship_by::WARN_HOURS`] or past.
pub async fn count(
    conn: &mut PgConnection,
    shops: &[Uuid],
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT (
             (SELECT count(DISTINCT (l.shop_id, l.sku)) FROM instruction_lines l
                JOIN shipping_instructions si ON si.id = l.instruction_id
               WHERE l.shop_id = ANY($1) AND l.product_id IS NULL AND si.status <> 'canceled')
           + (SELECT count(*) FROM shipping_instructions WHERE shop_id = ANY($1) AND api_status = 'failed')
           + (SELECT count(*) FROM feed_submissions WHERE shop_id = ANY($1)
                AND state IN ('pending', 'in_flight', 'submitted')
                AND COALESCE(submitted_at, created_at) < $2)
           + (SELECT count(*) FROM shops WHERE id = ANY($1) AND auth_status = 'needs_reauthorization')
           + (SELECT count(*) FROM api_log a
                JOIN shipping_instructions si ON si.shop_id = a.shop_id AND si.amazon_order_id = a.amazon_order_id
               WHERE a.shop_id = ANY($1) AND a.code = $3 AND si.status <> 'canceled')
           + (SELECT count(*) FROM shipping_instructions WHERE shop_id = ANY($1)
                AND status IN ('hold', 'awaiting_shipment', 'allocated') AND latest_ship_at <= $4)
           ) AS "n!""#,
        shops,
        feed_stuck::stuck_cutoff(now),
        CANCELED_AFTER_ALLOCATION,
        now + chrono::Duration::hours(domain::ship_by::WARN_HOURS)
    )
    .fetch_one(conn)
    .await?)
}

/// A shop whose refresh token Amazon refuses.
#[derive(Debug, Clone)]
pub struct ReauthShop {
    pub code: String,
    pub name: String,
    pub auth_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Shops needing re-authorization, by code.
pub async fn shops_needing_reauthorization(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<ReauthShop>, StoreError> {
    Ok(sqlx::query_as!(
        ReauthShop,
        "SELECT code, name, auth_error, updated_at FROM shops WHERE id = ANY($1) AND auth_status = 'needs_reauthorization' ORDER BY code",
        shops
    )
    .fetch_all(conn)
    .await?)
}

/// A seller SKU on open instructions with no product in the mapping table.
#[derive(Debug, Clone)]
pub struct UnmappedSku {
    pub shop_id: Uuid,
    pub sku: String,
    /// Instructions with this SKU.
    pub orders: i64,
    /// Quantity ordered over those instructions.
    pub qty: i64,
    /// One of the orders, as an example.
    pub latest_order: Option<String>,
}

/// Unmapped SKUs of instructions not canceled, by shop and SKU.
pub async fn unmapped_skus(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<UnmappedSku>, StoreError> {
    Ok(sqlx::query_as!(
        UnmappedSku,
        r#"SELECT l.shop_id, l.sku, count(DISTINCT l.instruction_id) AS "orders!", sum(l.quantity) AS "qty!",
                  max(si.amazon_order_id) AS latest_order
           FROM instruction_lines l JOIN shipping_instructions si ON si.id = l.instruction_id
           WHERE l.shop_id = ANY($1) AND l.product_id IS NULL AND si.status <> 'canceled'
           GROUP BY l.shop_id, l.sku ORDER BY l.shop_id, l.sku LIMIT $2"#,
        shops,
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// An order Amazon canceled after its stock was allocated (the instruction is not canceled).
#[derive(Debug, Clone)]
pub struct CanceledAfterAllocation {
    pub shop_id: Option<Uuid>,
    pub order: String,
    /// The API-log message.
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub instruction_id: Uuid,
    /// The instruction's status.
    pub status: String,
}

/// Cancellations after allocation, one per order (the latest entry).
pub async fn canceled_after_allocation(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<CanceledAfterAllocation>, StoreError> {
    Ok(sqlx::query_as!(
        CanceledAfterAllocation,
        r#"SELECT DISTINCT ON (a.shop_id, a.amazon_order_id) a.shop_id, a.amazon_order_id AS "order!", a.message,
                  a.created_at, si.id AS instruction_id, si.status
           FROM api_log a
           JOIN shipping_instructions si ON si.shop_id = a.shop_id AND si.amazon_order_id = a.amazon_order_id
           WHERE a.shop_id = ANY($1) AND a.code = $2 AND si.status <> 'canceled'
           ORDER BY a.shop_id, a.amazon_order_id, a.id DESC LIMIT $3"#,
        shops,
        CANCELED_AFTER_ALLOCATION,
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// An open instruction whose buyer asked to cancel it and no operator has decided yet (issue 21
/// item 1).
#[derive(Debug, Clone)]
pub struct CancelRequest {
    pub instruction_id: Uuid,
    pub shop_id: Uuid,
    pub order: String,
    /// The instruction's status: `hold` (held for the request) or `allocated` (flagged).
    pub status: String,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
}

/// Undecided buyer cancellation requests of open instructions, oldest first.
pub async fn cancel_requests(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<CancelRequest>, StoreError> {
    Ok(sqlx::query_as!(
        CancelRequest,
        r#"SELECT id AS instruction_id, shop_id, amazon_order_id AS "order!", status,
                  cancel_request_reason AS reason, cancel_requested_at AS "requested_at!"
           FROM shipping_instructions
           WHERE shop_id = ANY($1) AND cancel_requested_at IS NOT NULL AND cancel_request_decision IS NULL
             AND status NOT IN ('shipped', 'canceled') AND amazon_order_id IS NOT NULL
           ORDER BY cancel_requested_at LIMIT $2"#,
        shops,
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// An open instruction whose ship-by time (`LatestShipDate`) is near or past.
#[derive(Debug, Clone)]
pub struct ShipBySoon {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub amazon_order_id: Option<String>,
    pub status: String,
    pub latest_ship_at: DateTime<Utc>,
}

/// Open (hold, awaiting shipment, allocated) instructions whose ship-by time is at or before
/// `until`, earliest first.
pub async fn ship_by_soon(
    conn: &mut PgConnection,
    shops: &[Uuid],
    until: DateTime<Utc>,
) -> Result<Vec<ShipBySoon>, StoreError> {
    Ok(sqlx::query_as!(
        ShipBySoon,
        r#"SELECT id, shop_id, amazon_order_id, status, latest_ship_at AS "latest_ship_at!"
           FROM shipping_instructions
           WHERE shop_id = ANY($1) AND status IN ('hold', 'awaiting_shipment', 'allocated')
             AND latest_ship_at <= $2
           ORDER BY latest_ship_at, amazon_order_id LIMIT $3"#,
        shops,
        until,
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// An instruction whose shipment result Amazon refused.
#[derive(Debug, Clone)]
pub struct FailedShipment {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub amazon_order_id: Option<String>,
    /// Amazon's message.
    pub api_error: Option<String>,
    pub tracking_numbers: Vec<String>,
    pub shipped_on: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
}

/// Failed shipment results, latest change first.
pub async fn failed_shipments(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<FailedShipment>, StoreError> {
    Ok(sqlx::query_as!(
        FailedShipment,
        r#"SELECT id, shop_id, amazon_order_id, api_error, tracking_numbers, shipped_on, updated_at
           FROM shipping_instructions WHERE shop_id = ANY($1) AND api_status = 'failed'
           ORDER BY updated_at DESC LIMIT $2"#,
        shops,
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// A feed with no final result after [`domain::feed_stuck::STUCK_AFTER`].
#[derive(Debug, Clone)]
pub struct StuckFeed {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub feed_type: String,
    pub state: String,
    pub amazon_feed_id: Option<String>,
    pub processing_status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub poll_attempts: i32,
}

/// Feeds stuck at `now`, oldest first.
pub async fn stuck_feeds(
    conn: &mut PgConnection,
    shops: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<StuckFeed>, StoreError> {
    Ok(sqlx::query_as!(
        StuckFeed,
        r#"SELECT id, shop_id, feed_type, state, amazon_feed_id, processing_status, created_at, submitted_at,
                  poll_attempts
           FROM feed_submissions
           WHERE shop_id = ANY($1) AND state IN ('pending', 'in_flight', 'submitted')
             AND COALESCE(submitted_at, created_at) < $2
           ORDER BY created_at LIMIT $3"#,
        shops,
        feed_stuck::stuck_cutoff(now),
        LIST_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// Other attention entries of the API log from the last 7 days (cancellations after allocation
/// have their own section), newest first.
pub async fn other_entries(
    conn: &mut PgConnection,
    shops: &[Uuid],
) -> Result<Vec<Record>, StoreError> {
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, shop_id, run_id, action, level, amazon_order_id, sku, code, message, details, created_at
           FROM api_log
           WHERE shop_id = ANY($1) AND level = 'attention' AND created_at > now() - interval '7 days'
             AND code IS DISTINCT FROM $2
           ORDER BY id DESC LIMIT 200"#,
        shops,
        CANCELED_AFTER_ALLOCATION
    )
    .fetch_all(conn)
    .await?)
}
