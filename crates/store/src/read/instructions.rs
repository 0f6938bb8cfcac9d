//! タスク一覧: shipping instructions with the list's filters, one instruction's detail and its
//! lines with their products. Buyer and ship-to data are not here: [`crate::pii::read`].

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// Which instructions to list. Unset fields do not filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    /// Only these shops.
    pub shops: &'a [Uuid],
    /// Instruction status (`hold`, `awaiting_shipment`, ...).
    pub status: Option<&'a str>,
    /// Payment status (`unpaid`, `paid`).
    pub payment: Option<&'a str>,
    /// API status (`awaiting_print`, `printed`, `shipped`, `failed`).
    pub api: Option<&'a str>,
    /// Amazon marketplace id.
    pub marketplace_id: Option<&'a str>,
    /// Ordered (else imported) at or after.
    pub from: Option<DateTime<Utc>>,
    /// Ordered (else imported) before.
    pub to: Option<DateTime<Utc>>,
    pub amazon_order_id: Option<&'a str>,
    /// At most this many.
    pub limit: i64,
}

/// An instruction as the list shows it.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub amazon_order_id: Option<String>,
    pub marketplace_id: Option<String>,
    pub status: String,
    pub payment_status: String,
    pub api_status: String,
    pub api_error: Option<String>,
    pub payment_method: String,
    pub delivery_method_name: String,
    pub currency: Option<String>,
    pub order_total: Option<Decimal>,
    pub tracking_numbers: Vec<String>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub is_prime: bool,
    pub is_premium: bool,
    pub is_business: bool,
    pub is_gift: bool,
    /// The buyer chose a delivery window.
    pub scheduled: bool,
    /// Amazon's ship-by time (`LatestShipDate`).
    pub latest_ship_at: Option<DateTime<Utc>>,
    /// Lines of the instruction.
    pub lines: i64,
    /// Lines whose SKU is not in the mapping table.
    pub unmapped: i64,
}

/// Instructions, latest order first.
pub async fn list(conn: &mut PgConnection, f: &ListFilter<'_>) -> Result<Vec<ListRow>, StoreError> {
    Ok(sqlx::query_as!(
        ListRow,
        r#"SELECT si.id, si.shop_id, si.amazon_order_id, si.marketplace_id, si.status, si.payment_status,
                  si.api_status, si.api_error, si.payment_method, si.delivery_method_name, si.currency,
                  si.order_total, si.tracking_numbers, si.ordered_at, si.created_at, si.is_prime,
                  si.is_premium, si.is_business, si.is_gift,
                  (si.scheduled_delivery_from IS NOT NULL) AS "scheduled!", si.latest_ship_at,
                  (SELECT count(*) FROM instruction_lines l WHERE l.instruction_id = si.id) AS "lines!",
                  (SELECT count(*) FROM instruction_lines l WHERE l.instruction_id = si.id AND l.product_id IS NULL) AS "unmapped!"
           FROM shipping_instructions si
           WHERE si.shop_id = ANY($1)
             AND ($2::text IS NULL OR si.status = $2)
             AND ($3::text IS NULL OR si.payment_status = $3)
             AND ($4::text IS NULL OR si.api_status = $4)
             AND ($5::text IS NULL OR si.marketplace_id = $5)
             AND ($6::timestamptz IS NULL OR COALESCE(si.ordered_at, si.created_at) >= $6)
             AND ($7::timestamptz IS NULL OR COALESCE(si.ordered_at, si.created_at) < $7)
             AND ($8::text IS NULL OR si.amazon_order_id = $8)
           ORDER BY COALESCE(si.ordered_at, si.created_at) DESC, si.id DESC
           LIMIT $9"#,
        f.shops,
        f.status,
        f.payment,
        f.api,
        f.marketplace_id,
        f.from,
        f.to,
        f.amazon_order_id,
        f.limit,
    )
    .fetch_all(conn)
    .await?)
}

/// One instruction as its detail page shows it.
#[derive(Debug, Clone)]
pub struct Detail {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub amazon_order_id: Option<String>,
    pub marketplace_id: Option<String>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub payment_status: String,
    pub api_status: String,
    pub api_error: Option<String>,
    pub amazon_status: Option<String>,
    pub payment_method: String,
    /// The delivery method as recorded on the instruction.
    pub delivery_method_name: String,
    /// The delivery method's current name, when it still exists.
    pub dm_name: Option<String>,
    pub ship_service_level: Option<String>,
    pub currency: Option<String>,
    pub order_total: Option<Decimal>,
    /// Shipping charges of the order (not in the line totals).
    pub shipping_total: Option<Decimal>,
    /// Cash-on-delivery fee of the order (not in the line totals).
    pub cod_fee: Option<Decimal>,
    pub tracking_numbers: Vec<String>,
    pub shipped_on: Option<NaiveDate>,
    pub ship_to_country: Option<String>,
    /// When buyer and ship-to data were purged (Amazon's data protection policy).
    pub pii_purged_at: Option<DateTime<Utc>>,
    pub is_prime: bool,
    pub is_premium: bool,
    pub is_business: bool,
    pub is_gift: bool,
    pub earliest_ship_at: Option<DateTime<Utc>>,
    /// Amazon's ship-by time (`LatestShipDate`).
    pub latest_ship_at: Option<DateTime<Utc>>,
    pub earliest_delivery_at: Option<DateTime<Utc>>,
    pub latest_delivery_at: Option<DateTime<Utc>>,
    /// The delivery window the buyer chose.
    pub scheduled_delivery_from: Option<DateTime<Utc>>,
    pub scheduled_delivery_to: Option<DateTime<Utc>>,
}

/// An instruction by id.
pub async fn detail(conn: &mut PgConnection, id: Uuid) -> Result<Option<Detail>, StoreError> {
    Ok(sqlx::query_as!(
        Detail,
        r#"SELECT si.id, si.shop_id, si.amazon_order_id, si.marketplace_id, si.ordered_at, si.created_at,
                  si.status, si.payment_status, si.api_status, si.api_error, si.amazon_status, si.payment_method,
                  si.delivery_method_name, dm.name AS "dm_name?", si.ship_service_level, si.currency,
                  si.order_total, si.shipping_total, si.cod_fee, si.tracking_numbers, si.shipped_on,
                  si.ship_to_country, si.pii_purged_at, si.is_prime, si.is_premium, si.is_business, si.is_gift,
                  si.earliest_ship_at, si.latest_ship_at, si.earliest_delivery_at, si.latest_delivery_at,
                  si.scheduled_delivery_from, si.scheduled_delivery_to
           FROM shipping_instructions si
           LEFT JOIN delivery_methods dm ON dm.id = si.delivery_method_id
           WHERE si.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// A line with its mapped product.
#[derive(Debug, Clone)]
pub struct LineRow {
    pub line_no: i32,
    pub sku: String,
    /// Amazon's title.
    pub title: Option<String>,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
    pub line_total: Option<Decimal>,
    pub reserved_quantity: i32,
    pub amazon_order_item_id: Option<String>,
    /// `None` while the SKU is not in the mapping table.
    pub product_code: Option<String>,
    pub product_name: Option<String>,
    pub is_gift: bool,
    pub gift_wrap_level: Option<String>,
    /// The line's own COD fee.
    pub cod_fee: Option<Decimal>,
}

/// Lines of an instruction, by line number.
pub async fn lines(conn: &mut PgConnection, id: Uuid) -> Result<Vec<LineRow>, StoreError> {
    Ok(sqlx::query_as!(
        LineRow,
        r#"SELECT l.line_no, l.sku, l.title, l.quantity, l.unit_price, l.line_total, l.reserved_quantity,
                  l.amazon_order_item_id, p.code AS "product_code?", p.name AS "product_name?",
                  l.is_gift, l.gift_wrap_level, l.cod_fee
           FROM instruction_lines l LEFT JOIN products p ON p.id = l.product_id
           WHERE l.instruction_id = $1 ORDER BY l.line_no"#,
        id
    )
    .fetch_all(conn)
    .await?)
}
