//! The packages of a shipment as the warehouse recorded them (issue 21 item 2), and the shop's
//! switch that sends every one of them instead of the first tracking number.

use chrono::{DateTime, NaiveDate, Utc};
use domain::ApiStatus;
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
    Ok(states(conn, instruction_id)
        .await?
        .into_iter()
        .map(|s| s.package)
        .collect())
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

/// A recorded package with the day it left and its state at Amazon (every-package mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageState {
    pub package: Package,
    /// The day it left; `None` when recorded without one (the instruction's day).
    pub shipped_on: Option<NaiveDate>,
    /// Not sent (印刷待ち), in a feed Amazon accepted (印刷済み), confirmed (出荷済み), or
    /// refused (失敗, with Amazon's message in `api_error`).
    pub api_status: ApiStatus,
    pub api_error: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

impl PackageState {
    /// Not confirmed by Amazon and not waiting for a feed's result: a run sends it.
    pub fn unsent(&self) -> bool {
        matches!(
            self.api_status,
            ApiStatus::AwaitingPrint | ApiStatus::Failed
        )
    }
}

/// The packages of an instruction with their state, by number.
pub async fn states(
    conn: &mut PgConnection,
    instruction_id: Uuid,
) -> Result<Vec<PackageState>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT package_no, tracking_number, external_delivery_method, items, shipped_on, api_status, api_error,
                  created_at
           FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no"#,
        instruction_id
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let corrupt = |what: String| {
                StoreError::Corrupt(format!(
                    "package {} of instruction {instruction_id}: {what}",
                    r.package_no
                ))
            };
            let items: Vec<PackageItem> = serde_json::from_value(r.items)
                .map_err(|e| corrupt(format!("items do not read: {e}")))?;
            let api_status: ApiStatus =
                r.api_status.parse().map_err(|e| corrupt(format!("{e}")))?;
            Ok(PackageState {
                package: Package {
                    number: r.package_no as u16,
                    tracking_number: r.tracking_number,
                    external_delivery_method: r.external_delivery_method,
                    items,
                },
                shipped_on: r.shipped_on,
                api_status,
                api_error: r.api_error,
                recorded_at: r.created_at,
            })
        })
        .collect()
}

/// Adds `packages` (numbered by the caller, after the recorded ones) that left on `date`: not
/// sent yet.
pub async fn add(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    packages: &[Package],
    date: NaiveDate,
) -> Result<(), StoreError> {
    for p in packages {
        let items = serde_json::to_value(&p.items)
            .map_err(|e| StoreError::Corrupt(format!("package items: {e}")))?;
        sqlx::query!(
            r#"INSERT INTO shipment_packages (instruction_id, package_no, tracking_number, external_delivery_method, items, shipped_on)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            instruction_id,
            i16::try_from(p.number).map_err(|_| StoreError::Corrupt(format!("package number {}", p.number)))?,
            p.tracking_number,
            p.external_delivery_method,
            items,
            date
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// confirmShipment of one package: confirmed (`Ok`) or refused with Amazon's message.
pub async fn set_confirmed(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    package_no: u16,
    result: Result<(), &str>,
) -> Result<(), StoreError> {
    let (status, error) = match result {
        Ok(()) => (ApiStatus::Shipped, None),
        Err(e) => (ApiStatus::Failed, Some(e)),
    };
    sqlx::query!(
        r#"UPDATE shipment_packages SET api_status = $3, api_error = $4
           WHERE instruction_id = $1 AND package_no = $2"#,
        instruction_id,
        package_no as i16,
        status.as_str(),
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Amazon accepted the feed `submission`: the packages its messages carried are sent (印刷済み).
pub async fn mark_sent(conn: &mut PgConnection, submission: Uuid) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"UPDATE shipment_packages sp SET api_status = 'printed', api_error = NULL
           FROM feed_messages fm
           WHERE fm.feed_submission_id = $1 AND fm.instruction_id = sp.instruction_id
             AND fm.package_no = sp.package_no AND sp.api_status IN ('awaiting_print', 'failed')"#,
        submission
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The results of `submission`'s messages for the packages of `instruction` it carried: each
/// confirmed (success, warning) or failed with Amazon's message (`failure` when the feed failed
/// whole, without a result per message). Returns how many packages changed (0: the messages
/// carried the whole order, not packages).
pub async fn apply_feed_results(
    conn: &mut PgConnection,
    submission: Uuid,
    instruction_id: Uuid,
    failure: Option<&str>,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"UPDATE shipment_packages sp
           SET api_status = CASE WHEN fm.result = 'error' OR (fm.result = 'pending' AND $3::text IS NOT NULL)
                                 THEN 'failed' ELSE 'shipped' END,
               api_error = CASE WHEN fm.result = 'error' THEN COALESCE(fm.result_message, $3, 'refused by Amazon')
                                WHEN fm.result = 'pending' THEN $3 END
           FROM feed_messages fm
           WHERE fm.feed_submission_id = $1 AND fm.instruction_id = $2 AND sp.instruction_id = $2
             AND fm.package_no = sp.package_no AND sp.api_status = 'printed'"#,
        submission,
        instruction_id,
        failure
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Whether the instruction has left whole (出荷済み in the warehouse) and Amazon confirmed every
/// one of its packages; `waiting`: whether some package is not sent yet.
pub async fn progress(
    conn: &mut PgConnection,
    instruction_id: Uuid,
) -> Result<(bool, bool), StoreError> {
    let r = sqlx::query!(
        r#"SELECT si.status = 'shipped' AND NOT EXISTS
                      (SELECT 1 FROM shipment_packages sp WHERE sp.instruction_id = si.id AND sp.api_status <> 'shipped')
                  AS "complete!",
                  EXISTS (SELECT 1 FROM shipment_packages sp WHERE sp.instruction_id = si.id
                          AND sp.api_status IN ('awaiting_print', 'failed')) AS "waiting!"
           FROM shipping_instructions si WHERE si.id = $1"#,
        instruction_id
    )
    .fetch_optional(conn)
    .await?
    .found("instruction", instruction_id)?;
    Ok((r.complete, r.waiting))
}
