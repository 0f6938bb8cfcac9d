//! The order mirror (issue 20), as order-ingest's differential import and status-sync's
//! `changes` mode step through it: one `searchOrders` poll on `lastUpdatedAfter` per shop
//! (`store::mirror`), shared by both, instead of two polls spending the same quota.
//!
//! A step of either run takes the next [`Batch`]:
//! 1. while the shop's poll is due (the last complete one is older than the minimum interval)
//!    or in progress (a page token is stored, whoever started it), one page is fetched and
//!    handed to the reader in the transaction that moves the cursor past it: the poller applies
//!    what it fetched at once, with no second read;
//! 2. then the versions the reader has not applied yet (those the other reader's poll brought
//!    in), in batches.
//!
//! The reader applies the batch and calls [`applied`] in the same transaction, which writes a
//! fetched page to the mirror: the orders the poller settled for both readers (status-sync's
//! poll imports new orders; order-ingest's leaves status-sync nothing to do for an order it
//! imported just now) without a payload, the others sealed for the other reader. So a process
//! killed mid-page or mid-batch resumes without loss (nothing of the batch committed) and
//! without duplicates (the mirror holds one row per order, each reader records the version it
//! applied). Range and hours imports still query Amazon directly (`import_search`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use domain::shop::Shop;
use domain::window::OVERLAP;
use serde::{Deserialize, Serialize};
use spapi::ErrorClass;
use spapi::orders::{
    FulfilledBy, FulfillmentStatus, Order, SearchOrdersParams, SearchOrdersResponse,
};
use tokio::task::JoinHandle;

/// The fulfillment statuses the poll asks for: every one but `SHIPPED`. A shipped order is
/// nothing either reader acts on (order-ingest imports PENDING and UNSHIPPED; status-sync's
/// payments and cancellations concern open orders, and a cancellation after shipment comes as
/// `CANCELLED`), and the connector's own shipment confirmations would otherwise be about as
/// many changes as all the rest together. An order shipped outside the connector while its
/// instruction waits unpaid is found by `ctl trigger status-sync --reconcile` (getOrder per
/// open instruction).
pub const POLLED_STATUSES: [FulfillmentStatus; 6] = [
    FulfillmentStatus::PendingAvailability,
    FulfillmentStatus::Pending,
    FulfillmentStatus::Unshipped,
    FulfillmentStatus::PartiallyShipped,
    FulfillmentStatus::Cancelled,
    FulfillmentStatus::Unfulfillable,
];
/// The statuses the sweep asks for while Amazon announces the shop's order changes
/// (`domain::notifications`): only cancellations, the changes that must never wait for a lost
/// notification (an order shipped although cancelled). New orders come from order-ingest's
/// new-orders poll, and a payment a lost notification did not bring from the sweep's `getOrder`
/// of the instructions still unpaid: a full read of every change would spend the searchOrders
/// quota those need (`bench day`, docs/benchmarks.md).
pub const SWEPT_STATUSES: [FulfillmentStatus; 1] = [FulfillmentStatus::Cancelled];
use sqlx::PgConnection;
use store::api_log;
use store::mirror::{self, Row};
use store::runs::Tally;

pub use store::mirror::Reader;

use crate::{Error, included};

/// The Amazon operation of a poll.
pub const OPERATION: &str = "searchOrders";

/// A shop never polled starts this far back.
pub const FIRST_LOOKBACK: Duration = Duration::days(7);

/// The services' setting of the minimum interval between polls, in seconds (0–3600).
pub const MIN_POLL_ENV: &str = "ORDER_MIRROR_MIN_POLL_SECONDS";

/// How often the services poll at most by default ([`MIN_POLL_ENV`]): a run that finds a poll
/// younger than this reads the mirror only. Just under order-ingest's default cadence (every 15
/// minutes, `domain::schedule::DEFAULTS`), so a shop is polled about every 15 minutes whoever
/// runs: one of status-sync's 10-minute runs in two polls (and imports the new orders it
/// finds), the other reads what the last poll brought, and so do order-ingest's runs that come
/// right after one. Each poll costs one call however few orders changed, and Amazon refills a
/// seller's searchOrders bucket only every 180 s (0.0056/s): against a poll at every
/// status-sync run, this halves the calls at 5,000 orders a day (`bench day`,
/// docs/benchmarks.md) for a payment seen up to 5 minutes later when notifications are off.
pub const SERVICE_MIN_POLL_SECONDS: u64 = 840;

/// How a reader polls.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `maxResultsPerPage` of the poll, and orders per read batch.
    pub page_size: u32,
    /// A complete poll younger than this is not repeated (zero: every run polls).
    pub min_interval: Duration,
    /// The fulfillment statuses asked for: [`POLLED_STATUSES`], or [`SWEPT_STATUSES`] for
    /// status-sync's sweep while notifications are on (order-ingest then does not read the
    /// mirror).
    pub statuses: &'static [FulfillmentStatus],
}

/// Where a run is in the mirror (part of the run's cursor in the ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The poll's next page, asked for while this run applies the current one (not saved).
    #[serde(skip)]
    pub ahead: Ahead,
    /// The run has polled (or found the poll fresh) and now reads what is pending.
    #[serde(default)]
    pub reading: bool,
    /// The watermark of the poll this run completed, if it completed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<DateTime<Utc>>,
}

/// The next page of a poll in progress, asked for by this process as soon as the page before
/// it came back, so Amazon's answer is on its way while that page is applied and committed.
/// The next step uses it only for the page the committed cursor names (same `lastUpdatedAfter`
/// and page token); otherwise (the page was not committed, or another process continued the
/// poll meanwhile) it is dropped and the task stopped. A cache, not part of the run's state:
/// never saved, and equal to any other.
#[derive(Clone, Default)]
pub struct Ahead(Option<Arc<AheadPage>>);

struct AheadPage {
    after: DateTime<Utc>,
    token: String,
    task: Mutex<Option<JoinHandle<spapi::Result<SearchOrdersResponse>>>>,
}

impl Drop for AheadPage {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

impl Ahead {
    /// Asks for the page of `params` (its token) in the background.
    fn spawn(api: &spapi::Shop, after: DateTime<Utc>, params: SearchOrdersParams) -> Self {
        let Some(token) = params.pagination_token.clone() else {
            return Self(None);
        };
        let api = api.clone();
        let task = tokio::spawn(async move { api.search_orders(&params).await });
        Self(Some(Arc::new(AheadPage {
            after,
            token,
            task: Mutex::new(Some(task)),
        })))
    }

    /// The page asked for ahead if it is the one the cursor names, whatever else was asked
    /// for dropped. `None` when there is none or it failed (the caller asks again).
    async fn take(&mut self, after: DateTime<Utc>, token: &str) -> Option<SearchOrdersResponse> {
        let page = self.0.take()?;
        if page.after != after || page.token != token {
            return None;
        }
        let task = page.task.lock().ok()?.take()?;
        match task.await {
            Ok(Ok(resp)) => Some(resp),
            _ => None,
        }
    }
}

impl PartialEq for Ahead {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Ahead {}

impl std::fmt::Debug for Ahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("Ahead(next page asked for)"),
            None => f.write_str("Ahead(none)"),
        }
    }
}

/// What a step applies.
#[derive(Debug)]
pub struct Batch {
    /// The orders, each in the latest state the mirror holds (for order-ingest: importable
    /// ones only).
    pub orders: Vec<Order>,
    /// Every version the batch covers (including rows that could not be read), for [`applied`].
    versions: Vec<(String, DateTime<Utc>)>,
    /// A page fetched from Amazon now: every order on it, written to the mirror by [`applied`]
    /// (otherwise the batch was read from the mirror: empty).
    polled: Vec<Order>,
    /// `true` when this was a page fetched from Amazon now (otherwise read from the mirror).
    pub fetched: bool,
    /// `false` while more may follow.
    pub last: bool,
}

/// A reader of one shop's mirror: the keyring (payloads are sealed), the shop and its SP-API
/// handle, and how it polls.
pub struct Poller<'a> {
    pub keys: &'a crypto::Keyring,
    pub api: &'a spapi::Shop,
    pub shop: &'a Shop,
    pub reader: Reader,
    pub settings: Settings,
}

/// The next batch of the poller's reader: a page of the shop's poll while one is due or in
/// progress, then the versions the reader has not applied. Runs in `tx` (which holds the poll's
/// cursor lock while a page is fetched and written). Amazon calls are counted in `tally`.
pub async fn next_batch(
    tx: &mut PgConnection,
    p: &Poller<'_>,
    position: &mut Position,
    tally: &mut Tally,
    now: DateTime<Utc>,
) -> Result<Batch, Error> {
    if !position.reading {
        if let Some(batch) = poll_page(tx, p, position, tally, now).await? {
            return Ok(batch);
        }
        position.reading = true;
    }
    read_pending(tx, p).await
}

/// Records that the poller's reader applied `batch` (same transaction as the apply). A fetched
/// page is written to the mirror now: the orders in `settled` (both readers' work done by the
/// poller) as applied by both and without a payload, the others sealed for the other reader.
pub async fn applied(
    tx: &mut PgConnection,
    p: &Poller<'_>,
    batch: &Batch,
    settled: &HashSet<String>,
) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let rows: Vec<Row> = batch
        .polled
        .iter()
        .map(|o| row(p.keys, p.shop, o, settled.contains(&o.order_id)))
        .collect();
    // The rows written now carry the poller's version; the rest (read again in the poll's
    // overlap, or read from the mirror) are marked.
    let written = if rows.is_empty() {
        HashSet::new()
    } else {
        mirror::upsert(tx, p.shop.id, p.reader, &rows).await?
    };
    let unwritten: Vec<(String, DateTime<Utc>)> = batch
        .versions
        .iter()
        .filter(|(id, _)| !written.contains(id))
        .cloned()
        .collect();
    if !unwritten.is_empty() {
        mirror::mark(tx, p.shop.id, p.reader, &unwritten).await?;
    }
    tracing::debug!(
        rows = rows.len(),
        sealed = rows.iter().filter(|r| r.payload.is_some()).count(),
        write_ms = started.elapsed().as_millis() as u64,
        "order mirror batch recorded"
    );
    Ok(())
}

/// One page of the shop's poll, or `None` when the last poll is fresh.
async fn poll_page(
    tx: &mut PgConnection,
    p: &Poller<'_>,
    position: &mut Position,
    tally: &mut Tally,
    now: DateTime<Utc>,
) -> Result<Option<Batch>, Error> {
    let (shop, settings) = (p.shop, p.settings);
    let started = std::time::Instant::now();
    let cursor = mirror::lock_cursor(tx, shop.id, now - FIRST_LOOKBACK).await?;
    let locked = started.elapsed();
    let fresh = cursor
        .polled_at
        .is_some_and(|at| now - at < settings.min_interval);
    if cursor.next_token.is_none() && fresh {
        return Ok(None);
    }
    let after = match (&cursor.next_token, cursor.poll_after) {
        (Some(_), Some(after)) => after,
        _ => (cursor.watermark - OVERLAP).min(now),
    };
    // A poll in progress goes on with the statuses it began with, whoever continues it: Amazon
    // refuses a page token with other filters, and the sweep asks for fewer than the full poll
    // (a sweep finding a full poll in progress finishes it as a full poll, and the other way
    // round when the shop subscribed or unsubscribed meanwhile).
    let statuses: Vec<FulfillmentStatus> = match (&cursor.next_token, &cursor.poll_statuses) {
        (Some(_), Some(began)) => began.iter().map(|s| s.as_str().into()).collect(),
        _ => settings.statuses.to_vec(),
    };
    let params = SearchOrdersParams {
        last_updated_after: Some(after),
        fulfillment_statuses: statuses.clone(),
        pagination_token: cursor.next_token.clone(),
        included_data: included::SYNC.to_vec(),
        ..crate::search::merchant_orders(shop, settings.page_size)
    };
    let ahead = match &cursor.next_token {
        Some(token) => position.ahead.take(after, token).await,
        None => None,
    };
    position.ahead = Ahead::default();
    let asked = match ahead {
        Some(resp) => Ok(resp),
        None => p.api.search_orders(&params).await,
    };
    let resp = match asked {
        Ok(resp) => resp,
        Err(e) => {
            if !matches!(e.class(), ErrorClass::Throttled) {
                tally.call(OPERATION);
            }
            return Err(e.into());
        }
    };
    tally.call(OPERATION);
    let fetched = started.elapsed();
    let next = resp.pagination.and_then(|p| p.next_token);
    match &next {
        Some(token) => {
            let began: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
            mirror::save_page(tx, shop.id, after, token, &began).await?;
            let params = SearchOrdersParams {
                pagination_token: Some(token.clone()),
                ..params
            };
            position.ahead = Ahead::spawn(p.api, after, params);
        }
        None => {
            let newest = resp.orders.iter().map(|o| o.last_updated_time).max();
            let mark = watermark(after, resp.last_updated_before, newest);
            mirror::finish_poll(tx, shop.id, mark, now).await?;
            position.watermark = Some(mark);
            position.reading = true;
        }
    }
    tracing::debug!(
        orders = resp.orders.len(),
        lock_ms = locked.as_millis() as u64,
        fetch_ms = (fetched - locked).as_millis() as u64,
        cursor_ms = (started.elapsed() - fetched).as_millis() as u64,
        "order mirror page polled"
    );
    let versions = resp
        .orders
        .iter()
        .map(|o| (o.order_id.clone(), o.last_updated_time))
        .collect();
    let orders = match p.reader {
        Reader::Ingest => resp
            .orders
            .iter()
            .filter(|o| importable(o))
            .cloned()
            .collect(),
        Reader::Sync => resp.orders.clone(),
    };
    Ok(Some(Batch {
        orders,
        versions,
        polled: resp.orders,
        fetched: true,
        last: false,
    }))
}

/// Up to `limit` versions the reader has not applied, opened. A row that cannot be opened is
/// named in the API log (with how to recover it) and counted as applied, so it never blocks
/// the rows after it.
async fn read_pending(tx: &mut PgConnection, p: &Poller<'_>) -> Result<Batch, Error> {
    let (shop, reader, limit) = (p.shop, p.reader, p.settings.page_size);
    let rows = mirror::pending(tx, shop.id, reader, i64::from(limit)).await?;
    let last = rows.len() < limit as usize;
    let mut orders = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    for r in rows {
        match open(p.keys, shop, &r) {
            Ok(Some(order)) => orders.push(order),
            Ok(None) => {}
            Err(reason) => unreadable(tx, shop, reader, &r.amazon_order_id, &reason).await?,
        }
        versions.push((r.amazon_order_id, r.last_updated_time));
    }
    Ok(Batch {
        orders,
        versions,
        polled: Vec::new(),
        fetched: false,
        last,
    })
}

/// The row of `order` for the mirror: `settled` (both readers done) without a payload, else
/// its JSON deflated (a fraction of the bytes) and sealed.
fn row(keys: &crypto::Keyring, shop: &Shop, order: &Order, settled: bool) -> Row {
    let payload = (!settled).then(|| {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut z, order).expect("an order serializes");
        let deflated = z.finish().expect("deflating into memory cannot fail");
        mirror::seal(keys, shop.id, &order.order_id, &deflated)
    });
    Row {
        amazon_order_id: order.order_id.clone(),
        last_updated_time: order.last_updated_time,
        importable: importable(order),
        payload,
        settled,
    }
}

/// The order of a pending row; `None` when its payload was purged (nothing to apply).
fn open(keys: &crypto::Keyring, shop: &Shop, r: &mirror::Pending) -> Result<Option<Order>, String> {
    let Some(sealed) = &r.payload else {
        return Ok(None);
    };
    let deflated =
        mirror::open(keys, shop.id, &r.amazon_order_id, sealed).map_err(|e| e.to_string())?;
    serde_json::from_reader(flate2::read::DeflateDecoder::new(deflated.as_slice()))
        .map(Some)
        .map_err(|e| format!("the stored order is not valid: {e}"))
}

async fn unreadable(
    tx: &mut PgConnection,
    shop: &Shop,
    reader: Reader,
    order_id: &str,
    reason: &str,
) -> Result<(), Error> {
    let action = match reader {
        Reader::Ingest => crate::ACTION,
        Reader::Sync => "status-sync",
    };
    let message = format!(
        "order {order_id} in the order mirror could not be read ({reason}); the other orders are \
         unaffected. Recover it with `ctl import-order --shop {code} {order_id}`",
        code = shop.code.as_str()
    );
    tracing::warn!(amazon_order_id = %order_id, %reason, "mirror row unreadable");
    let entry = api_log::Entry {
        amazon_order_id: Some(order_id),
        code: Some("mirror_row_unreadable"),
        ..api_log::Entry::new(Some(shop.id), action, api_log::Level::Error, &message)
    };
    api_log::write(tx, &entry).await?;
    Ok(())
}

/// Merchant-fulfilled PENDING or UNSHIPPED: what order-ingest imports.
pub fn importable(order: &Order) -> bool {
    let merchant = !order
        .fulfillment
        .as_ref()
        .and_then(|f| f.fulfilled_by.as_ref())
        .is_some_and(|f| *f == FulfilledBy::Amazon);
    merchant
        && matches!(
            order.fulfillment_status(),
            Some(FulfillmentStatus::Pending | FulfillmentStatus::Unshipped)
        )
}

/// The next watermark: Amazon's `lastUpdatedBefore`, else the newest change seen, never
/// earlier than `after + OVERLAP` (where the poll started).
pub fn watermark(
    after: DateTime<Utc>,
    last_updated_before: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    last_updated_before
        .or(newest)
        .unwrap_or(after + OVERLAP)
        .max(after + OVERLAP)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use domain::messages::Action;
    use domain::schedule::{Cadence, DEFAULT_ENTRY, DEFAULTS};

    /// A shop is polled about once per order-ingest cadence: not at every status-sync run
    /// (the one after a poll reads the mirror), never less often than order-ingest runs.
    #[test]
    fn the_minimum_interval_is_just_under_order_ingests_cadence() {
        let every = |action: Action| {
            let d = DEFAULTS
                .iter()
                .find(|d| d.action == action && d.entry == DEFAULT_ENTRY)
                .unwrap();
            let c = Cadence::from_str(d.cron).unwrap();
            let t0 = "2026-12-01T00:00:30Z".parse::<DateTime<Utc>>().unwrap();
            let a = c.next_after(t0, chrono_tz::Asia::Tokyo).unwrap();
            let b = c.next_after(a, chrono_tz::Asia::Tokyo).unwrap();
            (b - a).num_seconds() as u64
        };
        let (sync, ingest) = (every(Action::StatusSync), every(Action::OrderIngest));
        assert!(SERVICE_MIN_POLL_SECONDS < ingest, "{ingest}");
        assert!(SERVICE_MIN_POLL_SECONDS > sync, "{sync}");
        assert!(SERVICE_MIN_POLL_SECONDS >= ingest * 9 / 10, "{ingest}");
    }

    #[test]
    fn importable_means_merchant_pending_or_unshipped() {
        let order = |status: &str| -> Order {
            serde_json::from_value(serde_json::json!({
                "orderId": "503-1234567-1234567",
                "createdTime": "2026-12-01T00:00:00Z",
                "lastUpdatedTime": "2026-12-01T00:00:00Z",
                "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"}
            }))
            .unwrap()
        };
        assert!(importable(&order("PENDING")));
        assert!(importable(&order("UNSHIPPED")));
        assert!(!importable(&order("CANCELLED")));
        assert!(!importable(&order("SHIPPED")));
    }

    #[test]
    fn the_watermark_never_moves_back() {
        let after = "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(watermark(after, None, None), after + OVERLAP);
        let before = after + Duration::hours(1);
        assert_eq!(watermark(after, Some(before), None), before);
        assert_eq!(watermark(after, Some(after), None), after + OVERLAP);
    }
}
