//! A buyer's request to cancel (issue 21 item 1), applied to the order's instruction: one not
//! allocated yet is put on hold (保留), an allocated one is flagged ("stop the parcel"); either
//! way one attention entry per Amazon update says how to accept or decline. status-sync applies
//! it to every order it syncs, order-ingest to the orders it imports, so an order whose buyer
//! asked before it was imported is held from its first transaction.

use domain::AmazonOrderStatus;
use spapi::orders::Order;
use sqlx::PgConnection;
use store::{StoreError, api_log, cancel_requests};
use uuid::Uuid;

/// Code of the attention entry.
pub const CODE: &str = "buyer_cancellation_request";

/// Who applies a request: the action the API-log entry is written under, and its run.
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    pub action: &'a str,
    pub shop_id: Uuid,
    pub run_id: Option<Uuid>,
}

/// Whether a buyer asked to cancel any line of `order`.
pub fn requested(order: &Order) -> bool {
    request(order).is_some()
}

fn request(order: &Order) -> Option<&spapi::orders::CancellationRequest> {
    order.order_items.iter().find_map(|i| {
        i.cancellation
            .as_ref()
            .and_then(|c| c.cancellation_request.as_ref())
    })
}

/// Applies the request of `order` (if any) to its instruction `instruction_id`; nothing for an
/// order Amazon has cancelled. Returns whether an attention entry was written.
pub async fn apply(
    conn: &mut PgConnection,
    by: Applier<'_>,
    order: &Order,
    instruction_id: Uuid,
    amazon_status: AmazonOrderStatus,
) -> Result<bool, StoreError> {
    let Some(request) = request(order) else {
        return Ok(false);
    };
    if amazon_status == AmazonOrderStatus::Cancelled {
        return Ok(false);
    }
    let reason = request.cancel_reason.as_deref();
    let recorded = cancel_requests::record(&mut *conn, instruction_id, reason).await?;
    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    let decide = format!(
        "accept it (`ctl cancel-request accept --shop <shop> {id}`: cancelled here, stock released, \
         Amazon told with the order acknowledgement feed) or decline it (`ctl cancel-request decline \
         --shop <shop> {id}`: it ships as usual)",
        id = order.order_id
    );
    let message = match recorded {
        cancel_requests::Recorded::Held => format!(
            "order {}: the buyer asked to cancel it{why}; it is on hold (保留) until an operator decides: {decide}",
            order.order_id
        ),
        cancel_requests::Recorded::Flagged => format!(
            "order {}: the buyer asked to cancel it{why} but it is already allocated: stop the parcel, then {decide}",
            order.order_id
        ),
        cancel_requests::Recorded::Nothing => return Ok(false),
    };
    let entry = api_log::Entry {
        run_id: by.run_id,
        amazon_order_id: Some(&order.order_id),
        code: Some(CODE),
        ..api_log::Entry::new(
            Some(by.shop_id),
            by.action,
            api_log::Level::Attention,
            &message,
        )
    };
    api_log::write_once_per_amazon_update(conn, &entry, order.last_updated_time).await
}
