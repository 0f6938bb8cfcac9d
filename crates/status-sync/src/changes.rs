//! Step of `changes` mode: the next batch of the shop's order mirror (`orders::mirror`: a page
//! of the shop's one `lastUpdatedAfter` poll when it is due, then what order-ingest's polls
//! brought in), applied in one transaction together with the mirror's bookkeeping and the run's
//! cursor: new orders imported (as order-ingest would), payments and cancellations applied. The run's watermark is the poll's (Amazon's `lastUpdatedBefore`, never moving back).

use std::collections::HashSet;

use chrono::{Duration, Utc};
use job_api::{JobError, Step};
use orders::mirror::{self, Reader};

use sqlx::PgConnection;
use store::{api_log, notifications};

use crate::{ACTION, Counts, Cursor, Stepping, apply};

/// Fetches or reads the next batch and applies it.
pub(crate) async fn page(
    s: &Stepping<'_>,
    settings: mirror::Settings,
    announce_grace: Duration,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let run = s.run;
    let shop = &run.shop.shop;
    let mut tx = s.deps.pool.begin().await?;
    let poller = mirror::Poller {
        keys: &s.deps.keys,
        api: s.api,
        shop,
        reader: Reader::Sync,
        settings,
    };
    let now = Utc::now();
    let batch = mirror::next_batch(&mut tx, &poller, &mut cursor.mirror, &mut counts.tally, now)
        .await
        .map_err(|e| e.into_job(mirror::OPERATION))?;
    let known = import_new(&mut tx, s, &batch.orders, counts).await?;
    let changed = apply::orders(
        &mut tx,
        &s.deps.keys,
        s.events,
        shop.id,
        run.run_id,
        &batch.orders,
        counts,
    )
    .await?;
    // Both readers' work is done for every order of a page polled here (the new ones imported,
    // the others applied), but an importable one whose import failed: order-ingest's next run
    // reads only those.
    let job = |e: orders::Error| e.into_job(mirror::OPERATION);
    let settled = batch
        .orders
        .iter()
        .filter(|o| !mirror::importable(o) || known.contains(&o.order_id))
        .map(|o| o.order_id.clone())
        .collect();
    mirror::applied(&mut tx, &poller, &batch, &settled)
        .await
        .map_err(job)?;
    unannounced(&mut tx, s, &changed, announce_grace, counts).await?;
    if batch.fetched {
        counts.pages += 1;
    }
    if !batch.last {
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
        return Ok(Step::More);
    }
    // The run's last batch: warn about open orders whose ship-by time is near.
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
    if run.plan.sweep {
        // The sweep goes on with the unpaid instructions (`reconcile::unpaid`).
        cursor.unpaid_checked = Some(0);
        run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
            .await?;
        tx.commit().await?;
        return Ok(Step::More);
    }
    tx.commit().await?;
    Ok(Step::Done {
        watermark: cursor.mirror.watermark.or(run.plan.last_updated_after),
    })
}

/// The batch's orders with no instruction yet that order-ingest imports (merchant-fulfilled
/// PENDING or UNSHIPPED) are imported now, by order-ingest's import (`orders::apply_orders`): a
/// new order the mirror's poll brings waits for no second service, and order-ingest's own run
/// finds nothing left to do. Returns which of the batch's importable orders have an
/// instruction now (known before or imported here).
async fn import_new(
    tx: &mut PgConnection,
    s: &Stepping<'_>,
    batch: &[spapi::orders::Order],
    counts: &mut Counts,
) -> Result<HashSet<String>, JobError> {
    let shop_id = s.run.shop.shop.id;
    let importable: Vec<&spapi::orders::Order> =
        batch.iter().filter(|o| mirror::importable(o)).collect();
    let ids: Vec<&str> = importable.iter().map(|o| o.order_id.as_str()).collect();
    let mut known = store::instructions::known_orders(&mut *tx, shop_id, &ids).await?;
    let new: Vec<spapi::orders::Order> = importable
        .into_iter()
        .filter(|o| !known.contains(&o.order_id))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(known);
    }
    let mut imported = orders::Counts::default();
    let (keys, run_id) = (&s.deps.keys, Some(s.run.run_id));
    let inserted = orders::apply_orders(tx, keys, s.events, shop_id, run_id, &new, &mut imported)
        .await
        .map_err(|e| e.into_job(mirror::OPERATION))?;
    counts.imported += imported.new;
    counts.failed += imported.failed;
    known.extend(inserted);
    Ok(known)
}

/// Code of the attention entry for changes no notification announced.
pub const UNANNOUNCED_CODE: &str = "notifications_missed";

/// With notifications on (the shop's ORDER_CHANGE subscription), this poll is the sweep: a
/// change it applies that Amazon made more than `grace` ago and no ORDER_CHANGE notification
/// announced means notifications are not arriving (dropped, the listener down, the subscription
/// gone). One attention entry per page names the orders (up to ten) and what to check. A change
/// younger than `grace` is not judged: its notification may still be on its way.
pub(crate) async fn unannounced(
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
        "the sweep applied {n} order change(s) that no Amazon notification announced (orders {listed}{more}): notifications for shop {code} are not arriving. Check `ctl notifications status {code}` (subscription and last notification), the SQS queue and the notification-listener's log; polling keeps applying changes meanwhile",
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
