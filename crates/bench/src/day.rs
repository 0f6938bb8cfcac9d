//! `bench day` (issue 20): a JP seller's day in simulated time, at Amazon's default quotas
//! (`spapi::Operation::default_quota`) and the default schedules (`domain::schedule::DEFAULTS`,
//! fired by the one scheduler CronJob of `deploy/`; with notifications, status-sync's entry is
//! the hourly sweep `domain::notifications::SWEEP_CRON`), run **polling only** and **with
//! notifications**.
//!
//! This is a discrete-event **model** of the connector's Amazon traffic, not a run of the
//! services: a day at 20,000 orders under a 180-second searchOrders refill takes a day in real
//! time, and compressing the quotas does not compress Amazon's own timing (the 5-minute
//! overlap, `lastUpdatedBefore`). What the model takes from the code: the quotas, the
//! cadences, the page size (100), the mirror's overlap (`domain::window::OVERLAP`) and minimum
//! poll interval (`orders::mirror::SERVICE_MIN_POLL_SECONDS`), who applies what (order-ingest
//! imports PENDING/UNSHIPPED and fills in payment; the mirror's poll leaves SHIPPED out; status-sync applies payment and
//! cancellation and, when it polled, imports the new orders; the `orders` mode calls `getOrder` per announced order, one run at a time per
//! shop), and that a call is made only with a token (the shared limiter: no 429s). The services'
//! own time (milliseconds per page, `bench ingest`) is left out: Amazon's quotas dominate by
//! orders of magnitude.
//!
//! Each mode also reports `search_orders_calls_two_polls`: the same day with order-ingest and
//! status-sync polling separately, as before the order mirror (order-ingest on `createdAfter`
//! with PENDING/UNSHIPPED, status-sync on `lastUpdatedAfter`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Tokyo;
use domain::messages::Action;
use domain::schedule::{Cadence, DEFAULT_ENTRY, DEFAULTS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use spapi::operation::Operation;

/// Seconds of simulated time.
type T = f64;

const HOUR: T = 3600.0;
const DAY: T = 24.0 * HOUR;
/// After the day, the model runs on this long so late work can finish (and be measured).
const DRAIN: T = 6.0 * HOUR;
const PAGE: usize = 100;
/// A lag is "bounded" when its p99 stays under this and its max under [`MAX_BOUND`].
const P99_BOUND: T = HOUR;
const MAX_BOUND: T = 4.0 * HOUR;
/// ORDER_CHANGE and FEED_PROCESSING_FINISHED reach the listener this long after the change
/// (SQS; Amazon states no bound, a few seconds is typical).
const NOTIFY_DELAY: (T, T) = (2.0, 30.0);
/// Amazon processes a feed in this long.
const FEED_PROCESSING: T = 180.0;

/// Polling only, or with notifications (ORDER_CHANGE and FEED_PROCESSING_FINISHED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Polling,
    Notifications,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::Notifications => "notifications",
        }
    }
}

/// The workload: one seller's day.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub orders: usize,
    pub seed: u64,
    /// Share of orders placed PENDING and paid within hours.
    pub pending: f64,
    /// Share of orders cancelled before shipment.
    pub cancelled: f64,
    /// The peak hour's order rate, as a multiple of the day's average hour.
    pub peak: f64,
    /// Amazon sends ORDER_CHANGE for brand-new orders too. It does not reliably (sellers ask
    /// again and again; the simulator's default is off as well), so off unless asked for: new
    /// orders then come in through the polls only.
    pub notify_new_orders: bool,
}

impl Workload {
    pub fn jp(orders: usize, seed: u64) -> Self {
        Self {
            orders,
            seed,
            pending: 0.40,
            cancelled: 0.03,
            peak: 3.0,
            notify_new_orders: false,
        }
    }
}

/// An order's Amazon events (seconds from the day's start, JST midnight).
#[derive(Debug, Clone)]
struct Order {
    created: T,
    paid: Option<T>,
    cancelled: Option<T>,
    /// Amazon processed our shipment confirmation.
    confirmed: Option<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Unshipped,
    Cancelled,
    Shipped,
}

impl Order {
    fn status(&self, t: T) -> Status {
        if self.cancelled.is_some_and(|c| c <= t) {
            Status::Cancelled
        } else if self.confirmed.is_some_and(|s| s <= t) {
            Status::Shipped
        } else if self.paid.is_none_or(|p| p <= t) {
            Status::Unshipped
        } else {
            Status::Pending
        }
    }
}

fn workload(w: Workload) -> Vec<Order> {
    let mut rng = StdRng::seed_from_u64(w.seed);
    // The evening peak (20:00-21:00 JST) at `peak` times each other hour's rate.
    let weights: Vec<f64> = (0..24)
        .map(|h| if h == 20 { w.peak } else { 1.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut orders: Vec<Order> = (0..w.orders)
        .map(|_| {
            let mut x = rng.random::<f64>() * total;
            let mut hour = 0;
            while x >= weights[hour] && hour < 23 {
                x -= weights[hour];
                hour += 1;
            }
            let created = hour as T * HOUR + rng.random::<f64>() * HOUR;
            let paid = (rng.random::<f64>() < w.pending)
                .then(|| created + rng.random_range(300.0..3.0 * HOUR));
            let cancelled = (rng.random::<f64>() < w.cancelled)
                .then(|| created + rng.random_range(300.0..HOUR));
            Order {
                created,
                paid,
                cancelled,
                confirmed: None,
            }
        })
        .collect();
    orders.sort_by(|a, b| a.created.total_cmp(&b.created));
    orders
}

/// A token bucket with Amazon's default plan of `op`.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: T,
}

impl Bucket {
    fn of(op: Operation) -> Self {
        let q = op.default_quota();
        Self {
            rate: q.rate,
            burst: q.burst,
            tokens: q.burst,
            at: 0.0,
        }
    }

    /// Takes a token at `now` if there is one; else when the next one will be there.
    fn take(&mut self, now: T) -> Result<(), T> {
        self.tokens = (self.tokens + (now - self.at) * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + (1.0 - self.tokens) / self.rate)
        }
    }
}

/// Amazon as the model sees it: the orders, the change log (for `lastUpdatedAfter`), the
/// buckets and the call counters.
struct Amazon {
    orders: Vec<Order>,
    /// (time, order) of every change, in time order as it happens.
    changes: Vec<(T, usize)>,
    /// Pre-generated changes not yet happened, in time order.
    scheduled: VecDeque<(T, usize)>,
    buckets: BTreeMap<&'static str, Bucket>,
    calls: BTreeMap<&'static str, u64>,
    /// searchOrders calls per simulated hour.
    search_per_hour: Vec<u64>,
}

impl Amazon {
    fn new(orders: Vec<Order>) -> Self {
        let mut scheduled: Vec<(T, usize)> = Vec::new();
        for (i, o) in orders.iter().enumerate() {
            scheduled.push((o.created, i));
            if let Some(p) = o.paid
                && o.cancelled.is_none_or(|c| p < c)
            {
                scheduled.push((p, i));
            }
            if let Some(c) = o.cancelled {
                scheduled.push((c, i));
            }
        }
        scheduled.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            orders,
            changes: Vec::new(),
            scheduled: scheduled.into(),
            buckets: BTreeMap::new(),
            calls: BTreeMap::new(),
            search_per_hour: vec![0; ((DAY + DRAIN) / HOUR) as usize + 1],
        }
    }

    /// Moves the changes due by `now` into the log; returns them (for notifications).
    fn advance(&mut self, now: T) -> Vec<(T, usize)> {
        let mut out = Vec::new();
        while self.scheduled.front().is_some_and(|(t, _)| *t <= now) {
            let c = self.scheduled.pop_front().expect("front");
            self.changes.push(c);
            out.push(c);
        }
        out
    }

    /// One call of `op` at `now` if its bucket has a token.
    fn call(&mut self, op: Operation, now: T) -> Result<(), T> {
        let name = op.name();
        self.buckets
            .entry(name)
            .or_insert_with(|| Bucket::of(op))
            .take(now)?;
        *self.calls.entry(name).or_default() += 1;
        if op == Operation::SearchOrders {
            self.search_per_hour[(now / HOUR) as usize] += 1;
        }
        Ok(())
    }

    /// Orders changed in `(after, upto]`, once each, by id.
    fn changed(&self, after: T, upto: T) -> Vec<usize> {
        let from = self.changes.partition_point(|(t, _)| *t <= after);
        let mut ids: Vec<usize> = self.changes[from..]
            .iter()
            .take_while(|(t, _)| *t <= upto)
            .map(|(_, i)| *i)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What the WMS did with each order, and when.
#[derive(Debug, Clone, Default)]
struct Wms {
    imported: Option<T>,
    /// When the connector last learnt the order's Amazon state (imported, changed, checked).
    known: Option<T>,
    paid: Option<T>,
    cancelled: Option<T>,
    shipped: Option<T>,
    shipped_by_mistake: bool,
}

/// Who applies a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Ingest,
    Sync,
}

fn apply(wms: &mut Wms, reader: Reader, status: Status, now: T) {
    let importable = matches!(status, Status::Pending | Status::Unshipped);
    if reader == Reader::Ingest && importable && wms.imported.is_none() {
        wms.imported = Some(now);
        wms.known = Some(now);
    }
    if wms.imported.is_none() || wms.shipped.is_some() {
        return;
    }
    if status != Status::Pending && status != Status::Cancelled && wms.paid.is_none() {
        wms.paid = Some(now);
        wms.known = Some(now);
    }
    if reader == Reader::Sync && status == Status::Cancelled && wms.cancelled.is_none() {
        wms.cancelled = Some(now);
    }
}

/// A poll in progress: its orders (fixed at its first page) and where it is.
#[derive(Debug, Clone)]
struct Poll {
    orders: Vec<usize>,
    next: usize,
    upto: T,
    not_before: T,
}

/// One `lastUpdatedAfter` cursor (the mirror's, or a separate poller's).
#[derive(Debug, Clone, Default)]
struct Cursor {
    watermark: T,
    polled_at: Option<T>,
    poll: Option<Poll>,
}

/// A due-time list of one action's default cadence (JST), over the simulated span.
fn ticks(cron: &str, start: DateTime<Utc>) -> Vec<T> {
    let cadence = Cadence::from_str(cron).expect("the default cadences parse");
    let end = start + Duration::seconds((DAY + DRAIN) as i64);
    let mut out = Vec::new();
    let mut t = start - Duration::seconds(1);
    while let Some(next) = cadence.next_after(t, Tokyo) {
        if next >= end {
            break;
        }
        out.push((next - start).num_milliseconds() as T / 1000.0);
        t = next;
    }
    out
}

fn cron_of(action: Action) -> &'static str {
    DEFAULTS
        .iter()
        .find(|d| d.action == action && d.entry == DEFAULT_ENTRY)
        .map(|d| d.cron)
        .expect("every action has a default entry")
}

/// The result of one simulated day.
#[derive(Debug)]
pub struct DayResult {
    pub mode: Mode,
    pub orders: usize,
    pub notify_new_orders: bool,
    lags: BTreeMap<&'static str, Vec<T>>,
    pub calls: BTreeMap<&'static str, u64>,
    pub search_per_hour: Vec<u64>,
    pub shipped_by_mistake: usize,
    /// Orders created during the day and never imported by the end of the drain.
    pub never_imported: usize,
}

impl DayResult {
    fn stat(&self, what: &str) -> (T, T, T) {
        let Some(v) = self.lags.get(what).filter(|v| !v.is_empty()) else {
            return (0.0, 0.0, 0.0);
        };
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        (q(0.5), q(0.99), v[v.len() - 1])
    }

    /// Lag bounded (p99 ≤ 1 h, max ≤ 4 h for import, payment and cancellation) and nothing
    /// left behind.
    pub fn keeps_up(&self) -> bool {
        self.never_imported == 0
            && ["import", "payment", "cancellation"].iter().all(|w| {
                let (_, p99, max) = self.stat(w);
                p99 <= P99_BOUND && max <= MAX_BOUND
            })
    }

    pub fn search_orders_calls(&self) -> u64 {
        self.calls.get("searchOrders").copied().unwrap_or(0)
    }

    fn lag_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for what in ["import", "payment", "cancellation", "shipment"] {
            let (p50, p99, max) = self.stat(what);
            let r = |x: f64| (x * 10.0).round() / 10.0;
            out.insert(
                what.into(),
                json!({"p50": r(p50), "p99": r(p99), "max": r(max), "n": self.lags.get(what).map_or(0, Vec::len)}),
            );
        }
        Value::Object(out)
    }
}

/// Simulates one day. `mirror`: order-ingest and status-sync share one poll (today's code);
/// otherwise each polls on its own (before the order mirror).
pub fn simulate(w: Workload, mode: Mode, mirror: bool) -> DayResult {
    let start = Tokyo
        .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .expect("a JST midnight")
        .with_timezone(&Utc);
    let mut amazon = Amazon::new(workload(w));
    let n = amazon.orders.len();
    let mut wms = vec![Wms::default(); n];
    let mut rng = StdRng::seed_from_u64(w.seed ^ 0x5eed);
    let overlap = domain::window::OVERLAP.num_seconds() as T;
    let min_interval = orders::mirror::SERVICE_MIN_POLL_SECONDS as T;
    let first = -(orders::mirror::FIRST_LOOKBACK.num_seconds() as T);

    // With notifications (and the mirror), order-ingest polls for new orders only, on its own
    // createdAfter cursor, every `NEW_ORDERS_CRON`; the sweep asks the mirror for cancellations
    // only, then checks unpaid instructions with getOrder (`domain::notifications`).
    let new_orders_poll = mirror && mode == Mode::Notifications;
    let ingest_ticks = if new_orders_poll {
        ticks(domain::notifications::NEW_ORDERS_CRON, start)
    } else {
        ticks(cron_of(Action::OrderIngest), start)
    };
    let new_orders_overlap = domain::notifications::NEW_ORDERS_OVERLAP.num_seconds() as T;
    let grace = domain::notifications::ANNOUNCE_GRACE.num_seconds() as T;
    // The sweep's unpaid checks: Some(checks done) while it is at them.
    let mut unpaid_phase: Option<u32> = None;
    let sync_cron = match mode {
        Mode::Polling => cron_of(Action::StatusSync),
        Mode::Notifications => domain::notifications::SWEEP_CRON,
    };
    let sync_ticks = ticks(sync_cron, start);
    let feedback_ticks = ticks(cron_of(Action::ShipmentFeedback), start);
    let inventory_ticks = ticks(cron_of(Action::InventorySync), start);
    let poller_ticks = ticks(cron_of(Action::FeedPoller), start);
    // The warehouse ships hourly waves 08:00-22:00 JST (same day).
    let waves: Vec<T> = (8..=22).map(|h| h as T * HOUR).collect();

    // Cursors: the mirror's (shared), or one each (ingest: createdAfter; sync: lastUpdatedAfter).
    let mut mirror_cursor = Cursor {
        watermark: first,
        ..Cursor::default()
    };
    let mut ingest_cursor = mirror_cursor.clone();
    let mut sync_cursor = mirror_cursor.clone();
    // Versions in the mirror that the other reader has not applied: (order, status at fetch).
    let mut pending_for: BTreeMap<u8, Vec<(usize, Status)>> = BTreeMap::new();
    let (mut ingest_due, mut sync_due) = (false, false);
    // Notifications: announced orders (arrival in ms, order) waiting for status-sync's `orders`
    // runs, earliest arrival first.
    let mut announced: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let ms = |t: T| (t * 1000.0) as u64;
    let mut get_order_not_before: T = 0.0;
    // Shipments: shipped in the WMS, not yet sent; feeds in flight (processed at, orders).
    let mut to_send: Vec<(usize, T)> = Vec::new();
    let mut feeds: Vec<(T, Vec<usize>)> = Vec::new();
    let mut results_due: Vec<T> = Vec::new();
    let mut stock_changed = false;
    let mut lags: BTreeMap<&'static str, Vec<T>> = BTreeMap::new();

    let (mut ii, mut si, mut fi, mut vi, mut pi, mut wi) = (0, 0, 0, 0, 0, 0);
    let end = DAY + DRAIN;
    let mut now: T = 0.0;
    while now < end {
        for (t, i) in amazon.advance(now) {
            let new_order = t == amazon.orders[i].created;
            // Should Amazon announce a new order, the listener leaves it to order-ingest's
            // new-orders poll (`domain::notifications::NEW_ORDER_NOTICE`): no getOrder.
            let left_to_poll = new_order && new_orders_poll;
            if mode == Mode::Notifications && (w.notify_new_orders || !new_order) && !left_to_poll {
                let at = t + rng.random_range(NOTIFY_DELAY.0..NOTIFY_DELAY.1);
                announced.push(Reverse((ms(at), i)));
            }
        }
        // Feeds Amazon finished: orders confirmed (a change; with notifications, announced).
        feeds.retain(|(done, ids)| {
            if *done > now {
                return true;
            }
            for &i in ids {
                amazon.orders[i].confirmed = Some(*done);
                // Logged at `now` (within a second of `done`): the log stays in time order.
                amazon.changes.push((now, i));
                // Its ORDER_CHANGE (`Shipped`, shipped here) is dropped by the listener: no
                // getOrder (notification-listener `instruction_status`).
                if let Some(s) = wms[i].shipped {
                    lags.entry("shipment").or_default().push(*done - s);
                }
            }
            let delay = match mode {
                Mode::Notifications => rng.random_range(NOTIFY_DELAY.0..NOTIFY_DELAY.1),
                Mode::Polling => 0.0,
            };
            results_due.push(*done + delay);
            false
        });
        // Schedules.
        while ii < ingest_ticks.len() && ingest_ticks[ii] <= now {
            ingest_due = true;
            ii += 1;
        }
        while si < sync_ticks.len() && sync_ticks[si] <= now {
            sync_due = true;
            si += 1;
        }
        // order-ingest and status-sync runs (one at a time each; a run polls while due).
        for reader in [Reader::Ingest, Reader::Sync] {
            let due = match reader {
                Reader::Ingest => &mut ingest_due,
                Reader::Sync => &mut sync_due,
            };
            if !*due {
                continue;
            }
            let done = if new_orders_poll && reader == Reader::Ingest {
                step_poll(
                    &mut amazon,
                    &mut ingest_cursor,
                    now,
                    new_orders_overlap,
                    0.0,
                    Ask::Created,
                    |i, status| apply(&mut wms[i], reader, status, now),
                )
            } else if new_orders_poll && unpaid_phase.is_some() {
                // The sweep's second part: getOrder of the unpaid instructions whose Amazon
                // state is oldest, up to the cap per sweep.
                let before = now - grace;
                let mut due: Vec<(T, usize)> = wms
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| {
                        x.imported.is_some()
                            && x.paid.is_none()
                            && x.cancelled.is_none()
                            && x.shipped.is_none()
                    })
                    .map(|(i, x)| (x.known.unwrap_or(0.0), i))
                    .filter(|(k, _)| *k < before)
                    .collect();
                due.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut finished = true;
                for (_, i) in due {
                    let checks = unpaid_phase.as_mut().expect("in the unpaid phase");
                    if *checks >= domain::notifications::SWEEP_UNPAID_CHECKS {
                        break;
                    }
                    match amazon.call(Operation::GetOrder, now) {
                        Ok(()) => {
                            *checks += 1;
                            let status = amazon.orders[i].status(now);
                            apply(&mut wms[i], Reader::Sync, status, now);
                            wms[i].known = Some(now);
                        }
                        Err(_) => {
                            finished = false;
                            break;
                        }
                    }
                }
                if finished {
                    unpaid_phase = None;
                }
                finished
            } else if mirror {
                let key = reader as u8;
                let ask = match (reader, new_orders_poll) {
                    (Reader::Sync, true) => Ask::MirrorCancelled,
                    _ => Ask::Mirror,
                };
                let finished = step_poll(
                    &mut amazon,
                    &mut mirror_cursor,
                    now,
                    overlap,
                    min_interval,
                    ask,
                    |i, status| {
                        apply(&mut wms[i], reader, status, now);
                        match reader {
                            // status-sync's poll imports the new orders too.
                            Reader::Sync => apply(&mut wms[i], Reader::Ingest, status, now),
                            Reader::Ingest => {
                                pending_for.entry(1 - key).or_default().push((i, status));
                            }
                        }
                    },
                );
                if finished {
                    for (i, status) in pending_for.remove(&key).unwrap_or_default() {
                        apply(&mut wms[i], reader, status, now);
                    }
                }
                if finished && ask == Ask::MirrorCancelled {
                    unpaid_phase = Some(0);
                    false
                } else {
                    finished
                }
            } else {
                let (cursor, ask) = match reader {
                    Reader::Ingest => (&mut ingest_cursor, Ask::Created),
                    Reader::Sync => (&mut sync_cursor, Ask::Changes),
                };
                step_poll(&mut amazon, cursor, now, overlap, 0.0, ask, |i, status| {
                    apply(&mut wms[i], reader, status, now)
                })
            };
            if done {
                *due = false;
            }
        }
        // Notifications: status-sync's `orders` runs, one getOrder per announced order.
        if mode == Mode::Notifications && now >= get_order_not_before && !sync_due {
            while announced
                .peek()
                .is_some_and(|Reverse((t, _))| *t <= ms(now))
            {
                match amazon.call(Operation::GetOrder, now) {
                    Ok(()) => {
                        let Reverse((_, i)) = announced.pop().expect("peeked");
                        let status = amazon.orders[i].status(now);
                        // The `orders` mode imports an announced order it does not know.
                        apply(&mut wms[i], Reader::Ingest, status, now);
                        apply(&mut wms[i], Reader::Sync, status, now);
                    }
                    Err(at) => {
                        get_order_not_before = at;
                        break;
                    }
                }
            }
        }
        // The warehouse's waves: every imported, paid, not cancelled order is allocated and
        // picked (from then on status-sync leaves it alone) and leaves within the hour.
        while wi < waves.len() && waves[wi] <= now {
            for (i, x) in wms.iter_mut().enumerate() {
                if x.shipped.is_none()
                    && x.cancelled.is_none()
                    && x.imported.is_some()
                    && x.paid.is_some()
                {
                    let leaves = now + rng.random_range(0.0..3000.0);
                    x.shipped = Some(leaves);
                    x.shipped_by_mistake = amazon.orders[i].status(now) == Status::Cancelled;
                    to_send.push((i, leaves));
                    stock_changed = true;
                }
            }
            wi += 1;
        }
        // shipment-feedback: one feed with what shipped (createFeedDocument, upload, createFeed).
        while fi < feedback_ticks.len() && feedback_ticks[fi] <= now {
            let shipped: Vec<usize> = to_send
                .iter()
                .filter(|(_, t)| *t <= now)
                .map(|(i, _)| *i)
                .collect();
            if !shipped.is_empty()
                && amazon.call(Operation::CreateFeedDocument, now).is_ok()
                && amazon.call(Operation::CreateFeed, now).is_ok()
            {
                to_send.retain(|(_, t)| *t > now);
                feeds.push((now + FEED_PROCESSING, shipped));
            }
            fi += 1;
        }
        // inventory-sync: one listings feed when stock changed.
        while vi < inventory_ticks.len() && inventory_ticks[vi] <= now {
            if stock_changed
                && amazon.call(Operation::CreateFeedDocument, now).is_ok()
                && amazon
                    .call(Operation::JsonListingsFeedSubmission, now)
                    .is_ok()
            {
                *amazon.calls.entry("createFeed").or_default() += 1;
                stock_changed = false;
                results_due.push(now + FEED_PROCESSING);
            }
            vi += 1;
        }
        // feed-poller: results of finished feeds (getFeed, getFeedDocument), at its ticks; with
        // notifications, as soon as FEED_PROCESSING_FINISHED arrives.
        let poll_now = match mode {
            Mode::Polling => {
                let due = pi < poller_ticks.len() && poller_ticks[pi] <= now;
                while pi < poller_ticks.len() && poller_ticks[pi] <= now {
                    pi += 1;
                }
                due
            }
            Mode::Notifications => true,
        };
        if poll_now {
            results_due.retain(|at| {
                if *at > now {
                    return true;
                }
                amazon.call(Operation::GetFeed, now).is_err()
                    || amazon.call(Operation::GetFeedDocument, now).is_err()
            });
        }
        now += 1.0;
    }

    for (i, o) in amazon.orders.iter().enumerate() {
        let x = &wms[i];
        if let Some(t) = x.imported {
            lags.entry("import").or_default().push(t - o.created);
        }
        if let (Some(p), Some(t)) = (o.paid, x.paid)
            && x.imported.is_some_and(|imp| imp <= t)
        {
            lags.entry("payment").or_default().push((t - p).max(0.0));
        }
        if let (Some(c), Some(t)) = (o.cancelled, x.cancelled) {
            lags.entry("cancellation").or_default().push(t - c);
        }
    }
    let never_imported = amazon
        .orders
        .iter()
        .zip(&wms)
        .filter(|(o, x)| x.imported.is_none() && o.cancelled.is_none())
        .count();
    DayResult {
        mode,
        orders: w.orders,
        notify_new_orders: w.notify_new_orders,
        lags,
        calls: amazon.calls,
        search_per_hour: amazon.search_per_hour,
        shipped_by_mistake: wms.iter().filter(|x| x.shipped_by_mistake).count(),
        never_imported,
    }
}

/// What a poll asks Amazon for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// `createdAfter`, PENDING/UNSHIPPED: order-ingest before the mirror, and its new-orders
    /// poll while notifications are on.
    Created,
    /// `lastUpdatedAfter`, every status: status-sync's own poll before the mirror.
    Changes,
    /// The mirror's poll: `lastUpdatedAfter`, SHIPPED left out (`orders::mirror::POLLED_STATUSES`).
    Mirror,
    /// The sweep's poll of the mirror: cancellations only (`orders::mirror::SWEPT_STATUSES`).
    MirrorCancelled,
}

/// One step of a run that polls `cursor`: starts a poll (or finds the last one fresh), fetches
/// the next page when a searchOrders token is there, hands each order's current state to
/// `apply`. Returns `true` when the run is done.
fn step_poll(
    amazon: &mut Amazon,
    cursor: &mut Cursor,
    now: T,
    overlap: T,
    min_interval: T,
    ask: Ask,
    mut apply: impl FnMut(usize, Status),
) -> bool {
    let created_window = ask == Ask::Created;
    if cursor.poll.is_none() {
        if cursor.polled_at.is_some_and(|at| now - at < min_interval) {
            return true;
        }
        let after = cursor.watermark - overlap;
        let orders = if created_window {
            let upto = now - 120.0;
            let from = amazon.orders.partition_point(|o| o.created <= after);
            (from..amazon.orders.len())
                .take_while(|&i| amazon.orders[i].created <= upto)
                .filter(|&i| {
                    matches!(
                        amazon.orders[i].status(now),
                        Status::Pending | Status::Unshipped
                    )
                })
                .collect()
        } else {
            let mut changed = amazon.changed(after, now);
            match ask {
                Ask::Mirror => changed.retain(|&i| amazon.orders[i].status(now) != Status::Shipped),
                Ask::MirrorCancelled => {
                    changed.retain(|&i| amazon.orders[i].status(now) == Status::Cancelled)
                }
                Ask::Created | Ask::Changes => {}
            }
            changed
        };
        cursor.poll = Some(Poll {
            orders,
            next: 0,
            upto: if created_window { now - 120.0 } else { now },
            not_before: now,
        });
    }
    let poll = cursor.poll.as_mut().expect("a poll");
    if now < poll.not_before {
        return false;
    }
    match amazon.call(Operation::SearchOrders, now) {
        Err(at) => {
            poll.not_before = at;
            false
        }
        Ok(()) => {
            let page: Vec<usize> = poll
                .orders
                .iter()
                .skip(poll.next)
                .take(PAGE)
                .copied()
                .collect();
            poll.next += page.len();
            let last = poll.next >= poll.orders.len();
            let upto = poll.upto;
            for i in page {
                apply(i, amazon.orders[i].status(now));
            }
            if last {
                cursor.watermark = cursor.watermark.max(upto);
                cursor.polled_at = Some(now);
                cursor.poll = None;
            }
            last
        }
    }
}

/// The largest orders per day (multiple of 1,000, up to `ceiling`) the mode keeps up with.
pub fn sustainable(w: Workload, mode: Mode, ceiling: usize) -> usize {
    let ok = |n: usize| simulate(Workload { orders: n, ..w }, mode, true).keeps_up();
    let (mut lo, mut hi) = (0usize, 1000usize);
    while hi <= ceiling && ok(hi) {
        lo = hi;
        hi *= 2;
    }
    let mut hi = hi.min(ceiling + 1000);
    while hi - lo > 1000 {
        let mid = (lo + hi) / 2 / 1000 * 1000;
        if mid == lo {
            break;
        }
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The JSON line of one mode.
pub fn line(r: &DayResult, two_polls: u64, sustainable: usize) -> Value {
    let quota = Operation::SearchOrders.default_quota();
    let per_hour_quota = quota.rate * HOUR;
    let day_hours = &r.search_per_hour[..24];
    json!({
        "scenario": "day",
        "mode": r.mode.name(),
        "model": "discrete-event model of the connector's Amazon calls at Amazon's default quotas and the default schedules (crates/bench/src/day.rs); not a run of the services",
        "orders_per_day": r.orders,
        "new_orders_notified": r.notify_new_orders,
        "lag_seconds": r.lag_json(),
        "search_orders_calls": r.search_orders_calls(),
        "search_orders_calls_two_polls": two_polls,
        "search_orders_calls_per_hour": {
            "max": day_hours.iter().max().copied().unwrap_or(0),
            "mean": (day_hours.iter().sum::<u64>() as f64 / 24.0 * 10.0).round() / 10.0,
            "quota": (per_hour_quota * 10.0).round() / 10.0,
        },
        "amazon_calls": r.calls,
        "throttled_429": 0,
        "shipped_by_mistake": r.shipped_by_mistake,
        "never_imported": r.never_imported,
        "keeps_up": r.keeps_up(),
        "sustainable_orders_per_day": sustainable,
        "sustainable_means": "p99 lag of import, payment and cancellation within 1 h, max within 4 h, every order imported",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_spends_fewer_search_orders_calls_than_two_polls() {
        let w = Workload::jp(4000, 1);
        let mirror = simulate(w, Mode::Polling, true);
        let two = simulate(w, Mode::Polling, false);
        assert!(mirror.search_orders_calls() < two.search_orders_calls());
        assert_eq!(mirror.never_imported, 0);
    }

    #[test]
    fn a_small_day_keeps_up_in_both_modes_and_notifications_are_faster() {
        let w = Workload {
            notify_new_orders: true,
            ..Workload::jp(2000, 2)
        };
        let polling = simulate(w, Mode::Polling, true);
        let notified = simulate(w, Mode::Notifications, true);
        assert!(polling.keeps_up() && notified.keeps_up());
        assert!(notified.stat("payment").1 < polling.stat("payment").1);
        assert!(notified.stat("import").1 < polling.stat("import").1);
        // ORDER_CHANGE for new orders or not, new orders come with the new-orders poll and cost
        // no getOrder (the listener leaves them to it), so the payments' getOrder calls are
        // the same.
        let unnotified = simulate(Workload::jp(2000, 2), Mode::Notifications, true);
        assert_eq!(
            unnotified.calls.get("getOrder"),
            notified.calls.get("getOrder")
        );
        assert!(unnotified.stat("payment").1 < polling.stat("payment").1);
    }

    /// With notifications, order-ingest's new-orders poll imports within 10 minutes (issue
    /// 20's target) where the mirror's 15-minute poll does not, and the sweep's cancellations
    /// and unpaid checks keep payments and cancellations announced-fast.
    #[test]
    fn with_notifications_new_orders_come_within_ten_minutes() {
        let w = Workload::jp(8000, 3);
        let polling = simulate(w, Mode::Polling, true);
        let notified = simulate(w, Mode::Notifications, true);
        assert!(notified.keeps_up());
        assert_eq!(notified.never_imported, 0);
        assert!(
            notified.stat("import").1 < 600.0,
            "{:?}",
            notified.stat("import")
        );
        assert!(
            polling.stat("import").1 > 600.0,
            "{:?}",
            polling.stat("import")
        );
        assert!(
            notified.stat("payment").1 < 120.0,
            "{:?}",
            notified.stat("payment")
        );
        assert!(notified.stat("cancellation").1 < 120.0);
    }

    #[test]
    fn every_call_waits_for_its_token() {
        let mut b = Bucket::of(Operation::SearchOrders);
        for _ in 0..20 {
            assert!(b.take(0.0).is_ok());
        }
        let next = b.take(0.0).unwrap_err();
        assert!((next - 1.0 / 0.0056).abs() < 1.0, "{next}");
    }
}
