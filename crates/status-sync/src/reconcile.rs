//! Step of `reconcile` mode: a batch of open API-imported instructions, keyset-paginated by
//! Amazon order id, each checked with `getOrder` and applied in its own transaction together
//! with the run's cursor. An order Amazon does not know is a warning in the API log.
//!
//! The sweep's second part ([`unpaid`]) checks the same way the unpaid instructions whose state
//! Amazon has not given for longest, at most [`domain::notifications::SWEEP_UNPAID_CHECKS`] per
//! sweep.

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

/// The sweep's check of unpaid instructions (notifications on): the next batch of those whose
/// Amazon state is older than `grace`, longest unknown first, each checked by `getOrder`; the
/// batch applied, marked checked and, where an order turns out paid without a notification,
/// named in the attention entry of missed notifications, in one transaction with the cursor.
/// Done after
/// [`domain::notifications::SWEEP_UNPAID_CHECKS`] checks (so the sweep holds the shop's
/// status-sync lease, which announced orders wait for, about a minute at most) or when none is
/// left, with the sweep's `watermark`.
pub(crate) async fn unpaid(
    s: &Stepping<'_>,
    watermark: Option<chrono::DateTime<chrono::Utc>>,
    grace: chrono::Duration,
    batch_size: i64,
    cursor: &mut Cursor,
    counts: &mut Counts,
) -> Result<Step, JobError> {
    let (run, pool) = (s.run, &s.deps.pool);
    let shop_id = run.shop.shop.id;
    let checked = cursor.unpaid_checked.unwrap_or(0);
    let left = domain::notifications::SWEEP_UNPAID_CHECKS.saturating_sub(checked);
    let ids = if left == 0 {
        Vec::new()
    } else {
        let mut conn = pool.acquire().await?;
        let before = chrono::Utc::now() - grace;
        let limit = batch_size.min(i64::from(left));
        instructions::unpaid_to_check(&mut conn, shop_id, before, limit).await?
    };
    if ids.is_empty() {
        return Ok(Step::Done { watermark });
    }
    // The batch's orders are asked for first, then applied together: one attention entry names
    // every payment of the batch that no notification announced. A failure stops the asking;
    // what was answered is applied before the failure goes to the runner.
    let mut answered = Vec::with_capacity(ids.len());
    let mut failure = None;
    for order_id in ids {
        let why = format!("order {order_id} was not found on Amazon: check it in Seller Central");
        match get_order(s, &order_id, &why, counts).await {
            Ok(order) => answered.push((order_id, order)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut tx = pool.begin().await?;
    let (checked_now, found): (Vec<String>, Vec<Option<spapi::orders::Order>>) =
        answered.into_iter().unzip();
    let found: Vec<spapi::orders::Order> = found.into_iter().flatten().collect();
    let changed = apply::orders(
        &mut tx,
        &s.deps.keys,
        s.events,
        shop_id,
        run.run_id,
        &found,
        counts,
    )
    .await?;
    crate::changes::unannounced(&mut tx, s, &changed, grace, counts).await?;
    instructions::checked_at_amazon(&mut tx, shop_id, &checked_now).await?;
    let n = u32::try_from(checked_now.len()).unwrap_or(u32::MAX);
    cursor.unpaid_checked = Some(checked.saturating_add(n));
    run.checkpoint(&mut tx, &*cursor, &*counts, counts.tally.total_calls())
        .await?;
    tx.commit().await?;
    if let Some(e) = failure {
        return Err(e);
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
