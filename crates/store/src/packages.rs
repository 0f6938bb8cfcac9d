//! The packages of a shipment as the warehouse recorded them (issue 21 item 2), and the shop's
//! switch that sends every one of them instead of the first tracking number.

use domain::packages::{Package, PackageItem};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Found, StoreError};

/// Replaces the packages of `instruction_id` (package numbers as given).
pub async fn record(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    packages: &[Package],
) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM shipment_packages WHERE instruction_id = $1",
        instruction_id
    )
    .execute(&mut *conn)
    .await?;
    for p in packages {
        let items = serde_json::to_value(&p.items)
            .map_err(|e| StoreError::Corrupt(format!("package items: {e}")))?;
        sqlx::query!(
            r#"INSERT INTO shipment_packages (instruction_id, package_no, tracking_number, external_delivery_method, items)
               VALUES ($1, $2, $3, $4, $5)"#,
            instruction_id,
            i16::try_from(p.number).map_err(|_| StoreError::Corrupt(format!("package number {}", p.number)))?,
            p.tracking_number,
            p.external_delivery_method,
            items
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The packages of an instruction, by number (empty when the warehouse recorded none).
pub async fn of(conn: &mut PgConnection, instruction_id: Uuid) -> Result<Vec<Package>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT package_no, tracking_number, external_delivery_method, items
           FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no"#,
        instruction_id
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let items: Vec<PackageItem> = serde_json::from_value(r.items).map_err(|e| {
                StoreError::Corrupt(format!(
                    "package {} of instruction {instruction_id}: items do not read: {e}",
                    r.package_no
                ))
            })?;
            Ok(Package {
                number: r.package_no as u16,
                tracking_number: r.tracking_number,
                external_delivery_method: r.external_delivery_method,
                items,
            })
        })
        .collect()
}

/// Whether the shop sends every package (`true`) or only the first tracking number (the seed's
/// rule, `false`).
pub async fn send_every_package(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<bool, StoreError> {
    sqlx::query_scalar!(
        "SELECT send_every_package FROM shops WHERE id = $1",
        shop_id
    )
    .fetch_optional(conn)
    .await?
    .found("shop", shop_id)
}

/// Sets [`send_every_package`].
pub async fn set_send_every_package(
    conn: &mut PgConnection,
    shop_id: Uuid,
    every: bool,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shops SET send_every_package = $2, updated_at = now() WHERE id = $1",
        shop_id,
        every
    )
    .execute(conn)
    .await?;
    Ok(())
}
