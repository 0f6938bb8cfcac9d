//! Step, part 2: one page's orders applied (`orders::apply_orders`) in one transaction together
//! with the run's cursor, so a process that dies resumes exactly after the last committed page.

use job_api::{JobError, RunCtx};
use orders::Counts;
use spapi::orders::Order;
use sqlx::PgPool;
use store::StoreError;

use crate::Cursor;
use crate::window::Plan;

/// Applies `page` and saves `cursor` (already moved past the page) with `counts`.
pub(crate) async fn page(
    pool: &PgPool,
    keys: &crypto::Keyring,
    events: &str,
    run: &RunCtx<'_, Plan>,
    page: &[Order],
    cursor: &Cursor,
    counts: &mut Counts,
) -> Result<(), JobError> {
    let mut tx = pool.begin().await?;
    orders::apply_orders(
        &mut tx,
        keys,
        events,
        run.shop.shop.id,
        Some(run.run_id),
        page,
        counts,
    )
    .await
    .map_err(job_error)?;
    counts.pages += 1;
    if cursor.next_token.is_some() {
        run.checkpoint(&mut tx, cursor, counts, counts.tally.total_calls())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A page that cannot be applied is an infrastructure failure: the message is retried.
pub(crate) fn job_error(e: orders::Error) -> JobError {
    match e {
        orders::Error::Store(e) | orders::Error::Upsert(orders::upsert::UpsertError::Store(e)) => {
            e.into()
        }
        orders::Error::Db(e) | orders::Error::Upsert(orders::upsert::UpsertError::Db(e)) => {
            e.into()
        }
        orders::Error::Upsert(orders::upsert::UpsertError::Encode(m)) => {
            StoreError::Corrupt(m).into()
        }
        orders::Error::Api(e) => JobError::api("applying a page", e),
    }
}
