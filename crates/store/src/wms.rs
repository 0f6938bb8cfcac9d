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

/// What [`ship_packages`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesShipped {
    pub instruction_id: Uuid,
    /// The packages recorded now, with the numbers they got (after the earlier ones).
    pub packages: Vec<domain::packages::Package>,
    /// Packages recorded on earlier days (a partially shipped order).
    pub earlier: usize,
    /// What of the order has not left yet (order item id, quantity); empty: it left whole and
    /// the instruction is shipped (出荷済み).
    pub remaining: Vec<(String, u32)>,
}

/// Ships an allocated instruction as [`ship`] does, with the packages the warehouse packed
/// (issue 21 item 2): their tracking numbers become the instruction's, in package order, and the
/// packages are kept for a shop that sends every package. Refused, with every problem named and
/// nothing changed, when the packages ship more of an item than was ordered or an item that is
/// not on the order ([`domain::packages::problems`]).
///
/// For a shop that sends every package, packages that cover only part of the order are a
/// partial shipment: the instruction stays allocated (引当済み, partially shipped) for the rest,
/// only what left leaves allocated and on-hand stock, and later calls add packages (numbers
/// continue) checked with the earlier ones ([`domain::packages::problems_adding`]); the call
/// whose packages complete the order ships the instruction (出荷済み). Adding packages to an order
/// they already cover is refused.
pub async fn ship_packages(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    packages: &[domain::packages::Package],
    date: NaiveDate,
) -> Result<PackagesShipped, StoreError> {
    let (id, status) = locked(conn, shop_id, amazon_order_id).await?;
    let ordered: Vec<(String, u32)> = crate::shipments::lines(conn, id)
        .await?
        .into_iter()
        .map(|(item, q)| (item, q.max(0) as u32))
        .collect();
    let every = crate::packages::send_every_package(conn, shop_id).await?;
    let earlier = crate::packages::of(conn, id).await?;
    let partial_before = status == "allocated" && !earlier.is_empty();
    if !every {
        if partial_before {
            return Err(StoreError::Conflict(format!(
                "order {amazon_order_id} is partially shipped: packages {} left while the shop sent every package; \
                 switch it back on (`ctl shop set --send-every-package true`) to record the rest",
                numbers(&earlier)
            )));
        }
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
        return Ok(PackagesShipped {
            instruction_id: id,
            packages: packages.to_vec(),
            earlier: 0,
            remaining: Vec::new(),
        });
    }

    // Every package: numbers continue after the packages that left before.
    if status != "allocated" {
        if status == "shipped" && !earlier.is_empty() {
            return Err(StoreError::Conflict(format!(
                "order {amazon_order_id} is shipped (出荷済み): it left whole with packages {}; no package can be added",
                numbers(&earlier)
            )));
        }
        return Err(StoreError::Conflict(format!(
            "order {amazon_order_id} is {status}: allocate it first"
        )));
    }
    let first = earlier.iter().map(|p| p.number).max().unwrap_or(0);
    let new: Vec<domain::packages::Package> = packages
        .iter()
        .enumerate()
        .map(|(n, p)| domain::packages::Package {
            number: first + n as u16 + 1,
            tracking_number: p.tracking_number.trim().to_owned(),
            ..p.clone()
        })
        .collect();
    let problems = domain::packages::problems_adding(&earlier, &new, &ordered);
    if !problems.is_empty() {
        let what = if earlier.is_empty() {
            String::new()
        } else {
            format!(" with packages {} recorded before", numbers(&earlier))
        };
        return Err(StoreError::Conflict(format!(
            "the packages of order {amazon_order_id} do not fit the order{what}: {}",
            problems.join("; ")
        )));
    }
    let all: Vec<domain::packages::Package> = earlier.iter().chain(&new).cloned().collect();
    let remaining = domain::packages::remaining(&all, &ordered);
    let tracking: Vec<String> = all.iter().map(|p| p.tracking_number.clone()).collect();
    if earlier.is_empty() && remaining.is_empty() {
        // The whole order at once: as the full ship.
        ship_locked(conn, id, &status, amazon_order_id, &tracking, date).await?;
    } else {
        leave_stock(conn, id, &new, remaining.is_empty()).await?;
        if remaining.is_empty() {
            sqlx::query!(
                r#"UPDATE shipping_instructions SET status = 'shipped', tracking_numbers = $2, shipped_on = $3, shipped_at = now(),
                          updated_at = now()
                   WHERE id = $1"#,
                id,
                &tracking,
                date
            )
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::query!(
                "UPDATE shipping_instructions SET tracking_numbers = $2, updated_at = now() WHERE id = $1",
                id,
                &tracking
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    crate::packages::add(conn, id, &new, date).await?;
    crate::shipments::more_packages_waiting(conn, id).await?;
    Ok(PackagesShipped {
        instruction_id: id,
        packages: new,
        earlier: earlier.len(),
        remaining,
    })
}

/// Stock of `packages` that left (a partial shipment, or the rest of one): their quantities
/// leave allocated and on-hand; with `last`, lines without an Amazon order item (never in a
/// package) leave whole, as the full ship takes them.
async fn leave_stock(
    conn: &mut PgConnection,
    id: Uuid,
    packages: &[domain::packages::Package],
    last: bool,
) -> Result<(), StoreError> {
    let mut items: Vec<String> = Vec::new();
    let mut quantities: Vec<i32> = Vec::new();
    for p in packages {
        for i in &p.items {
            items.push(i.order_item_id.clone());
            quantities.push(i32::try_from(i.quantity).unwrap_or(i32::MAX));
        }
    }
    sqlx::query!(
        r#"UPDATE stock s SET allocated = GREATEST(s.allocated - l.quantity, 0), on_hand = GREATEST(s.on_hand - l.quantity, 0),
                  changed_at = now()
           FROM (SELECT il.product_id, sum(x.quantity)::int AS quantity
                 FROM unnest($2::text[], $3::int[]) AS x(item, quantity)
                 JOIN instruction_lines il ON il.instruction_id = $1 AND il.amazon_order_item_id = x.item
                 WHERE il.product_id IS NOT NULL GROUP BY il.product_id) l
           WHERE s.product_id = l.product_id"#,
        id,
        &items,
        &quantities
    )
    .execute(&mut *conn)
    .await?;
    if last {
        sqlx::query!(
            r#"UPDATE stock s SET allocated = GREATEST(s.allocated - l.quantity, 0), on_hand = GREATEST(s.on_hand - l.quantity, 0),
                      changed_at = now()
               FROM (SELECT product_id, sum(quantity)::int AS quantity FROM instruction_lines
                     WHERE instruction_id = $1 AND product_id IS NOT NULL AND amazon_order_item_id IS NULL
                     GROUP BY product_id) l
               WHERE s.product_id = l.product_id"#,
            id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn numbers(packages: &[domain::packages::Package]) -> String {
    packages
        .iter()
        .map(|p| p.number.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
