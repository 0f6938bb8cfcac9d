//! WMS catalog as order-ingest and status-sync use it: products, reservations of stock
//! (確保数), SKU → product look-ups in the external-product table, delivery methods and the
//! delivery rules (変換ロボット) that pick one for an imported order. Stock counts and the
//! mapping table itself are managed in [`crate::inventory`].
//!
//! Every change of free stock bumps `stock.change_seq` (inventory-sync pushes what changed)
//! and writes a `stock_changes` row.

use std::collections::HashMap;

use domain::delivery_rules::{DeliveryRule, RuleConditions};
use domain::inventory::StockLevels;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::{StoreError, map_unique};

/// A product.
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub code: String,
    pub name: String,
}

/// Creates a product (with an empty stock row).
pub async fn insert_product(
    conn: &mut PgConnection,
    shop_id: Uuid,
    code: &str,
    name: &str,
) -> Result<Product, StoreError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO products (id, shop_id, code, name) VALUES ($1, $2, $3, $4)",
        id,
        shop_id,
        code,
        name
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| map_unique(e, "product", code))?;
    sqlx::query!(
        "INSERT INTO stock (product_id, shop_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        id,
        shop_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(Product {
        id,
        shop_id,
        code: code.to_owned(),
        name: name.to_owned(),
    })
}

/// A product by its code.
pub async fn product_by_code(
    conn: &mut PgConnection,
    shop_id: Uuid,
    code: &str,
) -> Result<Product, StoreError> {
    sqlx::query_as!(
        Product,
        "SELECT id, shop_id, code, name FROM products WHERE shop_id = $1 AND code = $2",
        shop_id,
        code
    )
    .fetch_optional(conn)
    .await?
    .found("product", code)
}

/// A product with its stock, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct ProductStock {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub on_hand: i32,
    pub reserved: i32,
    pub allocated: i32,
    pub free: i32,
    pub change_seq: i64,
}

/// Every product of a shop with its stock, by code.
pub async fn list_products(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<ProductStock>, StoreError> {
    Ok(sqlx::query_as!(
        ProductStock,
        r#"SELECT p.id, p.code, p.name,
                  COALESCE(s.on_hand, 0) AS "on_hand!", COALESCE(s.reserved, 0) AS "reserved!",
                  COALESCE(s.allocated, 0) AS "allocated!", COALESCE(s.free, 0) AS "free!",
                  COALESCE(s.change_seq, 0) AS "change_seq!"
           FROM products p LEFT JOIN stock s ON s.product_id = p.id
           WHERE p.shop_id = $1 ORDER BY p.code"#,
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

/// Stock levels of a product (zero when it has no stock row yet).
pub async fn stock(conn: &mut PgConnection, product_id: Uuid) -> Result<StockLevels, StoreError> {
    let row = sqlx::query!(
        "SELECT on_hand, reserved, allocated FROM stock WHERE product_id = $1",
        product_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|r| StockLevels {
            on_hand: r.on_hand,
            reserved: r.reserved,
            allocated: r.allocated,
        })
        .unwrap_or_default())
}

/// Adds `quantity` to the reserved stock (確保数) of a product: free stock drops at once.
pub async fn reserve(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    reason: &str,
) -> Result<(), StoreError> {
    let one = Reservation {
        product_id,
        quantity,
        reason: reason.to_owned(),
    };
    reserve_many(conn, shop_id, &[one]).await
}

/// One reservation of [`reserve_many`]: `quantity` of `product_id` for `reason`.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub product_id: Uuid,
    pub quantity: i32,
    pub reason: String,
}

/// [`reserve`] for many lines in three statements: each product's stock row is updated once
/// (the quantities summed, products in id order so that concurrent writers lock them in the
/// same order), and every line gets its own `stock_changes` row.
pub async fn reserve_many(
    conn: &mut PgConnection,
    shop_id: Uuid,
    reservations: &[Reservation],
) -> Result<(), StoreError> {
    let lines: Vec<&Reservation> = reservations.iter().filter(|r| r.quantity > 0).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let mut per_product = std::collections::BTreeMap::<Uuid, i32>::new();
    for r in &lines {
        *per_product.entry(r.product_id).or_default() += r.quantity;
    }
    let (products, quantities): (Vec<Uuid>, Vec<i32>) = per_product.into_iter().unzip();
    sqlx::query!(
        r#"INSERT INTO stock (product_id, shop_id, reserved)
           SELECT p, $2, q FROM UNNEST($1::uuid[], $3::int4[]) AS t(p, q)
           ON CONFLICT (product_id) DO UPDATE
              SET reserved = stock.reserved + EXCLUDED.reserved,
                  change_seq = nextval('stock_change_seq'), changed_at = now()"#,
        &products,
        shop_id,
        &quantities
    )
    .execute(&mut *conn)
    .await?;
    let products: Vec<Uuid> = lines.iter().map(|r| r.product_id).collect();
    let quantities: Vec<i32> = lines.iter().map(|r| r.quantity).collect();
    let reasons: Vec<String> = lines.iter().map(|r| r.reason.clone()).collect();
    sqlx::query!(
        r#"INSERT INTO stock_changes (shop_id, product_id, kind, delta_reserved, reason)
           SELECT $1, p, 'reserve', q, r FROM UNNEST($2::uuid[], $3::int4[], $4::text[]) AS t(p, q, r)"#,
        shop_id,
        &products,
        &quantities,
        &reasons
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes `quantity` off the allocated stock of a product (never below zero): an allocated
/// instruction cancelled before it left (free stock rises).
pub async fn release_allocated(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    reason: &str,
) -> Result<(), StoreError> {
    if quantity <= 0 {
        return Ok(());
    }
    sqlx::query!(
        r#"UPDATE stock SET allocated = GREATEST(0, allocated - $2),
                          change_seq = nextval('stock_change_seq'), changed_at = now()
                    WHERE product_id = $1"#,
        product_id,
        quantity
    )
    .execute(&mut *conn)
    .await?;
    record_change(
        conn,
        shop_id,
        product_id,
        "release",
        (0, 0, -quantity),
        reason,
    )
    .await
}

/// Takes `quantity` off the reserved stock of a product (never below zero): free stock rises.
pub async fn release(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    reason: &str,
) -> Result<(), StoreError> {
    if quantity <= 0 {
        return Ok(());
    }
    let released = sqlx::query_scalar!(
        r#"WITH old AS (SELECT reserved FROM stock WHERE product_id = $1 FOR UPDATE)
           UPDATE stock s SET reserved = GREATEST(0, s.reserved - $2),
                  change_seq = nextval('stock_change_seq'), changed_at = now()
           FROM old WHERE s.product_id = $1
           RETURNING old.reserved - s.reserved AS "released!""#,
        product_id,
        quantity
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(0);
    record_change(
        conn,
        shop_id,
        product_id,
        "release",
        (0, -released, 0),
        reason,
    )
    .await
}

async fn record_change(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    kind: &str,
    (on_hand, reserved, allocated): (i32, i32, i32),
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO stock_changes (shop_id, product_id, kind, delta_on_hand, delta_reserved, delta_allocated, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        shop_id,
        product_id,
        kind,
        on_hand,
        reserved,
        allocated,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The products mapped to `skus` (unmapped SKUs are absent from the result).
pub async fn products_for_skus(
    conn: &mut PgConnection,
    shop_id: Uuid,
    skus: &[String],
) -> Result<HashMap<String, Uuid>, StoreError> {
    let rows = sqlx::query!(
        "SELECT sku, product_id FROM external_products WHERE shop_id = $1 AND sku = ANY($2)",
        shop_id,
        skus
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.sku, r.product_id)).collect())
}

/// A delivery method (配送方法).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryMethod {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub external_delivery_method: Option<String>,
}

/// Creates a delivery method, or updates the name of an existing code. Returns it.
pub async fn upsert_delivery_method(
    conn: &mut PgConnection,
    shop_id: Uuid,
    code: &str,
    name: &str,
    external_delivery_method: Option<&str>,
) -> Result<DeliveryMethod, StoreError> {
    Ok(sqlx::query_as!(
        DeliveryMethod,
        r#"INSERT INTO delivery_methods (id, shop_id, code, name, external_delivery_method)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (shop_id, code) DO UPDATE
              SET name = EXCLUDED.name,
                  external_delivery_method = COALESCE(EXCLUDED.external_delivery_method, delivery_methods.external_delivery_method)
           RETURNING id, code, name, external_delivery_method"#,
        Uuid::now_v7(),
        shop_id,
        code,
        name,
        external_delivery_method
    )
    .fetch_one(conn)
    .await?)
}

/// A delivery method by code.
pub async fn delivery_method_by_code(
    conn: &mut PgConnection,
    shop_id: Uuid,
    code: &str,
) -> Result<DeliveryMethod, StoreError> {
    sqlx::query_as!(
        DeliveryMethod,
        "SELECT id, code, name, external_delivery_method FROM delivery_methods WHERE shop_id = $1 AND code = $2",
        shop_id,
        code
    )
    .fetch_optional(conn)
    .await?
    .found("delivery method", code)
}

/// A stored delivery rule with its target.
/// The shop's delivery methods, by code.
pub async fn list_delivery_methods(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<DeliveryMethod>, StoreError> {
    Ok(sqlx::query_as!(
        DeliveryMethod,
        "SELECT id, code, name, external_delivery_method FROM delivery_methods WHERE shop_id = $1 ORDER BY code",
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRecord {
    pub id: Uuid,
    pub position: i32,
    pub name: String,
    pub conditions: serde_json::Value,
    pub enabled: bool,
    pub delivery_method: DeliveryMethod,
}

/// Adds a rule at `position` (unique per shop).
pub async fn add_rule(
    conn: &mut PgConnection,
    shop_id: Uuid,
    position: i32,
    name: &str,
    conditions: &RuleConditions,
    delivery_method_id: Uuid,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let json = serde_json::to_value(conditions)
        .map_err(|e| StoreError::Corrupt(format!("rule conditions: {e}")))?;
    sqlx::query!(
        r#"INSERT INTO delivery_rules (id, shop_id, position, name, conditions, delivery_method_id)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        id,
        shop_id,
        position,
        name,
        json,
        delivery_method_id
    )
    .execute(conn)
    .await
    .map_err(|e| map_unique(e, "delivery rule at position", &position.to_string()))?;
    Ok(id)
}

/// Removes the rule at `position`. Returns whether one existed.
pub async fn remove_rule(
    conn: &mut PgConnection,
    shop_id: Uuid,
    position: i32,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM delivery_rules WHERE shop_id = $1 AND position = $2",
        shop_id,
        position
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every rule of a shop, by position.
pub async fn list_rules(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<RuleRecord>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.position, r.name, r.conditions, r.enabled,
                  m.id AS method_id, m.code, m.name AS method_name, m.external_delivery_method
           FROM delivery_rules r JOIN delivery_methods m ON m.id = r.delivery_method_id
           WHERE r.shop_id = $1 ORDER BY r.position"#,
        shop_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RuleRecord {
            id: r.id,
            position: r.position,
            name: r.name,
            conditions: r.conditions,
            enabled: r.enabled,
            delivery_method: DeliveryMethod {
                id: r.method_id,
                code: r.code,
                name: r.method_name,
                external_delivery_method: r.external_delivery_method,
            },
        })
        .collect())
}

/// The enabled rules of a shop in the domain's shape, ready for
/// [`domain::delivery_rules::first_match`]. A rule whose stored conditions no longer parse is
/// an error (it must not be skipped silently: a later rule would win instead).
pub async fn active_rules(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<DeliveryRule<DeliveryMethod>>, StoreError> {
    list_rules(conn, shop_id)
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .map(|r| {
            let conditions: RuleConditions = serde_json::from_value(r.conditions).map_err(|e| {
                StoreError::Corrupt(format!("delivery rule {} ({}): {e}", r.position, r.name))
            })?;
            Ok(DeliveryRule {
                position: r.position,
                conditions,
                target: r.delivery_method,
            })
        })
        .collect()
}
