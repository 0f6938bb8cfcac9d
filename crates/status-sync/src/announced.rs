//! Step of `orders` mode: the orders Amazon announced (ORDER_CHANGE notifications), a batch at
//! a time after the cursor, each fetched with `getOrder` and applied in its own transaction
//! together with the run's cursor: an order with an instruction by the same rules as `changes`
//! (`apply`), one without by order-ingest's import (`orders::apply_orders`, merchant-fulfilled
//! PENDING and UNSHIPPED only). An order Amazon does not know is a warning in the API log.

use job_api::{JobError, Step};
use spapi::orders::FulfilledBy;
use store::instructions;

use crate::{Counts, Cursor, Stepping, apply, reconcile};

/// Checks the next `batch_size` of `ids` (sorted) after the cursor.
pub(crate) async fn batch(
    s: &Stepping<'_>,
    ids: &[String],
    batch_size: i64,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let (run, pool) = (s.run, &s.deps.pool);
    let shop_id = run.shop.shop.id;
    let next: Vec<&String> = ids
        .iter()
        .filter(|id| {
            cursor
                .after_order_id
                .as_ref()
                .is_none_or(|after| *id > after)
        })
        .take(usize::try_from(batch_size).unwrap_or(usize::MAX))
        .collect();
    if next.is_empty() {
        return Ok(Step::Done { watermark: None });
    }
    for order_id in next {
        let why = format!(
            "order {order_id} was announced by Amazon but getOrder does not find it: check it in Seller Central"
        );
        let Some(order) = reconcile::get_order(s, order_id, &why, counts).await? else {
            cursor.after_order_id = Some(order_id.clone());
            continue;
        };
        let mut tx = pool.begin().await?;
        let known = instructions::by_order(&mut tx, shop_id, order_id)
            .await?
            .is_some();
        let importable = matches!(
            order.fulfillment_status().map(|s| s.as_str()),
            Some("PENDING" | "UNSHIPPED")
        ) && order
            .fulfillment
            .as_ref()
            .and_then(|f| f.fulfilled_by.as_ref())
            .is_none_or(|f| *f == FulfilledBy::Merchant);
        if !known && importable {
            counts.seen += 1;
            let mut imported = orders::Counts::default();
            orders::apply_orders(
                &mut tx,
                &s.deps.keys,
                s.events,
                shop_id,
                Some(run.run_id),
                std::slice::from_ref(&order),
                &mut imported,
            )
            .await
            .map_err(|e| match e {
                orders::Error::Store(e) => JobError::Store(e),
                orders::Error::Db(e) => JobError::Db(e),
                orders::Error::Api(e) => JobError::api(reconcile::OPERATION, e),
                other => JobError::Permanent {
                    code: "import_failed",
                    message: format!("order {order_id} could not be imported: {other}"),
                },
            })?;
            counts.imported += imported.new;
            counts.failed += imported.failed;
        } else {
            apply::orders(
                &mut tx,
                &s.deps.keys,
                s.events,
                shop_id,
                run.run_id,
                std::slice::from_ref(&order),
                counts,
            )
            .await?;
        }
        cursor.after_order_id = Some(order_id.clone());
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
    }
    counts.pages += 1;
    Ok(Step::More)
}
