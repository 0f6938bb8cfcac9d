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
/// when the resend was asked for. `false`: the status did not allow it (nothing changed).
pub async fn request(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let t = ApiTransition::ResendRequested;
    let done = sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = NULL, resend_requested_at = now(),
                  updated_at = now()
           WHERE id = $1 AND api_status = ANY($3)"#,
        id,
        t.to().as_str(),
        &t.from_values()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
