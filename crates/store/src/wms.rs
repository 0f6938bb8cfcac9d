//! Warehouse operations on shipping instructions that the WMS (or an operator) performs:
//! allocation (引当) and shipping (出荷). They keep stock consistent: reserved (確保数) becomes
//! allocated, and allocated stock leaves on-hand when the parcel ships.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

async fn locked(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<(Uuid, String), StoreError> {
    let row = sqlx::query!(
        "SELECT id, status FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2 FOR NO KEY UPDATE",
        shop_id,
        amazon_order_id
    )
    .fetch_optional(conn)
    .await?
    .found("instruction for order", amazon_order_id)?;
    Ok((row.id, row.status))
}

/// Allocates an instruction awaiting shipment (出荷待ち → 引当済み): its lines' reserved quantity
/// moves to allocated.
pub async fn allocate(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<Uuid, StoreError> {
    let (id, status) = locked(conn, shop_id, amazon_order_id).await?;
    if status != "awaiting_shipment" {
        return Err(StoreError::Conflict(format!(
            "order {amazon_order_id} is {status}: only instructions awaiting shipment (出荷待ち) can be allocated"
        )));
    }
    sqlx::query!(
        r#"UPDATE stock s SET reserved = GREATEST(s.reserved - l.reserved_quantity, 0), allocated = s.allocated + l.quantity,
                  changed_at = now()
           FROM (SELECT product_id, sum(reserved_quantity)::int AS reserved_quantity, sum(quantity)::int AS quantity
                 FROM instruction_lines WHERE instruction_id = $1 AND product_id IS NOT NULL GROUP BY product_id) l
           WHERE s.product_id = l.product_id"#,
        id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE instruction_lines SET reserved_quantity = 0 WHERE instruction_id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE shipping_instructions SET status = 'allocated', updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Ships an allocated instruction (引当済み → 出荷済み) on `date` with its tracking numbers
/// (the first is the one reported to Amazon). Allocated stock leaves on-hand.
pub async fn ship(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    tracking_numbers: &[String],
    date: NaiveDate,
) -> Result<Uuid, StoreError> {
    let tracking: Vec<String> = tracking_numbers
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if tracking.is_empty() {
        return Err(StoreError::Conflict(
            "at least one tracking number is needed to ship".into(),
        ));
    }
    let (id, status) = locked(conn, shop_id, amazon_order_id).await?;
    ship_locked(conn, id, &status, amazon_order_id, &tracking, date).await?;
    Ok(id)
}

/// [`ship`] of an instruction its caller has locked ([`locked`]).
async fn ship_locked(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    amazon_order_id: &str,
    tracking: &[String],
    date: NaiveDate,
) -> Result<(), StoreError> {
    if status != "allocated" {
        return Err(StoreError::Conflict(format!(
            "order {amazon_order_id} is {status}: allocate it first"
        )));
    }
    sqlx::query!(
        r#"UPDATE stock s SET allocated = GREATEST(s.allocated - l.quantity, 0), on_hand = GREATEST(s.on_hand - l.quantity, 0),
                  changed_at = now()
           FROM (SELECT product_id, sum(quantity)::int AS quantity FROM instruction_lines
                 WHERE instruction_id = $1 AND product_id IS NOT NULL GROUP BY product_id) l
           WHERE s.product_id = l.product_id"#,
        id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"UPDATE shipping_instructions SET status = 'shipped', tracking_numbers = $2, shipped_on = $3, shipped_at = now(),
                  updated_at = now()
           WHERE id = $1"#,
        id,
        tracking,
        date
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ships an allocated instruction as [`ship`] does, with the packages the warehouse packed
/// (issue 21 item 2): their tracking numbers become the instruction's, in package order, and the
/// packages are kept for a shop that sends every package. Refused, with every problem named and
/// nothing changed, when the packages ship more of an item than was ordered or an item that is
/// not on the order ([`domain::packages::problems`]).
pub async fn ship_packages(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    packages: &[domain::packages::Package],
    date: NaiveDate,
) -> Result<Uuid, StoreError> {
    let (id, status) = locked(conn, shop_id, amazon_order_id).await?;
    let ordered: Vec<(String, u32)> = crate::shipments::lines(conn, id)
        .await?
        .into_iter()
        .map(|(item, q)| (item, q.max(0) as u32))
        .collect();
    let problems = domain::packages::problems(packages, &ordered);
    if !problems.is_empty() {
        return Err(StoreError::Conflict(format!(
            "the packages of order {amazon_order_id} do not fit the order: {}",
            problems.join("; ")
        )));
    }
    let tracking: Vec<String> = packages
        .iter()
        .map(|p| p.tracking_number.trim().to_owned())
        .collect();
    ship_locked(conn, id, &status, amazon_order_id, &tracking, date).await?;
    crate::packages::record(conn, id, packages).await?;
    Ok(id)
}
