//! An operator's request to send a shipment result to Amazon again (`ctl resend-shipment`): the
//! instruction goes back to 印刷待ち for the next shipment-feedback run
//! ([`ApiTransition::ResendRequested`]).

use domain::{ApiStatus, ApiTransition, InstructionStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// Where an order's shipment stands.
#[derive(Debug, Clone)]
pub struct ShipmentState {
    pub id: Uuid,
    /// Instruction status (出荷済み `shipped`, ...).
    pub status: InstructionStatus,
    /// API status (印刷待ち, 印刷済み, 出荷済み, failed).
    pub api_status: ApiStatus,
}

/// The shipment state of an Amazon order's instruction.
pub async fn shipment_state(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<Option<ShipmentState>, StoreError> {
    let row = sqlx::query!(
        "SELECT id, status, api_status FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2",
        shop_id,
        amazon_order_id
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        let corrupt = |what: &str, v: &str| {
            StoreError::Corrupt(format!("{what} {v:?} of instruction {}", r.id))
        };
        Ok(ShipmentState {
            id: r.id,
            status: r.status.parse().map_err(|_| corrupt("status", &r.status))?,
            api_status: r
                .api_status
                .parse()
                .map_err(|_| corrupt("api_status", &r.api_status))?,
        })
    })
    .transpose()
}

/// Puts the instruction back to 印刷待ち (`awaiting_print`) if its API status allows it
/// ([`ApiTransition::ResendRequested`]: from failed or 印刷待ち), clears Amazon's error and notes
/// when the resend was asked for and by whom. `false`: the status did not allow it (nothing
/// changed).
pub async fn request(
    conn: &mut PgConnection,
    id: Uuid,
    requested_by: &str,
) -> Result<bool, StoreError> {
    let t = ApiTransition::ResendRequested;
    let done = sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = NULL, resend_requested_at = now(),
                  resend_requested_by = $4, updated_at = now()
           WHERE id = $1 AND api_status = ANY($3)"#,
        id,
        t.to().as_str(),
        &t.from_values(),
        requested_by
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an operator's resend request did ([`ask`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// Back to 印刷待ち: the next shipment-feedback run sends it.
    Requested,
    /// No instruction of that order in the shop.
    Unknown,
    /// The instruction is not shipped yet.
    NotShipped(InstructionStatus),
    /// Sent, and Amazon's result is still pending (印刷済み).
    Pending,
    /// Amazon already confirmed it (出荷済み).
    Confirmed,
}

/// An operator (`operator`: who, for the ledger and the API log) asks to send an order's
/// shipment again: checks where it stands, requests the resend and writes an API-log entry
/// naming the operator, in one transaction.
pub async fn ask(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    operator: &str,
) -> Result<Resend, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let Some(state) = shipment_state(&mut tx, shop_id, amazon_order_id).await? else {
        return Ok(Resend::Unknown);
    };
    // A partially shipped instruction (allocated with packages that left, every-package mode)
    // has packages to resend as well.
    let partial = state.status == InstructionStatus::Allocated
        && !crate::packages::of(&mut tx, state.id).await?.is_empty();
    if state.status != InstructionStatus::Shipped && !partial {
        return Ok(Resend::NotShipped(state.status));
    }
    if !request(&mut tx, state.id, operator).await? {
        return Ok(match state.api_status {
            ApiStatus::Printed => Resend::Pending,
            _ => Resend::Confirmed,
        });
    }
    let message = format!(
        "operator {operator} asked to send this shipment again (印刷待ち): the next shipment-feedback run sends it"
    );
    crate::api_log::write(
        &mut tx,
        &crate::api_log::Entry {
            amazon_order_id: Some(amazon_order_id),
            code: Some("resend_requested"),
            details: Some(serde_json::json!({ "instruction_id": state.id, "operator": operator })),
            ..crate::api_log::Entry::new(
                Some(shop_id),
                "shipment-feedback",
                crate::api_log::Level::Info,
                &message,
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Resend::Requested)
}
