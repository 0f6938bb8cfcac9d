//! Buyer cancellation requests (issue 21 item 1): recorded by status-sync, accepted or declined
//! by an operator, and the acceptance told to Amazon by the order acknowledgement feed
//! (`cancel_ack`: pending → sent → done | failed).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Found, StoreError, catalog};

/// What recording a request did to the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Not allocated yet: put on hold (保留, reason buyer_cancel_request).
    Held,
    /// Allocated: the parcel may be on its way; an operator must stop it (attention).
    Flagged,
    /// Already decided by an operator, or shipped or cancelled: nothing changed.
    Nothing,
}

/// Records a buyer's request to cancel `instruction_id` (`reason` as Amazon gives it): the first
/// time, and again while undecided (a hold the operator released by hand comes back). Shipped,
/// cancelled and decided instructions are left alone.
pub async fn record(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    reason: Option<&str>,
) -> Result<Recorded, StoreError> {
    let row = sqlx::query!(
        r#"SELECT status, cancel_request_decision FROM shipping_instructions WHERE id = $1 FOR UPDATE"#,
        instruction_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("shipping instruction", instruction_id)?;
    if row.cancel_request_decision.is_some()
        || matches!(row.status.as_str(), "shipped" | "canceled")
    {
        return Ok(Recorded::Nothing);
    }
    let held = matches!(row.status.as_str(), "hold" | "awaiting_shipment");
    sqlx::query!(
        r#"UPDATE shipping_instructions
              SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
                  cancel_request_reason = COALESCE($2, cancel_request_reason),
                  status = CASE WHEN $3 THEN 'hold' ELSE status END,
                  hold_reason = CASE WHEN $3 THEN 'buyer_cancel_request' ELSE hold_reason END,
                  updated_at = now()
            WHERE id = $1"#,
        instruction_id,
        reason,
        held
    )
    .execute(&mut *conn)
    .await?;
    Ok(if held {
        Recorded::Held
    } else {
        Recorded::Flagged
    })
}

/// An open request of a shop's order, locked for a decision.
async fn open_request(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<(Uuid, String, Option<String>), StoreError> {
    let row = sqlx::query!(
        r#"SELECT id, status, hold_reason, cancel_requested_at, cancel_request_decision
             FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2 FOR UPDATE"#,
        shop_id,
        amazon_order_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("instruction for order", amazon_order_id)?;
    if row.cancel_requested_at.is_none() {
        return Err(StoreError::Conflict(format!(
            "the buyer of order {amazon_order_id} has not asked to cancel it"
        )));
    }
    if let Some(d) = row.cancel_request_decision {
        return Err(StoreError::Conflict(format!(
            "the buyer's request to cancel order {amazon_order_id} was already {d}"
        )));
    }
    if matches!(row.status.as_str(), "shipped" | "canceled") {
        return Err(StoreError::Conflict(format!(
            "order {amazon_order_id} is {}: its cancellation request can no longer be decided",
            row.status
        )));
    }
    Ok((row.id, row.status, row.hold_reason))
}

/// Accepts the buyer's request: the instruction is cancelled (キャンセル), the stock its lines
/// reserved or allocated is released, and the acknowledgement to Amazon is queued (`pending`,
/// sent by shipment-feedback's next run). Returns the instruction.
pub async fn accept(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    operator: &str,
) -> Result<Uuid, StoreError> {
    let (id, status, _) = open_request(conn, shop_id, amazon_order_id).await?;
    let left = sqlx::query_scalar!(
        r#"SELECT package_no AS "package_no!" FROM shipment_packages WHERE instruction_id = $1
            ORDER BY package_no"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    if !left.is_empty() {
        let packages = left
            .iter()
            .map(i16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(StoreError::Conflict(format!(
            "order {amazon_order_id} has left in part (package {packages}): a partly shipped \
             order is not cancelled here; decline the request and ship the rest, or settle it \
             with the buyer in Seller Central"
        )));
    }
    let reason = format!("buyer's cancellation of {amazon_order_id} accepted by {operator}");
    let lines = sqlx::query!(
        r#"UPDATE instruction_lines l SET reserved_quantity = 0
             FROM (SELECT id, reserved_quantity FROM instruction_lines WHERE instruction_id = $1 FOR UPDATE) old
            WHERE l.id = old.id
           RETURNING l.product_id, old.reserved_quantity, l.quantity"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    for l in lines {
        let Some(product) = l.product_id else {
            continue;
        };
        if status == "allocated" {
            catalog::release_allocated(&mut *conn, shop_id, product, l.quantity, &reason).await?;
        } else {
            catalog::release(&mut *conn, shop_id, product, l.reserved_quantity, &reason).await?;
        }
    }
    sqlx::query!(
        r#"UPDATE shipping_instructions
              SET status = 'canceled', hold_reason = NULL, cancel_request_decision = 'accepted',
                  cancel_request_decided_by = $2, cancel_ack = 'pending', updated_at = now()
            WHERE id = $1"#,
        id,
        operator
    )
    .execute(&mut *conn)
    .await?;
    let message = format!(
        "operator {operator} accepted the buyer's request to cancel: the instruction is cancelled \
         (キャンセル), its stock released, and the next shipment-feedback run tells Amazon"
    );
    decided(
        conn,
        shop_id,
        amazon_order_id,
        id,
        operator,
        "cancel_request_accepted",
        &message,
    )
    .await?;
    Ok(id)
}

async fn decided(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    id: Uuid,
    operator: &str,
    code: &str,
    message: &str,
) -> Result<(), StoreError> {
    crate::api_log::write(
        conn,
        &crate::api_log::Entry {
            amazon_order_id: Some(amazon_order_id),
            code: Some(code),
            details: Some(serde_json::json!({ "instruction_id": id, "operator": operator })),
            ..crate::api_log::Entry::new(
                Some(shop_id),
                "status-sync",
                crate::api_log::Level::Info,
                message,
            )
        },
    )
    .await?;
    Ok(())
}

/// Declines the buyer's request: the instruction ships as usual (a hold for the request is
/// released: 保留 → 出荷待ち). Returns the instruction.
pub async fn decline(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    operator: &str,
) -> Result<Uuid, StoreError> {
    let (id, _, _) = open_request(conn, shop_id, amazon_order_id).await?;
    sqlx::query!(
        r#"UPDATE shipping_instructions
              SET status = CASE WHEN status = 'hold' AND hold_reason = 'buyer_cancel_request'
                                THEN 'awaiting_shipment' ELSE status END,
                  hold_reason = CASE WHEN hold_reason = 'buyer_cancel_request' THEN NULL ELSE hold_reason END,
                  cancel_request_decision = 'declined', cancel_request_decided_by = $2, updated_at = now()
            WHERE id = $1"#,
        id,
        operator
    )
    .execute(&mut *conn)
    .await?;
    let message = format!(
        "operator {operator} declined the buyer's request to cancel: the order ships as usual"
    );
    decided(
        conn,
        shop_id,
        amazon_order_id,
        id,
        operator,
        "cancel_request_declined",
        &message,
    )
    .await?;
    Ok(id)
}

/// An accepted cancellation to tell Amazon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAck {
    pub instruction_id: Uuid,
    pub amazon_order_id: String,
    pub order_item_ids: Vec<String>,
}

/// The accepted cancellations of a shop not yet sent to Amazon.
pub async fn pending_acks(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<PendingAck>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT si.id, si.amazon_order_id AS "amazon_order_id!",
                  COALESCE(array_agg(l.amazon_order_item_id ORDER BY l.line_no)
                           FILTER (WHERE l.amazon_order_item_id IS NOT NULL), '{}') AS "items!"
             FROM shipping_instructions si
             LEFT JOIN instruction_lines l ON l.instruction_id = si.id
            WHERE si.shop_id = $1 AND si.cancel_ack = 'pending' AND si.amazon_order_id IS NOT NULL
            GROUP BY si.id, si.amazon_order_id
            ORDER BY si.amazon_order_id"#,
        shop_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PendingAck {
            instruction_id: r.id,
            amazon_order_id: r.amazon_order_id,
            order_item_ids: r.items,
        })
        .collect())
}

/// The acknowledgements of `submission` were accepted by Amazon for processing: `sent`.
pub async fn mark_sent(conn: &mut PgConnection, submission: Uuid) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"UPDATE shipping_instructions SET cancel_ack = 'sent', updated_at = now()
            WHERE cancel_ack = 'pending'
              AND id IN (SELECT instruction_id FROM feed_messages WHERE feed_submission_id = $1)"#,
        submission
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Amazon's result for one acknowledgement (feed-poller): `done`, or `failed` with Amazon's
/// message kept as the instruction's API error.
pub async fn apply_result(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    failure: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE shipping_instructions
              SET cancel_ack = CASE WHEN $2::text IS NULL THEN 'done' ELSE 'failed' END,
                  api_error = COALESCE($2, api_error), updated_at = now()
            WHERE id = $1 AND cancel_ack IN ('pending', 'sent')"#,
        instruction_id,
        failure
    )
    .execute(conn)
    .await?;
    Ok(())
}
