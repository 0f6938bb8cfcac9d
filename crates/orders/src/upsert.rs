//! Upsert of one Amazon order into the WMS, by `(shop, amazon_order_id)`.
//!
//! * New order: instruction with placeholders (Pending) or Amazon's data (Unshipped), delivery
//!   method from the first matching delivery rule (else `Amazon 仮配送方法`), lines mapped
//!   through the external-product table, mapped lines reserving stock, unmapped SKUs kept and
//!   flagged (API-log `attention`).
//! * Known order: never touched when entered by hand or no longer open (allocated, shipped,
//!   canceled stay as they are). An open unpaid instruction whose order Amazon now reports
//!   paid gets its data filled in. A paid instruction is never reset by a Pending re-import.
//!   Missing lines are added (never duplicated).

use std::collections::HashMap;

use domain::{
    PaymentStatus,
    delivery_rules::DeliveryRule,
    eligibility::{SyncState, paid_eligible},
    messages::{Event, EventKind},
    status::InstructionStatus,
};
use sqlx::PgConnection;
use store::{
    StoreError, api_log,
    catalog::DeliveryMethod,
    instructions::{self, AmazonOrder, Delivery},
};
use uuid::Uuid;

use crate::delivery::pick_delivery;

/// What the upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    New {
        instruction_id: Uuid,
        unmapped_skus: Vec<String>,
    },
    Updated {
        instruction_id: Uuid,
        paid: bool,
        unmapped_skus: Vec<String>,
    },
    Unchanged,
}

fn delivery(m: Option<&DeliveryMethod>) -> Delivery<'_> {
    m.map_or(Delivery::Placeholder, Delivery::Method)
}

/// Context of one upsert.
pub struct UpsertCtx<'a> {
    /// Seals buyer and ship-to data (store::pii).
    pub keys: &'a crypto::Keyring,
    pub shop_id: Uuid,
    pub run_id: Option<Uuid>,
    pub action: &'a str,
    pub rules: &'a [DeliveryRule<DeliveryMethod>],
    pub products: &'a HashMap<String, Uuid>,
    pub events_exchange: &'a str,
}

/// Upserts one order on `conn` (run it in a savepoint: an error leaves nothing behind).
pub async fn upsert_order(
    conn: &mut PgConnection,
    cx: &UpsertCtx<'_>,
    order: &AmazonOrder,
) -> Result<Outcome, UpsertError> {
    let existing =
        instructions::lock_by_order(&mut *conn, cx.shop_id, &order.amazon_order_id).await?;
    let outcome = match existing {
        None => {
            let (status, payment) = new_status(order);
            let method = pick_delivery(cx.rules, order);
            let (id, lines) = instructions::insert_imported(
                &mut *conn,
                cx.keys,
                cx.shop_id,
                instructions::NewImported {
                    order,
                    status,
                    payment_status: payment,
                    delivery: delivery(method),
                },
                cx.products,
            )
            .await?;
            event(
                conn,
                cx,
                EventKind::OrderImported {
                    instruction_id: id,
                    amazon_order_id: order.amazon_order_id.clone(),
                    run_id: cx.run_id.unwrap_or_default(),
                },
            )
            .await?;
            Outcome::New {
                instruction_id: id,
                unmapped_skus: lines.unmapped_skus,
            }
        }
        Some(inst) => {
            let state = SyncState {
                imported_via_api: inst.imported_via_api(),
                status: inst.status()?,
                payment_status: inst.payment_status()?,
            };
            if !touches_known(state) {
                return Ok(Outcome::Unchanged);
            }
            let mut changed = false;
            let mut paid = false;
            if paid_eligible(state, order.status) {
                let method = if inst.delivery_method_id.is_none() {
                    pick_delivery(cx.rules, order)
                } else {
                    None
                };
                instructions::apply_paid(&mut *conn, cx.keys, &inst, order, delivery(method))
                    .await?;
                changed = true;
                paid = true;
            }
            let lines = instructions::add_missing_lines(
                &mut *conn,
                cx.shop_id,
                inst.id,
                &order.amazon_order_id,
                &order.lines,
                cx.products,
                true,
            )
            .await?;
            changed |= lines.inserted > 0 || lines.newly_mapped > 0;
            if !paid {
                changed |= instructions::note_amazon_state(
                    &mut *conn,
                    inst.id,
                    order.status,
                    order.last_updated_at,
                )
                .await?;
            }
            if paid {
                event(
                    conn,
                    cx,
                    EventKind::OrderPaid {
                        instruction_id: inst.id,
                        amazon_order_id: order.amazon_order_id.clone(),
                    },
                )
                .await?;
            }
            if changed {
                Outcome::Updated {
                    instruction_id: inst.id,
                    paid,
                    unmapped_skus: lines.unmapped_skus,
                }
            } else {
                Outcome::Unchanged
            }
        }
    };
    log_attention(conn, cx, order, &outcome).await?;
    Ok(outcome)
}

/// Imports the orders the shop does not have yet, all at once: a fixed number of statements
/// (instructions, lines, stock per product, events). Orders it already has are left alone
/// (`None`, in input order): upsert those with [`upsert_order`]. All or nothing: run it in a
/// savepoint and, on an error that is not transient, import the orders one by one with
/// [`upsert_order`] so that only the order at fault is refused.
pub async fn insert_new_orders(
    conn: &mut PgConnection,
    cx: &UpsertCtx<'_>,
    orders: &[&AmazonOrder],
) -> Result<Vec<Option<Outcome>>, UpsertError> {
    let new: Vec<instructions::NewImported<'_>> = orders
        .iter()
        .map(|order| {
            let (status, payment_status) = new_status(order);
            instructions::NewImported {
                order,
                status,
                payment_status,
                delivery: delivery(pick_delivery(cx.rules, order)),
            }
        })
        .collect();
    let inserted =
        instructions::insert_imported_many(&mut *conn, cx.keys, cx.shop_id, &new, cx.products)
            .await?;
    let mut events = Vec::with_capacity(inserted.len());
    let mut outcomes = Vec::with_capacity(inserted.len());
    for (order, inserted) in orders.iter().zip(inserted) {
        let Some((id, lines)) = inserted else {
            outcomes.push(None);
            continue;
        };
        events.push(event_message(
            cx,
            EventKind::OrderImported {
                instruction_id: id,
                amazon_order_id: order.amazon_order_id.clone(),
                run_id: cx.run_id.unwrap_or_default(),
            },
        )?);
        outcomes.push(Some(Outcome::New {
            instruction_id: id,
            unmapped_skus: lines.unmapped_skus,
        }));
    }
    bus::outbox::enqueue_many(&mut *conn, events).await?;
    for (order, outcome) in orders.iter().zip(&outcomes) {
        if let Some(outcome) = outcome {
            log_attention(conn, cx, order, outcome).await?;
        }
    }
    Ok(outcomes)
}

/// Whether a re-import touches a known instruction at all: only API-imported ones still open
/// (hold or awaiting shipment); hand-entered, allocated, shipped and canceled ones stay as
/// they are. Among those it touches, "to paid" is `domain::eligibility::paid_eligible`, the
/// rule status sync applies.
fn touches_known(state: SyncState) -> bool {
    state.imported_via_api && state.status.is_open_for_sync()
}

/// Instruction and payment status of a new instruction.
fn new_status(order: &AmazonOrder) -> (InstructionStatus, PaymentStatus) {
    if order.status.is_paid() {
        (InstructionStatus::AwaitingShipment, PaymentStatus::Paid)
    } else {
        (InstructionStatus::Hold, PaymentStatus::Unpaid)
    }
}

/// The `attention` API-log entries of an upserted order: one per line imported without a
/// product, and one when the order became paid without buyer or ship-to
/// ([`crate::personal`]).
async fn log_attention(
    conn: &mut PgConnection,
    cx: &UpsertCtx<'_>,
    order: &AmazonOrder,
    outcome: &Outcome,
) -> Result<(), UpsertError> {
    let amazon_order_id = order.amazon_order_id.as_str();
    let (unmapped, paid_now) = match outcome {
        Outcome::New { unmapped_skus, .. } => (unmapped_skus.as_slice(), order.status.is_paid()),
        Outcome::Updated {
            unmapped_skus,
            paid,
            ..
        } => (unmapped_skus.as_slice(), *paid),
        Outcome::Unchanged => (&[][..], false),
    };
    if let Some(message) = paid_now
        .then(|| crate::missing_personal_data(order))
        .flatten()
    {
        api_log::write(
            &mut *conn,
            &api_log::Entry {
                run_id: cx.run_id,
                amazon_order_id: Some(amazon_order_id),
                code: Some(crate::personal::CODE),
                ..api_log::Entry::new(
                    Some(cx.shop_id),
                    cx.action,
                    api_log::Level::Attention,
                    &message,
                )
            },
        )
        .await?;
    }
    for sku in unmapped {
        let message = format!(
            "SKU {sku} of order {amazon_order_id} has no product in the external-product table: the line was imported without a \
             product and reserves no stock; map it (ctl external-product map --shop <shop> {sku} <product-code>) and \
             import the order again",
        );
        api_log::write(
            &mut *conn,
            &api_log::Entry {
                run_id: cx.run_id,
                amazon_order_id: Some(amazon_order_id),
                sku: Some(sku),
                code: Some("unmapped_sku"),
                ..api_log::Entry::new(
                    Some(cx.shop_id),
                    cx.action,
                    api_log::Level::Attention,
                    &message,
                )
            },
        )
        .await?;
    }
    Ok(())
}

fn event_message(cx: &UpsertCtx<'_>, kind: EventKind) -> Result<bus::OutboxMessage, UpsertError> {
    let e = Event::new(cx.shop_id, kind, chrono::Utc::now());
    let mut msg = bus::OutboxMessage::new(
        cx.events_exchange,
        e.kind.routing_key(),
        serde_json::to_value(&e).map_err(|e| UpsertError::Encode(e.to_string()))?,
    );
    msg.id = e.event_id;
    Ok(msg)
}

async fn event(
    conn: &mut PgConnection,
    cx: &UpsertCtx<'_>,
    kind: EventKind,
) -> Result<(), UpsertError> {
    bus::outbox::enqueue(conn, event_message(cx, kind)?).await?;
    Ok(())
}

/// Why one order could not be upserted.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot encode event: {0}")]
    Encode(String),
}

impl UpsertError {
    /// Whether the whole page should be retried rather than the order skipped
    /// (`store::is_transient_db`, the workspace's one retryable-error check).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::Db(e) => store::is_transient_db(e),
            Self::Encode(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{
        AmazonOrderStatus, InstructionStatus, PaymentStatus,
        eligibility::{SyncDecision, SyncState, decide},
    };

    use super::touches_known;

    /// A re-import marks an instruction paid exactly when status sync would: for every local
    /// state and every Amazon status, the two agree (the re-import leaves cancellations and
    /// attention cases to status sync).
    #[test]
    fn reimport_marks_paid_exactly_when_status_sync_would() {
        let amazon = [
            AmazonOrderStatus::PendingAvailability,
            AmazonOrderStatus::Pending,
            AmazonOrderStatus::Unshipped,
            AmazonOrderStatus::PartiallyShipped,
            AmazonOrderStatus::Shipped,
            AmazonOrderStatus::Cancelled,
            AmazonOrderStatus::Unfulfillable,
        ];
        for imported_via_api in [true, false] {
            for &status in InstructionStatus::ALL {
                for &payment_status in PaymentStatus::ALL {
                    let state = SyncState {
                        imported_via_api,
                        status,
                        payment_status,
                    };
                    for a in amazon {
                        let reimport =
                            touches_known(state) && domain::eligibility::paid_eligible(state, a);
                        let sync = decide(state, a) == SyncDecision::MarkPaid;
                        assert_eq!(reimport, sync, "{state:?} with Amazon {a:?}");
                    }
                }
            }
        }
    }
}
