//! ダッシュボード: per-day figures in the console's time zone and the tiles' counts.
//!
//! Days are the operator's calendar days: `tz` is an IANA zone name (e.g. `Asia/Tokyo`) and every
//! `since` is the first instant of the first day shown.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A count for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub day: NaiveDate,
    pub n: i64,
}

/// Instructions imported from Amazon per day.
pub async fn imported_per_day(
    conn: &mut PgConnection,
    shops: &[Uuid],
    tz: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DayCount>, StoreError> {
    Ok(sqlx::query_as!(
        DayCount,
        r#"SELECT (created_at AT TIME ZONE $2)::date AS "day!", count(*) AS "n!"
           FROM shipping_instructions
           WHERE shop_id = ANY($1) AND source = 'amazon_api' AND created_at >= $3 GROUP BY 1"#,
        shops,
        tz,
        since
    )
    .fetch_all(conn)
    .await?)
}

/// Instructions shipped per day.
pub async fn shipped_per_day(
    conn: &mut PgConnection,
    shops: &[Uuid],
    tz: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DayCount>, StoreError> {
    Ok(sqlx::query_as!(
        DayCount,
        r#"SELECT (shipped_at AT TIME ZONE $2)::date AS "day!", count(*) AS "n!"
           FROM shipping_instructions
           WHERE shop_id = ANY($1) AND shipped_at >= $3 GROUP BY 1"#,
        shops,
        tz,
        since
    )
    .fetch_all(conn)
    .await?)
}

/// A run, reduced to what the charts add up.
#[derive(Debug, Clone)]
pub struct RunOfDay {
    /// The day the run started.
    pub day: NaiveDate,
    pub action: String,
    pub status: String,
    pub counts: serde_json::Value,
    pub amazon_calls: i32,
}

/// Runs started since `since`, oldest first, at most `limit`.
pub async fn runs_per_day(
    conn: &mut PgConnection,
    shops: &[Uuid],
    tz: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<RunOfDay>, StoreError> {
    Ok(sqlx::query_as!(
        RunOfDay,
        r#"SELECT (started_at AT TIME ZONE $2)::date AS "day!", action, status, counts, amazon_calls
           FROM action_runs WHERE shop_id = ANY($1) AND started_at >= $3
           ORDER BY started_at LIMIT $4"#,
        shops,
        tz,
        since,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Per-message feed results of the feeds that finished on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedResultsOfDay {
    pub day: NaiveDate,
    pub ok: i64,
    pub warn: i64,
    pub err: i64,
}

/// Feed results per day, oldest day first.
pub async fn feed_results_per_day(
    conn: &mut PgConnection,
    shops: &[Uuid],
    tz: &str,
    since: DateTime<Utc>,
) -> Result<Vec<FeedResultsOfDay>, StoreError> {
    Ok(sqlx::query_as!(
        FeedResultsOfDay,
        r#"SELECT (fs.finished_at AT TIME ZONE $2)::date AS "day!",
                  count(*) FILTER (WHERE fm.result = 'success') AS "ok!",
                  count(*) FILTER (WHERE fm.result = 'warning') AS "warn!",
                  count(*) FILTER (WHERE fm.result = 'error') AS "err!"
           FROM feed_submissions fs JOIN feed_messages fm ON fm.feed_submission_id = fs.id
           WHERE fs.shop_id = ANY($1) AND fs.finished_at >= $3 GROUP BY 1 ORDER BY 1"#,
        shops,
        tz,
        since
    )
    .fetch_all(conn)
    .await?)
}

/// The dashboard's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiles {
    /// Instructions not shipped or canceled yet (保留, 出荷待ち, 引当済み).
    pub open_instructions: i64,
    /// Open items of the attention list ([`super::attention::count`]).
    pub attention: i64,
    /// Shops whose refresh token Amazon refuses.
    pub needs_reauthorization: i64,
}

/// The tiles' counts at `now`.
pub async fn tiles(
    conn: &mut PgConnection,
    shops: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Tiles, StoreError> {
    let open_instructions = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM shipping_instructions
           WHERE shop_id = ANY($1) AND status IN ('hold', 'awaiting_shipment', 'allocated')"#,
        shops
    )
    .fetch_one(&mut *conn)
    .await?;
    let attention = super::attention::count(&mut *conn, shops, now).await?;
    let needs_reauthorization = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM shops WHERE id = ANY($1) AND auth_status = 'needs_reauthorization'"#,
        shops
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Tiles {
        open_instructions,
        attention,
        needs_reauthorization,
    })
}
