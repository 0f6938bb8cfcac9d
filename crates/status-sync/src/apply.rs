//! Apply: Amazon's state of each order to its instruction, under the seed's conditions
//! (`domain::eligibility::decide`): to paid (payment, buyer, ship-to, prices; delivery rules
//! while the method is the placeholder), to canceled (reservations released), or an
//! `attention` entry once per Amazon state. One savepoint per order: an order that cannot be
//! applied is logged and the others are unaffected.

use chrono::{DateTime, Utc};
use domain::{
    AmazonOrderStatus,
    eligibility::{SyncDecision, SyncState, decide},
    messages::{Event, EventKind},
};
use spapi::orders::Order;
use sqlx::{Connection, PgConnection};
use store::{
    StoreError, api_log, catalog,
    instructions::{self, Delivery},
};
use uuid::Uuid;

use crate::{ACTION, Counts};

/// What applying one Amazon order did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Applied {
    /// `attention`: paid without buyer or ship-to (an attention entry was written).
    Paid {
        attention: bool,
    },
    Canceled(i64),
    Attention,
    Unchanged,
    NotImported,
}

/// An order whose instruction an apply changed (to paid or to canceled), with the time Amazon
/// changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed {
    pub(crate) order_id: String,
    pub(crate) last_updated: DateTime<Utc>,
}

/// Applies `orders` (Amazon's state) in `tx`, adding to `counts`; the events go to the outbox
/// on `events`. Returns the orders whose instruction it changed.
pub(crate) async fn orders(
    tx: &mut PgConnection,
    keys: &crypto::Keyring,
    events: &str,
    shop_id: Uuid,
    run_id: Uuid,
    orders: &[Order],
    counts: &mut Counts,
) -> Result<Vec<Changed>, StoreError> {
    let mut changed = Vec::new();
    let rules = catalog::active_rules(&mut *tx, shop_id).await?;
    // Instructions are locked in Amazon order id order, as by every transaction that locks
    // several (store::feeds::lock_instructions): no deadlock with order-ingest or feedback.
    let mut orders: Vec<&Order> = orders.iter().collect();
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    for order in orders {
        counts.seen += 1;
        let mut sp = tx.begin().await?;
        match apply_one(&mut sp, keys, shop_id, run_id, order, &rules, events).await {
            Ok(applied) => {
                sp.commit().await?;
                if matches!(applied, Applied::Paid { .. } | Applied::Canceled(_)) {
                    changed.push(Changed {
                        order_id: order.order_id.clone(),
                        last_updated: order.last_updated_time,
                    });
                }
                match applied {
                    Applied::Paid { attention } => {
                        counts.paid += 1;
                        counts.attention += u32::from(attention);
                    }
                    Applied::Canceled(q) => {
                        counts.canceled += 1;
                        counts.released += q;
                    }
                    Applied::Attention => counts.attention += 1,
                    Applied::Unchanged => counts.unchanged += 1,
                    Applied::NotImported => counts.not_imported += 1,
                }
            }
            Err(e) => {
                sp.rollback().await?;
                counts.failed += 1;
                let message = format!(
                    "order {} could not be synchronized: {e}; the other orders are unaffected",
                    order.order_id
                );
                api_log::write(
                    &mut *tx,
                    &api_log::Entry {
                        run_id: Some(run_id),
                        amazon_order_id: Some(&order.order_id),
                        code: Some("sync_failed"),
                        ..api_log::Entry::new(
                            Some(shop_id),
                            ACTION,
                            api_log::Level::Error,
                            &message,
                        )
                    },
                )
                .await?;
            }
        }
    }
    Ok(changed)
}

/// Why one order could not be applied.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Data(String),
}

/// Applies Amazon's state of one order to its instruction (in a savepoint).
async fn apply_one(
    conn: &mut PgConnection,
    keys: &crypto::Keyring,
    shop_id: Uuid,
    run_id: Uuid,
    order: &Order,
    rules: &[domain::delivery_rules::DeliveryRule<catalog::DeliveryMethod>],
    events: &str,
) -> Result<Applied, ApplyError> {
    let Some(inst) = instructions::lock_by_order(&mut *conn, shop_id, &order.order_id).await?
    else {
        return Ok(Applied::NotImported);
    };
    let data = orders::to_amazon_order(order).map_err(|e| ApplyError::Data(e.to_string()))?;
    let state = SyncState {
        imported_via_api: inst.imported_via_api(),
        status: inst.status()?,
        payment_status: inst.payment_status()?,
    };
    match decide(state, data.status) {
        SyncDecision::MarkPaid => {
            let method = if inst.delivery_method_id.is_none() {
                orders::pick_delivery(rules, &data)
            } else {
                None
            };
            let delivery = method.map_or(Delivery::Placeholder, Delivery::Method);
            instructions::apply_paid(&mut *conn, keys, &inst, &data, delivery).await?;
            let attention_entry = match orders::missing_personal_data(&data) {
                Some(message) => {
                    let code = orders::personal::CODE;
                    attention(conn, (shop_id, run_id), order, code, &message).await?
                }
                None => false,
            };
            // Paid with the buyer already asking to cancel: held again at once.
            let attention_entry =
                buyer_request(conn, (shop_id, run_id), order, inst.id, data.status).await?
                    || attention_entry;
            event(
                conn,
                shop_id,
                events,
                EventKind::OrderPaid {
                    instruction_id: inst.id,
                    amazon_order_id: order.order_id.clone(),
                },
            )
            .await?;
            Ok(Applied::Paid {
                attention: attention_entry,
            })
        }
        SyncDecision::Cancel => {
            let reason = format!("amazon order {} cancelled", order.order_id);
            let released = instructions::cancel(
                &mut *conn,
                inst.id,
                data.status,
                data.last_updated_at,
                &reason,
            )
            .await?;
            event(
                conn,
                shop_id,
                events,
                EventKind::OrderCanceled {
                    instruction_id: inst.id,
                    amazon_order_id: order.order_id.clone(),
                },
            )
            .await?;
            Ok(Applied::Canceled(released))
        }
        SyncDecision::NeedsAttention(why) => {
            let message = format!("order {}: {why}", order.order_id);
            let new = attention(
                conn,
                (shop_id, run_id),
                order,
                "amazon_cancelled_after_allocation",
                &message,
            )
            .await?;
            Ok(if new {
                Applied::Attention
            } else {
                Applied::Unchanged
            })
        }
        SyncDecision::Nothing => {
            let flagged =
                buyer_request(conn, (shop_id, run_id), order, inst.id, data.status).await?;
            Ok(if flagged {
                Applied::Attention
            } else {
                Applied::Unchanged
            })
        }
    }
}

/// A buyer's request to cancel (issue 21 item 1), `orders::cancel_request`. Returns whether
/// an entry was written.
async fn buyer_request(
    conn: &mut PgConnection,
    (shop_id, run_id): (Uuid, Uuid),
    order: &Order,
    instruction_id: Uuid,
    amazon_status: AmazonOrderStatus,
) -> Result<bool, ApplyError> {
    let by = orders::cancel_request::Applier {
        action: ACTION,
        shop_id,
        run_id: Some(run_id),
    };
    Ok(orders::cancel_request::apply(conn, by, order, instruction_id, amazon_status).await?)
}

async fn event(
    conn: &mut PgConnection,
    shop_id: Uuid,
    exchange: &str,
    kind: EventKind,
) -> Result<(), ApplyError> {
    let e = Event::new(shop_id, kind, Utc::now());
    let mut msg = bus::OutboxMessage::new(
        exchange,
        e.kind.routing_key(),
        serde_json::to_value(&e).map_err(|e| ApplyError::Data(e.to_string()))?,
    );
    msg.id = e.event_id;
    bus::outbox::enqueue(conn, msg).await?;
    Ok(())
}

/// An `attention` entry about `order`, once per Amazon state of it. Returns whether it was new.
async fn attention(
    conn: &mut PgConnection,
    (shop_id, run_id): (Uuid, Uuid),
    order: &Order,
    code: &str,
    message: &str,
) -> Result<bool, ApplyError> {
    let entry = api_log::Entry {
        run_id: Some(run_id),
        amazon_order_id: Some(&order.order_id),
        code: Some(code),
        ..api_log::Entry::new(Some(shop_id), ACTION, api_log::Level::Attention, message)
    };
    let updated: DateTime<Utc> = order.last_updated_time;
    Ok(api_log::write_once_per_amazon_update(conn, &entry, updated).await?)
}
