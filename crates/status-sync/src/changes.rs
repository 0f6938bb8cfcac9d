//! Step of `changes` mode: one `searchOrders` page of orders changed since the plan's
//! `lastUpdatedAfter`, applied in one transaction together with the run's cursor. The
//! watermark only moves forward: Amazon's `lastUpdatedBefore`, else the newest change seen,
//! never earlier than where the run started.

use chrono::{DateTime, Duration, Utc};
use domain::window::OVERLAP;
use job_api::{JobError, Step};
use spapi::ErrorClass;
use spapi::orders::{FulfilledBy, SearchOrdersParams};

use sqlx::PgConnection;
use store::{api_log, notifications};

use crate::{ACTION, Counts, Cursor, Stepping, apply};

const OPERATION: &str = "searchOrders";

/// Fetches and applies the page after the cursor.
pub(crate) async fn page(
    s: &Stepping<'_>,
    page_size: u32,
    announce_grace: Duration,
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
    let changed = apply::orders(
        &mut tx,
        &s.deps.keys,
        s.events,
        run.shop.shop.id,
        run.run_id,
        &resp.orders,
        counts,
    )
    .await?;
    unannounced(&mut tx, s, &changed, announce_grace, counts).await?;
    counts.pages += 1;
    cursor.next_token = resp.pagination.and_then(|p| p.next_token);
    if cursor.next_token.is_some() {
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
        return Ok(Step::More);
    }
    // The run's last page: warn about open orders whose ship-by time is near.
    let shop = &run.shop.shop;
    let due = orders::ship_by::notice(
        &mut tx,
        shop.id,
        shop.time_zone,
        Some(run.run_id),
        ACTION,
        Utc::now(),
    )
    .await?;
    counts.ship_by += due;
    tx.commit().await?;
    let newest = resp.orders.iter().map(|o| o.last_updated_time).max();
    Ok(Step::Done {
        watermark: Some(watermark(after, resp.last_updated_before, newest)),
    })
}

/// Code of the attention entry for changes no notification announced.
pub const UNANNOUNCED_CODE: &str = "notifications_missed";

/// With notifications on (the shop's ORDER_CHANGE subscription), this poll is the sweep: a
/// change it applies that Amazon made more than `grace` ago and no ORDER_CHANGE notification
/// announced means notifications are not arriving (dropped, the listener down, the subscription
/// gone). One attention entry per page names the orders (up to ten) and what to check. A change
/// younger than `grace` is not judged: its notification may still be on its way.
async fn unannounced(
    tx: &mut PgConnection,
    s: &Stepping<'_>,
    changed: &[apply::Changed],
    grace: Duration,
    counts: &mut Counts,
) -> Result<(), JobError> {
    let shop = &s.run.shop.shop;
    if changed.is_empty() || !notifications::order_changes_announced(&mut *tx, shop.id).await? {
        return Ok(());
    }
    let judged_before = Utc::now() - grace;
    let old: Vec<String> = changed
        .iter()
        .filter(|c| c.last_updated <= judged_before)
        .map(|c| c.order_id.clone())
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let missed = notifications::unannounced_orders(&mut *tx, shop.id, &old).await?;
    if missed.is_empty() {
        return Ok(());
    }
    let n = u32::try_from(missed.len()).unwrap_or(u32::MAX);
    counts.unannounced += n;
    counts.attention += 1;
    let listed = missed
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = missed.len().saturating_sub(10);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let message = format!(
        "the sweep applied {n} order change(s) that no Amazon notification announced          (orders {listed}{more}): notifications for shop {code} are not arriving. Check          `ctl notifications status {code}` (subscription and last notification), the SQS queue          and the notification-listener's log; polling keeps applying changes meanwhile",
        code = shop.code.as_str()
    );
    let entry = api_log::Entry {
        run_id: Some(s.run.run_id),
        amazon_order_id: missed.first().map(String::as_str),
        code: Some(UNANNOUNCED_CODE),
        ..api_log::Entry::new(Some(shop.id), ACTION, api_log::Level::Attention, &message)
    };
    api_log::write(&mut *tx, &entry).await?;
    Ok(())
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
