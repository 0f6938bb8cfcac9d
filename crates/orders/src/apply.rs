//! One page of Amazon orders applied to the WMS: converted, new orders inserted in batches,
//! known ones upserted one by one, each order in its own savepoint so one bad order never
//! stops the others.

use std::collections::HashSet;

use domain::AmazonOrderStatus;
use spapi::orders::{FulfilledBy, Order};
use sqlx::{Connection, PgConnection};
use store::{
    StoreError, api_log, catalog,
    instructions::{self, AmazonOrder},
};
use uuid::Uuid;

use crate::{
    ACTION, cancel_request,
    convert::to_amazon_order,
    counts::Counts,
    upsert::{Outcome, UpsertCtx, UpsertError, insert_new_orders, upsert_order},
};

/// Why a page (or a single import) stopped. Every variant is worth retrying: orders that
/// cannot be imported are refused one by one (API log) and do not stop the page.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Upsert(#[from] UpsertError),
    #[error(transparent)]
    Api(#[from] spapi::Error),
}

impl Error {
    /// The failure as a job step's: everything but an Amazon refusal is the database's (the
    /// message is retried); an Amazon refusal keeps `operation` (throttling becomes a
    /// continuation).
    pub fn into_job(self, operation: &str) -> job_api::JobError {
        use crate::upsert::UpsertError as U;
        match self {
            Self::Store(e) | Self::Upsert(U::Store(e)) => e.into(),
            Self::Db(e) | Self::Upsert(U::Db(e)) => e.into(),
            Self::Upsert(U::Encode(m)) => StoreError::Corrupt(m).into(),
            Self::Api(e) => job_api::JobError::api(operation, e),
        }
    }
}

/// New orders per bulk statement (a whole page of 100 is one). sqlx sets `TCP_NODELAY` again
/// since 0.9.1: a statement larger than one TCP segment no longer waits for the server's
/// delayed ACK (docs/benchmarks.md, finding 10).
const BATCH_ORDERS: usize = 100;

/// Applies one page in `tx`: the orders new to the shop in batches, each in a savepoint, and
/// the others (and every order of a batch the database refused) one by one in their own
/// savepoints, so one bad order never stops the others. A new order whose buyer has already
/// asked to cancel is held (or flagged) at once (`cancel_request`). Returns the Amazon order
/// ids it inserted (orders the shop had no instruction for until now).
pub async fn apply_orders(
    tx: &mut PgConnection,
    keys: &crypto::Keyring,
    events: &str,
    shop_id: Uuid,
    run_id: Option<Uuid>,
    orders: &[Order],
    counts: &mut Counts,
) -> Result<HashSet<String>, Error> {
    let rules = catalog::active_rules(&mut *tx, shop_id).await?;
    let skus: Vec<String> = orders
        .iter()
        .flat_map(|o| {
            o.order_items
                .iter()
                .filter_map(|i| i.product.seller_sku.clone())
        })
        .collect();
    let products = catalog::products_for_skus(&mut *tx, shop_id, &skus).await?;
    let cx = UpsertCtx {
        keys,
        shop_id,
        run_id,
        action: ACTION,
        rules: &rules,
        products: &products,
        events_exchange: events,
    };
    // Merchant-fulfilled orders (FBA ones are Amazon's to ship), converted; conversion errors
    // are refused one by one below.
    // In Amazon order id order: known orders are locked in the order every transaction that
    // locks several instructions uses (store::feeds::lock_instructions), so no deadlock.
    let mut converted: Vec<(&Order, Result<AmazonOrder, String>)> = orders
        .iter()
        .filter(|o| {
            !o.fulfillment
                .as_ref()
                .and_then(|f| f.fulfilled_by.as_ref())
                .is_some_and(|f| *f == FulfilledBy::Amazon)
        })
        .map(|o| (o, to_amazon_order(o).map_err(|e| e.to_string())))
        .collect();
    converted.sort_by(|a, b| a.0.order_id.cmp(&b.0.order_id));
    // Orders new to the shop go in together; the rest (known ones, a page's repeated order,
    // and everything of a batch the database refused) one by one.
    let mut batch: Vec<&AmazonOrder> = Vec::new();
    let mut seen = HashSet::new();
    for (_, c) in &converted {
        if let Ok(a) = c
            && seen.insert(a.amazon_order_id.as_str())
        {
            batch.push(a);
        }
    }
    let mut batched = HashSet::new();
    for chunk in batch.chunks(BATCH_ORDERS) {
        let mut sp = tx.begin().await?;
        match insert_new_orders(&mut sp, &cx, chunk).await {
            Ok(outcomes) => {
                sp.commit().await?;
                for (a, outcome) in chunk.iter().zip(&outcomes) {
                    if let Some(outcome) = outcome {
                        counts.add(outcome);
                        batched.insert(a.amazon_order_id.clone());
                    }
                }
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                sp.rollback().await?;
                tracing::info!(error = %e, orders = chunk.len(), "batch refused; importing its orders one by one");
            }
        }
    }
    // New orders whose buyer has asked to cancel already are held (or flagged) as soon as they
    // are imported, in this transaction.
    let requested: Vec<(&Order, AmazonOrderStatus)> = converted
        .iter()
        .filter(|(o, _)| cancel_request::requested(o))
        .filter_map(|(o, c)| c.as_ref().ok().map(|a| (*o, a.status)))
        .collect();
    let mut one_by_one = Vec::new();
    for (order, converted) in converted {
        let result = match converted {
            Err(e) => Err(e),
            Ok(data) if batched.contains(&data.amazon_order_id) => continue,
            Ok(data) => {
                let mut sp = tx.begin().await?;
                match upsert_order(&mut sp, &cx, &data).await {
                    Ok(outcome) => {
                        sp.commit().await?;
                        Ok(outcome)
                    }
                    Err(e) if e.is_transient() => return Err(e.into()),
                    Err(e) => {
                        sp.rollback().await?;
                        Err(e.to_string())
                    }
                }
            }
        };
        match result {
            Ok(outcome) => {
                if matches!(outcome, Outcome::New { .. }) {
                    one_by_one.push(order.order_id.clone());
                }
                counts.add(&outcome);
            }
            Err(reason) => {
                counts.orders += 1;
                counts.failed += 1;
                let message = format!(
                    "order {} was not imported: {reason}; the other orders are unaffected",
                    order.order_id
                );
                tracing::warn!(amazon_order_id = %order.order_id, %reason, "order not imported");
                api_log::write(
                    &mut *tx,
                    &api_log::Entry {
                        run_id,
                        amazon_order_id: Some(&order.order_id),
                        code: Some("order_not_imported"),
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
    batched.extend(one_by_one);
    let by = cancel_request::Applier {
        action: ACTION,
        shop_id,
        run_id,
    };
    for (order, status) in requested {
        if !batched.contains(&order.order_id) {
            continue;
        }
        if let Some(inst) = instructions::lock_by_order(&mut *tx, shop_id, &order.order_id).await? {
            cancel_request::apply(&mut *tx, by, order, inst.id, status).await?;
        }
    }
    Ok(batched)
}
