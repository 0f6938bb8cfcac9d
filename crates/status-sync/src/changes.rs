//! Step of `changes` mode: one `searchOrders` page of orders changed since the plan's
//! `lastUpdatedAfter`, applied in one transaction together with the run's cursor. The
//! watermark only moves forward: Amazon's `lastUpdatedBefore`, else the newest change seen,
//! never earlier than where the run started.

use chrono::{DateTime, Utc};
use domain::window::OVERLAP;
use job_api::{JobError, Step};
use spapi::ErrorClass;
use spapi::orders::{FulfilledBy, SearchOrdersParams};

use crate::{Counts, Cursor, Stepping, apply};

const OPERATION: &str = "searchOrders";

/// Fetches and applies the page after the cursor.
pub(crate) async fn page(
    s: &Stepping<'_>,
    page_size: u32,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let run = s.run;
    let Some(after) = run.plan.last_updated_after else {
        return Err(JobError::Permanent {
            code: "run_failed",
            message: format!("run {} has no lastUpdatedAfter", run.run_id),
        });
    };
    let params = SearchOrdersParams {
        last_updated_after: Some(after),
        marketplace_ids: run
            .shop
            .shop
            .marketplaces
            .iter()
            .map(|m| m.id().to_owned())
            .collect(),
        fulfilled_by: vec![FulfilledBy::Merchant],
        max_results_per_page: Some(page_size),
        pagination_token: cursor.next_token.clone(),
        included_data: orders::included::SYNC.to_vec(),
        ..SearchOrdersParams::default()
    };
    let resp = s.api.search_orders(&params).await.map_err(|e| {
        if !matches!(e.class(), ErrorClass::Throttled) {
            counts.tally.call(OPERATION);
        }
        JobError::api(OPERATION, e)
    })?;
    counts.tally.call(OPERATION);
    let mut tx = s.deps.pool.begin().await?;
    apply::orders(
        &mut tx,
        &s.deps.keys,
        s.events,
        run.shop.shop.id,
        run.run_id,
        &resp.orders,
        counts,
    )
    .await?;
    counts.pages += 1;
    cursor.next_token = resp.pagination.and_then(|p| p.next_token);
    if cursor.next_token.is_some() {
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
        return Ok(Step::More);
    }
    tx.commit().await?;
    let newest = resp.orders.iter().map(|o| o.last_updated_time).max();
    Ok(Step::Done {
        watermark: Some(watermark(after, resp.last_updated_before, newest)),
    })
}

/// The next watermark: Amazon's `lastUpdatedBefore`, else the newest change seen, never
/// earlier than `after + OVERLAP` (where the run started).
fn watermark(
    after: DateTime<Utc>,
    last_updated_before: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    last_updated_before
        .or(newest)
        .unwrap_or(after + OVERLAP)
        .max(after + OVERLAP)
}
