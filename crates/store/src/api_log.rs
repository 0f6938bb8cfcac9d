//! APIログ: what each action did, per shop, readable by an operator. Never holds PII: callers
//! pass order ids and SKUs, Amazon's codes and messages, never names or addresses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// Severity of an entry. `Attention` means an operator must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Error,
    Attention,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Attention => "attention",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Self::Info),
            "warning" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            "attention" => Ok(Self::Attention),
            _ => Err(format!(
                "unknown level {s:?}: expected info, warning, error or attention"
            )),
        }
    }
}

/// An entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub shop_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub action: &'a str,
    pub level: Level,
    pub amazon_order_id: Option<&'a str>,
    pub sku: Option<&'a str>,
    pub code: Option<&'a str>,
    pub message: &'a str,
    pub details: Option<serde_json::Value>,
}

impl<'a> Entry<'a> {
    /// A plain entry; set the optional fields with struct update syntax.
    pub fn new(shop_id: Option<Uuid>, action: &'a str, level: Level, message: &'a str) -> Self {
        Self {
            shop_id,
            run_id: None,
            action,
            level,
            amazon_order_id: None,
            sku: None,
            code: None,
            message,
            details: None,
        }
    }
}

/// Writes an entry.
pub async fn write(conn: &mut PgConnection, e: &Entry<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO api_log (shop_id, run_id, action, level, amazon_order_id, sku, code, message, details)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"#,
        e.shop_id,
        e.run_id,
        e.action,
        e.level.as_str(),
        e.amazon_order_id,
        e.sku,
        e.code,
        e.message,
        e.details
    )
    .fetch_one(conn)
    .await?)
}

/// Writes `e` (an entry about one Amazon order: `shop_id`, `amazon_order_id` and `code` set)
/// once per state of that order on Amazon: `amazon_last_updated` goes to the entry's details, and
/// an entry with the same shop, order, code and Amazon update time already logged makes this a
/// no-op. Returns whether the entry was new (e.g. status-sync's `attention` entries: a
/// cancellation after allocation, a buyer's cancellation request).
pub async fn write_once_per_amazon_update(
    conn: &mut PgConnection,
    e: &Entry<'_>,
    amazon_last_updated: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let stamp = amazon_last_updated.to_rfc3339();
    let seen: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM api_log WHERE shop_id = $1 AND amazon_order_id = $2 AND code = $3
                          AND details->>'amazon_last_updated' = $4) AS "seen!""#,
        e.shop_id,
        e.amazon_order_id,
        e.code,
        stamp
    )
    .fetch_one(&mut *conn)
    .await?;
    if seen {
        return Ok(false);
    }
    write(
        conn,
        &Entry {
            details: Some(serde_json::json!({"amazon_last_updated": stamp})),
            ..e.clone()
        },
    )
    .await?;
    Ok(true)
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: i64,
    pub shop_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub action: String,
    pub level: String,
    pub amazon_order_id: Option<String>,
    pub sku: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// Filter for [`query`]. Unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub shop_id: Option<Uuid>,
    /// Only entries of these shops (entries with no shop are left out).
    pub shop_ids: Option<Vec<Uuid>>,
    pub run_id: Option<Uuid>,
    pub action: Option<String>,
    pub level: Option<String>,
    pub amazon_order_id: Option<String>,
    pub sku: Option<String>,
    /// Only entries with this code (e.g. `feed_stuck`).
    pub code: Option<String>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

/// Newest first, unless `after_id` is set (then oldest first, for tailing).
pub async fn query(conn: &mut PgConnection, f: &Filter) -> Result<Vec<Record>, StoreError> {
    let limit = if f.limit <= 0 {
        100
    } else {
        f.limit.min(10_000)
    };
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, shop_id, run_id, action, level, amazon_order_id, sku, code, message, details, created_at
           FROM api_log
           WHERE ($1::uuid IS NULL OR shop_id = $1)
             AND ($2::uuid IS NULL OR run_id = $2)
             AND ($3::text IS NULL OR action = $3)
             AND ($4::text IS NULL OR level = $4)
             AND ($5::text IS NULL OR amazon_order_id = $5)
             AND ($6::text IS NULL OR sku = $6)
             AND ($7::bigint IS NULL OR id > $7)
             AND ($9::uuid[] IS NULL OR shop_id = ANY($9))
             AND ($10::text IS NULL OR code = $10)
           ORDER BY CASE WHEN $7::bigint IS NULL THEN -id ELSE id END
           LIMIT $8"#,
        f.shop_id,
        f.run_id,
        f.action,
        f.level,
        f.amazon_order_id,
        f.sku,
        f.after_id,
        limit,
        f.shop_ids.as_deref(),
        f.code,
    )
    .fetch_all(conn)
    .await?)
}

/// Refuses a command for a shop that does not exist: one API-log error naming the shop and the
/// command, so the operator sees why nothing happened (the caller then acknowledges the message).
pub async fn refuse_unknown_shop(
    conn: &mut PgConnection,
    action: &str,
    shop_id: Uuid,
    command_id: Uuid,
) -> Result<(), StoreError> {
    let message =
        format!("trigger {command_id} refused: shop {shop_id} does not exist; nothing was done");
    write(
        conn,
        &Entry {
            code: Some("unknown_shop"),
            details: Some(serde_json::json!({"shop_id": shop_id, "command_id": command_id})),
            ..Entry::new(None, action, Level::Error, &message)
        },
    )
    .await?;
    tracing::warn!(%shop_id, action, "trigger for an unknown shop refused");
    Ok(())
}

/// Whether the shop exists; when it does not, the refusal is written (see
/// [`refuse_unknown_shop`]) and `false` is returned.
pub async fn shop_known_or_refused(
    conn: &mut PgConnection,
    action: &str,
    shop_id: Uuid,
    command_id: Uuid,
) -> Result<bool, StoreError> {
    let known = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM shops WHERE id = $1) AS \"known!\"",
        shop_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !known {
        refuse_unknown_shop(conn, action, shop_id, command_id).await?;
    }
    Ok(known)
}
