//! Step of a differential import: the next batch of the shop's order mirror
//! (`orders::mirror`: a page of the shop's one `lastUpdatedAfter` poll when it is due, then what
//! status-sync's polls brought in), applied by `orders::apply_orders` in the same transaction as
//! the mirror's bookkeeping and the run's cursor.

use chrono::Utc;
use job_api::{JobError, RunCtx, Step};
use orders::Counts;
use orders::mirror::{self, Reader};

use crate::Cursor;
use crate::window::Plan;

/// What a step works with.
pub(crate) struct Mirrored<'a> {
    pub(crate) deps: &'a job_api::Deps,
    pub(crate) api: &'a spapi::Shop,
    pub(crate) settings: mirror::Settings,
}

/// One batch: fetched (a poll page) or read (pending in the mirror), applied, marked.
pub(crate) async fn step(
    m: &Mirrored<'_>,
    run: &RunCtx<'_, Plan>,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let deps = m.deps;
    let shop = &run.shop.shop;
    let mut tx = deps.pool.begin().await?;
    let poller = mirror::Poller {
        keys: &deps.keys,
        api: m.api,
        shop,
        reader: Reader::Ingest,
        settings: m.settings,
    };
    let now = Utc::now();
    let batch = mirror::next_batch(&mut tx, &poller, &mut cursor.mirror, &mut counts.tally, now)
        .await
        .map_err(|e| e.into_job(mirror::OPERATION))?;
    let polled = std::time::Instant::now();
    let job = |e: orders::Error| e.into_job(mirror::OPERATION);
    let (events, run_id) = (&deps.events, Some(run.run_id));
    let inserted = orders::apply_orders(
        &mut tx,
        &deps.keys,
        events,
        shop.id,
        run_id,
        &batch.orders,
        counts,
    )
    .await
    .map_err(job)?;
    // The orders this page brought that are imported now and were not before (and held if
    // their buyer asked to cancel): status-sync has nothing to do with them, so no payload is
    // kept.
    let settled = inserted;
    mirror::applied(&mut tx, &poller, &batch, &settled)
        .await
        .map_err(job)?;
    let applied = polled.elapsed();
    if batch.fetched {
        counts.pages += 1;
    }
    if !batch.last {
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
    }
    tx.commit().await?;
    tracing::debug!(
        orders = batch.orders.len(),
        apply_ms = applied.as_millis() as u64,
        commit_ms = (polled.elapsed() - applied).as_millis() as u64,
        "order mirror batch applied"
    );
    Ok(if batch.last {
        Step::Done {
            watermark: Some(cursor.mirror.watermark.unwrap_or(run.plan.to)),
        }
    } else {
        Step::More
    })
}
