//! Step, part 2: one page's orders applied (`orders::apply_orders`) in one transaction together
//! with the run's cursor, so a process that dies resumes exactly after the last committed page.

use job_api::{JobError, RunCtx};
use orders::Counts;
use spapi::orders::Order;
use sqlx::PgPool;

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
    .map_err(|e| e.into_job("applying a page"))?;
    counts.pages += 1;
    if cursor.next_token.is_some() {
        run.checkpoint(&mut tx, cursor, counts, counts.tally.total_calls())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
