//! Step of `reconcile` mode: a batch of open API-imported instructions, keyset-paginated by
//! Amazon order id, each checked with `getOrder` and applied in its own transaction together
//! with the run's cursor. An order Amazon does not know is a warning in the API log.

use job_api::{JobError, Step};
use spapi::ErrorClass;
use store::{api_log, instructions};

use crate::{ACTION, Counts, Cursor, Stepping, apply};

pub(crate) const OPERATION: &str = "getOrder";

/// Checks the next batch of `batch_size` instructions after the cursor.
pub(crate) async fn batch(
    s: &Stepping<'_>,
    batch_size: i64,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let (run, pool) = (s.run, &s.deps.pool);
    let shop_id = run.shop.shop.id;
    let mut conn = pool.acquire().await?;
    let batch = instructions::open_imported(
        &mut conn,
        shop_id,
        cursor.after_order_id.as_deref(),
        batch_size,
    )
    .await?;
    drop(conn);
    if batch.is_empty() {
        return Ok(Step::Done { watermark: None });
    }
    for order_id in batch.into_iter().filter_map(|i| i.amazon_order_id) {
        let why = format!("order {order_id} was not found on Amazon: check it in Seller Central");
        let Some(order) = get_order(s, &order_id, &why, counts).await? else {
            cursor.after_order_id = Some(order_id);
            continue;
        };
        let mut tx = pool.begin().await?;
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
        cursor.after_order_id = Some(order_id);
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
    }
    counts.pages += 1;
    Ok(Step::More)
}

/// `getOrder` of one order of a batch (reconcile, announced orders), counted in the tally. An
/// order Amazon does not know (404) is a warning in the API log saying `not_found`, counted as
/// failed, and `None`: the batch goes on. Any other failure is the runner's to handle.
pub(crate) async fn get_order(
    s: &Stepping<'_>,
    order_id: &str,
    not_found: &str,
    counts: &mut Counts,
) -> Result<Option<spapi::orders::Order>, JobError> {
    match s.api.get_order(order_id, &orders::included::SYNC).await {
        Ok(o) => {
            counts.tally.call(OPERATION);
            Ok(Some(o))
        }
        Err(e) if e.status() == Some(404) => {
            counts.tally.call(OPERATION);
            counts.failed += 1;
            let mut c = s.deps.pool.acquire().await?;
            api_log::write(
                &mut c,
                &api_log::Entry {
                    run_id: Some(s.run.run_id),
                    amazon_order_id: Some(order_id),
                    code: Some("order_not_found"),
                    ..api_log::Entry::new(
                        Some(s.run.shop.shop.id),
                        ACTION,
                        api_log::Level::Warning,
                        not_found,
                    )
                },
            )
            .await?;
            Ok(None)
        }
        Err(e) => {
            if !matches!(e.class(), ErrorClass::Throttled) {
                counts.tally.call(OPERATION);
            }
            Err(JobError::api(OPERATION, e))
        }
    }
}
