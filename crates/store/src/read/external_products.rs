//! 外部商品 > 対応表: a shop's mapped SKUs with their product, handling days, free stock, share
//! and safety stock, what the next push sends, and the state of their last push; and the mapping as CSV rows (sku, product code, handling days).

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
    /// Share of the product's free stock in percent (none: not shared, the whole free stock).
    pub share_percent: Option<i16>,
    /// 安全在庫: units kept back from Amazon.
    pub safety_stock: i32,
    /// What the next push sends with today's stock ([`domain::stock::allocate`]).
    pub to_send: i32,
}

/// The shop's mapped SKUs, by SKU.
pub async fn list(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<ExternalProduct>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT e.sku, p.code AS product_code, p.name AS product_name, e.handling_days,
                  COALESCE(s.free, 0) AS "free!", e.push_state, e.push_error,
                  e.pushed_quantity, e.pushed_at, e.share_percent, e.safety_stock,
                  CASE WHEN e.share_percent IS NULL THEN '{}'::smallint[] ELSE ARRAY(
                      SELECT o.share_percent FROM external_products o
                      WHERE o.product_id = e.product_id AND o.id <> e.id AND o.share_percent IS NOT NULL
                      ORDER BY o.id) END AS "sibling_shares!: Vec<i16>",
                  CASE WHEN e.share_percent IS NULL THEN '{}'::integer[] ELSE ARRAY(
                      SELECT o.safety_stock FROM external_products o
                      WHERE o.product_id = e.product_id AND o.id <> e.id AND o.share_percent IS NOT NULL
                      ORDER BY o.id) END AS "sibling_safety!: Vec<i32>"
           FROM external_products e
           JOIN products p ON p.id = e.product_id
           LEFT JOIN stock s ON s.product_id = p.id
           WHERE e.shop_id = $1
           ORDER BY e.sku"#,
        shop_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ExternalProduct {
            to_send: crate::inventory::allotted(
                i64::from(r.free),
                r.share_percent,
                r.safety_stock,
                &r.sibling_shares,
                &r.sibling_safety,
            ),
            sku: r.sku,
            product_code: r.product_code,
            product_name: r.product_name,
            handling_days: r.handling_days,
            free: i64::from(r.free.max(0)),
            push_state: r.push_state,
            push_error: r.push_error,
            pushed_quantity: r.pushed_quantity,
            pushed_at: r.pushed_at,
            share_percent: r.share_percent,
            safety_stock: r.safety_stock,
        })
        .collect())
}
