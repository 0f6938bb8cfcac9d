//! An operator's request to send a shipment result to Amazon again (`ctl shipping
//! resend-shipment`): the instruction goes back to 印刷待ち for the next shipment-feedback run.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// Where an order's shipment stands.
#[derive(Debug, Clone)]
pub struct ShipmentState {
    pub id: Uuid,
    /// Instruction status (`shipped`, ...).
    pub status: String,
    /// API status (`awaiting_print`, `printed`, `shipped`, `failed`).
    pub api_status: String,
}

/// The shipment state of an Amazon order's instruction.
pub async fn shipment_state(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<Option<ShipmentState>, StoreError> {
    Ok(sqlx::query_as!(
        ShipmentState,
        "SELECT id, status, api_status FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2",
        shop_id,
        amazon_order_id
    )
    .fetch_optional(conn)
    .await?)
}

/// Puts the instruction back to 印刷待ち (`awaiting_print`), clears Amazon's error and notes when
/// the resend was asked for.
pub async fn request(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shipping_instructions SET api_status = 'awaiting_print', api_error = NULL, resend_requested_at = now(), updated_at = now() WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}
