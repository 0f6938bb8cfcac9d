//! 外部商品 > 対応表: a shop's mapped SKUs with their product, handling days, free stock and the
//! state of their last push; and the mapping as CSV rows (sku, product code, handling days).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// One mapped SKU as the external-product screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProduct {
    pub sku: String,
    pub product_code: String,
    pub product_name: String,
    /// 出荷作業日数 (none: Amazon's default, or Amazon's own value when the shop keeps it).
    pub handling_days: Option<i16>,
    /// フリー在庫数 now (on hand − reserved − allocated, never negative).
    pub free: i64,
    /// `never`, `sent`, `confirmed`, `failed`.
    pub push_state: String,
    pub push_error: Option<String>,
    pub pushed_quantity: Option<i32>,
    pub pushed_at: Option<DateTime<Utc>>,
}

/// The shop's mapped SKUs, by SKU.
pub async fn list(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<ExternalProduct>, StoreError> {
    Ok(sqlx::query_as!(
        ExternalProduct,
        r#"SELECT e.sku, p.code AS product_code, p.name AS product_name, e.handling_days,
                  GREATEST(COALESCE(s.free, 0), 0)::bigint AS "free!", e.push_state, e.push_error,
                  e.pushed_quantity, e.pushed_at
           FROM external_products e
           JOIN products p ON p.id = e.product_id
           LEFT JOIN stock s ON s.product_id = p.id
           WHERE e.shop_id = $1
           ORDER BY e.sku"#,
        shop_id
    )
    .fetch_all(conn)
    .await?)
}
