//! status-sync (ステータス同期): applies what changed on Amazon (payment confirmed,
//! cancellations) to the imported shipping instructions, exactly under the seed's conditions
//! (`domain::eligibility::decide`).
//!
//! * `changes` mode: `searchOrders` on `lastUpdatedAfter` = the shop's watermark minus a small
//!   overlap (first run: one week back); one call covers up to 100 changed orders. The next
//!   watermark is Amazon's `lastUpdatedBefore`.
//! * `reconcile` mode: every open API-imported instruction checked by `getOrder` (after an
//!   outage), keyset-paginated by order id.
//!
//! Both store their cursor in the run ledger and continue through the outbox when the shared
//! limiter says "later", like order-ingest. To paid: payment status, buyer, ship-to, payment
//! method, prices; delivery rules re-applied while the method is the placeholder. To canceled:
//! status canceled, reservations released. A cancellation Amazon reports for an allocated or
//! shipped instruction, or a buyer's cancellation request, is an `attention` entry in the API
//! log (once per Amazon state), and the instruction is left untouched. Idempotent: the same
//! Amazon state applied twice changes nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use bus::{HandlerError, Incoming, Topology};
use chrono::{DateTime, Duration, Utc};
use domain::{
    AmazonOrderStatus,
    eligibility::{SyncDecision, SyncState, decide},
    messages::{Action, Command, CommandParams, Event, EventKind, MESSAGE_VERSION, StatusSyncMode},
    window::OVERLAP,
};
use serde::{Deserialize, Serialize};
use spapi::{
    ErrorClass, SpApi,
    orders::{FulfilledBy, Order, SearchOrdersParams},
};
use sqlx::{Connection, PgConnection, PgPool};
use store::{
    StoreError, api_log, catalog,
    instructions::{self, Delivery},
    runs::{self, NewRun, Progress, RunStatus},
    shops::{self, ShopRecord},
};
use uuid::Uuid;

/// Action, queue and ledger name.
pub const ACTION: &str = "status-sync";

/// First `changes` run of a shop: this far back.
pub const FIRST_LOOKBACK: Duration = Duration::days(7);

/// Tuning of the service.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `maxResultsPerPage` (1-100).
    pub page_size: u32,
    /// Instructions checked per reconcile batch (one transaction each).
    pub reconcile_batch: i64,
    /// The (shop, action) lease lasts this long past the last sign of life of a run.
    pub lease_ttl: Duration,
    /// First delay before continuing after a transient Amazon failure (doubles each time).
    pub transient_retry: Duration,
    /// Transient failures in a row after which the run fails.
    pub max_transient_failures: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            page_size: 100,
            reconcile_batch: 20,
            lease_ttl: Duration::minutes(10),
            transient_retry: Duration::seconds(30),
            max_transient_failures: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// `changes`: the query's lower bound and next page token.
    #[serde(default)]
    last_updated_after: Option<DateTime<Utc>>,
    #[serde(default)]
    next_token: Option<String>,
    /// `reconcile`: last order id checked.
    #[serde(default)]
    after_order_id: Option<String>,
    #[serde(default)]
    transient_failures: u32,
}

/// Ledger counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pages: u32,
    /// Amazon orders looked at.
    pub seen: u32,
    pub paid: u32,
    pub canceled: u32,
    /// Reserved quantity released by cancellations.
    pub released: i64,
    /// New attention entries (cancelled but allocated/shipped, buyer cancellation requests).
    pub attention: u32,
    /// Orders whose instruction needed nothing.
    pub unchanged: u32,
    /// Orders with no imported instruction (not ours, FBA, or never imported).
    pub not_imported: u32,
    /// Orders that could not be applied (listed in the API log).
    pub failed: u32,
    pub calls: BTreeMap<String, u32>,
    pub continuations: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub active_ms: i64,
}

impl Counts {
    fn total_calls(&self) -> i32 {
        self.calls.values().map(|c| *c as i32).sum()
    }

    fn call(&mut self, op: &str) {
        *self.calls.entry(op.into()).or_default() += 1;
    }
}

/// Errors of the engine (transient for the message; run failures go to the ledger).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<SyncError> for HandlerError {
    fn from(e: SyncError) -> Self {
        HandlerError::retry(e)
    }
}

/// What applying one Amazon order did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Applied {
    Paid,
    Canceled(i64),
    Attention,
    Unchanged,
    NotImported,
}

/// The status-sync handler. Cheap to clone.
#[derive(Clone)]
pub struct StatusSync {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    topology: Topology,
    config: SyncConfig,
    holder: String,
}

impl std::fmt::Debug for StatusSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSync")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl bus::Handler for StatusSync {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let cmd: Command = msg.payload_as()?;
        if cmd.version != MESSAGE_VERSION {
            return Err(HandlerError::reject(format!(
                "command version {} is not supported: this service reads version {MESSAGE_VERSION}",
                cmd.version
            )));
        }
        match cmd.params {
            CommandParams::Continue { run_id } => self.resume(run_id).await?,
            _ => self.start(&cmd).await?,
        }
        Ok(())
    }
}

impl StatusSync {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        config: SyncConfig,
    ) -> Self {
        Self {
            pool,
            keys,
            api,
            topology,
            config,
            holder: format!("{ACTION}@{}", std::process::id()),
        }
    }

    async fn start(&self, cmd: &Command) -> Result<(), SyncError> {
        let mut tx = self.pool.begin().await?;
        let shop = match shops::get(&mut tx, cmd.shop_id).await {
            Ok(s) => s,
            Err(StoreError::NotFound { .. }) => {
                api_log::refuse_unknown_shop(&mut tx, ACTION, cmd.shop_id, cmd.message_id).await?;
                tx.commit().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((run_id, status)) = runs::for_command(&mut tx, cmd.message_id, ACTION).await? {
            tx.commit().await?;
            if status == "running" {
                return self.execute(run_id).await;
            }
            return Ok(());
        }
        let mode = match (cmd.action, &cmd.params) {
            (Action::StatusSync, CommandParams::StatusSync { mode }) => *mode,
            _ => {
                let message = format!(
                    "trigger refused: {} parameters were sent to the status-sync queue",
                    cmd.params.action().map_or("continuation", |a| a.as_str())
                );
                let run = NewRun {
                    shop_id: shop.shop.id,
                    action: ACTION,
                    mode: None,
                    status: RunStatus::Rejected,
                    command_id: Some(cmd.message_id),
                    requested_by: Some(&cmd.requested_by),
                };
                runs::reject(&mut tx, &run, &message, None).await?;
                tx.commit().await?;
                return Ok(());
            }
        };
        let mode_name = match mode {
            StatusSyncMode::Changes => "changes",
            StatusSyncMode::Reconcile => "reconcile",
        };
        let run_id = runs::insert(
            &mut tx,
            &NewRun {
                shop_id: shop.shop.id,
                action: ACTION,
                mode: Some(mode_name),
                status: RunStatus::Running,
                command_id: Some(cmd.message_id),
                requested_by: Some(&cmd.requested_by),
            },
        )
        .await?;
        if !runs::try_lease(
            &mut tx,
            shop.shop.id,
            ACTION,
            run_id,
            &self.holder,
            self.config.lease_ttl,
        )
        .await?
        {
            let message = "skipped: another status-sync run of this shop is active";
            runs::skip(&mut tx, run_id, shop.shop.id, ACTION, message).await?;
            tx.commit().await?;
            return Ok(());
        }
        let mut cursor = Cursor::default();
        let now = Utc::now();
        let mut window_from = None;
        if mode == StatusSyncMode::Changes {
            let after =
                match runs::last_watermark(&mut tx, shop.shop.id, ACTION, Some("changes")).await? {
                    Some(w) => w - OVERLAP,
                    None => now - FIRST_LOOKBACK,
                };
            cursor.last_updated_after = Some(after);
            window_from = Some(after);
        }
        runs::save_progress(
            &mut tx,
            run_id,
            RunStatus::Running,
            &Progress {
                window_from,
                window_to: None,
                cursor: Some(serde_json::to_value(&cursor).unwrap_or_default()),
                counts: serde_json::to_value(Counts::default()).unwrap_or_default(),
                amazon_calls: 0,
            },
        )
        .await?;
        tx.commit().await?;
        self.execute(run_id).await
    }

    async fn resume(&self, run_id: Uuid) -> Result<(), SyncError> {
        let mut tx = self.pool.begin().await?;
        let claim =
            runs::claim_continuation(&mut tx, run_id, ACTION, &self.holder, self.config.lease_ttl)
                .await?;
        if let runs::Continuation::RetryAt { at, shop_id } = claim {
            let msg =
                runtime::continuation(&self.topology, Action::StatusSync, shop_id, run_id, at);
            bus::outbox::enqueue(&mut tx, msg).await?;
        }
        tx.commit().await?;
        match claim {
            runs::Continuation::Run => self.execute(run_id).await,
            _ => Ok(()),
        }
    }

    async fn execute(&self, run_id: Uuid) -> Result<(), SyncError> {
        let mut conn = self.pool.acquire().await?;
        let run = runs::get(&mut conn, run_id).await?;
        let shop = shops::get(&mut conn, run.shop_id).await?;
        let mut cursor: Cursor = run
            .cursor
            .clone()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        let mut counts: Counts = serde_json::from_value(run.counts.clone()).unwrap_or_default();
        let handle = match runtime::shop_api(&mut conn, &self.keys, &self.api, &shop.shop).await {
            Ok(h) => h,
            Err(e) => {
                drop(conn);
                return self.fail(&shop, &run, &counts, &e.to_string()).await;
            }
        };
        drop(conn);
        let reconcile = run.mode.as_deref() == Some("reconcile");
        loop {
            let started = Instant::now();
            let step = if reconcile {
                self.reconcile_batch(&handle, &shop, &run, &mut cursor, &mut counts)
                    .await?
            } else {
                self.changes_page(&handle, &shop, &run, &mut cursor, &mut counts)
                    .await?
            };
            counts.active_ms += started.elapsed().as_millis() as i64;
            match step {
                Step::More => {
                    let mut tx = self.pool.begin().await?;
                    runs::save_progress(
                        &mut tx,
                        run_id,
                        RunStatus::Running,
                        &progress(&cursor, &counts),
                    )
                    .await?;
                    runs::try_lease(
                        &mut tx,
                        shop.shop.id,
                        ACTION,
                        run_id,
                        &self.holder,
                        self.config.lease_ttl,
                    )
                    .await?;
                    tx.commit().await?;
                }
                Step::Done(watermark) => {
                    return self.finish_ok(&shop, &run, watermark, &mut counts).await;
                }
                Step::Failed(e) => {
                    let now = Utc::now();
                    match e.class() {
                        ErrorClass::Throttled => {
                            let at = e.retry_at().unwrap_or(now + Duration::minutes(3)).max(now);
                            return self.schedule(&shop, run_id, &cursor, &mut counts, at).await;
                        }
                        ErrorClass::Transient => {
                            cursor.transient_failures += 1;
                            if cursor.transient_failures > self.config.max_transient_failures {
                                let msg = format!(
                                    "failed after {} transient Amazon errors in a row: {e}",
                                    cursor.transient_failures
                                );
                                return self.fail(&shop, &run, &counts, &msg).await;
                            }
                            let delay = self.config.transient_retry
                                * 2i32.pow(cursor.transient_failures.saturating_sub(1).min(6));
                            return self
                                .schedule(&shop, run_id, &cursor, &mut counts, now + delay)
                                .await;
                        }
                        ErrorClass::Reauthorize => {
                            let mut c = self.pool.acquire().await?;
                            shops::set_auth_status(&mut c, shop.shop.id, Some(&e.to_string()))
                                .await?;
                            drop(c);
                            let msg = format!(
                                "failed: the shop must be re-authorized by the seller: {e}"
                            );
                            return self.fail(&shop, &run, &counts, &msg).await;
                        }
                        _ => {
                            let msg = format!("failed: Amazon refused the request: {e}");
                            return self.fail(&shop, &run, &counts, &msg).await;
                        }
                    }
                }
            }
        }
    }

    /// One `searchOrders` page of changed orders, applied in one transaction.
    async fn changes_page(
        &self,
        handle: &spapi::Shop,
        shop: &ShopRecord,
        run: &runs::Run,
        cursor: &mut Cursor,
        counts: &mut Counts,
    ) -> Result<Step, SyncError> {
        let Some(after) = cursor.last_updated_after else {
            return Err(SyncError::Invalid(format!(
                "run {} has no lastUpdatedAfter",
                run.id
            )));
        };
        let params = SearchOrdersParams {
            last_updated_after: Some(after),
            marketplace_ids: shop
                .shop
                .marketplaces
                .iter()
                .map(|m| m.id().to_owned())
                .collect(),
            fulfilled_by: vec![FulfilledBy::Merchant],
            max_results_per_page: Some(self.config.page_size),
            pagination_token: cursor.next_token.clone(),
            included_data: orders::included::SYNC.to_vec(),
            ..SearchOrdersParams::default()
        };
        let resp = match handle.search_orders(&params).await {
            Ok(r) => r,
            Err(e) => {
                if !matches!(e.class(), ErrorClass::Throttled) {
                    counts.call("searchOrders");
                }
                return Ok(Step::Failed(e));
            }
        };
        counts.call("searchOrders");
        let mut tx = self.pool.begin().await?;
        self.apply_orders(&mut tx, shop.shop.id, run.id, &resp.orders, counts)
            .await?;
        counts.pages += 1;
        cursor.transient_failures = 0;
        cursor.next_token = resp.pagination.and_then(|p| p.next_token);
        if cursor.next_token.is_some() {
            runs::save_progress(
                &mut tx,
                run.id,
                RunStatus::Running,
                &progress(cursor, counts),
            )
            .await?;
            tx.commit().await?;
            return Ok(Step::More);
        }
        tx.commit().await?;
        // The watermark only moves forward: Amazon's lastUpdatedBefore, else the newest change
        // seen, never earlier than where this run started.
        let newest = resp.orders.iter().map(|o| o.last_updated_time).max();
        let mark = resp
            .last_updated_before
            .or(newest)
            .unwrap_or(after + OVERLAP)
            .max(after + OVERLAP);
        Ok(Step::Done(Some(mark)))
    }

    /// A batch of open instructions checked one by one with `getOrder`.
    async fn reconcile_batch(
        &self,
        handle: &spapi::Shop,
        shop: &ShopRecord,
        run: &runs::Run,
        cursor: &mut Cursor,
        counts: &mut Counts,
    ) -> Result<Step, SyncError> {
        let mut conn = self.pool.acquire().await?;
        let batch = instructions::open_imported(
            &mut conn,
            shop.shop.id,
            cursor.after_order_id.as_deref(),
            self.config.reconcile_batch,
        )
        .await?;
        drop(conn);
        if batch.is_empty() {
            return Ok(Step::Done(None));
        }
        for inst in &batch {
            let Some(order_id) = inst.amazon_order_id.clone() else {
                continue;
            };
            let order = match handle.get_order(&order_id, &orders::included::SYNC).await {
                Ok(o) => o,
                Err(e) if e.status() == Some(404) => {
                    counts.call("getOrder");
                    counts.failed += 1;
                    let mut c = self.pool.acquire().await?;
                    let message = format!(
                        "order {order_id} was not found on Amazon: check it in Seller Central"
                    );
                    api_log::write(
                        &mut c,
                        &api_log::Entry {
                            run_id: Some(run.id),
                            amazon_order_id: Some(&order_id),
                            code: Some("order_not_found"),
                            ..api_log::Entry::new(
                                Some(shop.shop.id),
                                ACTION,
                                api_log::Level::Warning,
                                &message,
                            )
                        },
                    )
                    .await?;
                    cursor.after_order_id = Some(order_id);
                    continue;
                }
                Err(e) => {
                    if !matches!(e.class(), ErrorClass::Throttled) {
                        counts.call("getOrder");
                    }
                    return Ok(Step::Failed(e));
                }
            };
            counts.call("getOrder");
            let mut tx = self.pool.begin().await?;
            self.apply_orders(
                &mut tx,
                shop.shop.id,
                run.id,
                std::slice::from_ref(&order),
                counts,
            )
            .await?;
            cursor.after_order_id = Some(order_id);
            runs::save_progress(
                &mut tx,
                run.id,
                RunStatus::Running,
                &progress(cursor, counts),
            )
            .await?;
            tx.commit().await?;
        }
        counts.pages += 1;
        cursor.transient_failures = 0;
        Ok(Step::More)
    }

    async fn apply_orders(
        &self,
        tx: &mut PgConnection,
        shop_id: Uuid,
        run_id: Uuid,
        orders: &[Order],
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        let rules = catalog::active_rules(&mut *tx, shop_id).await?;
        let events = self.topology.events_exchange();
        // Instructions are locked in Amazon order id order, as by every transaction that locks
        // several (store::feeds::lock_instructions): no deadlock with order-ingest or feedback.
        let mut orders: Vec<&Order> = orders.iter().collect();
        orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        for order in orders {
            counts.seen += 1;
            let mut sp = tx.begin().await?;
            match apply_one(&mut sp, &self.keys, shop_id, run_id, order, &rules, &events).await {
                Ok(applied) => {
                    sp.commit().await?;
                    match applied {
                        Applied::Paid => counts.paid += 1,
                        Applied::Canceled(q) => {
                            counts.canceled += 1;
                            counts.released += q;
                        }
                        Applied::Attention => counts.attention += 1,
                        Applied::Unchanged => counts.unchanged += 1,
                        Applied::NotImported => counts.not_imported += 1,
                    }
                }
                Err(e) => {
                    sp.rollback().await?;
                    counts.failed += 1;
                    let message = format!(
                        "order {} could not be synchronized: {e}; the other orders are unaffected",
                        order.order_id
                    );
                    api_log::write(
                        &mut *tx,
                        &api_log::Entry {
                            run_id: Some(run_id),
                            amazon_order_id: Some(&order.order_id),
                            code: Some("sync_failed"),
                            ..api_log::Entry::new(
                                Some(shop_id),
                                ACTION,
                                api_log::Level::Error,
                                &message,
                            )
                        },
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn schedule(
        &self,
        shop: &ShopRecord,
        run_id: Uuid,
        cursor: &Cursor,
        counts: &mut Counts,
        at: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        counts.continuations += 1;
        let mut tx = self.pool.begin().await?;
        runs::save_progress(
            &mut tx,
            run_id,
            RunStatus::Waiting,
            &progress(cursor, counts),
        )
        .await?;
        let ttl = (at - Utc::now()).max(Duration::zero()) + self.config.lease_ttl;
        runs::try_lease(&mut tx, shop.shop.id, ACTION, run_id, &self.holder, ttl).await?;
        let msg =
            runtime::continuation(&self.topology, Action::StatusSync, shop.shop.id, run_id, at);
        bus::outbox::enqueue(&mut tx, msg).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_ok(
        &self,
        shop: &ShopRecord,
        run: &runs::Run,
        watermark: Option<DateTime<Utc>>,
        counts: &mut Counts,
    ) -> Result<(), SyncError> {
        counts.duration_ms = Some((Utc::now() - run.started_at).num_milliseconds());
        let counts_json = serde_json::to_value(&*counts).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        runs::finish(
            &mut tx,
            run.id,
            RunStatus::Succeeded,
            watermark,
            &counts_json,
            counts.total_calls(),
            None,
        )
        .await?;
        runs::release_lease(&mut tx, shop.shop.id, ACTION, run.id).await?;
        let calls: Vec<String> = counts
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let message = format!(
            "status-sync {}: {} order(s) seen: {} paid, {} canceled ({} reserved released), {} need attention, \
             {} unchanged, {} not imported, {} failed; {} Amazon call(s) ({}); {} continuation(s); {:.1} s",
            run.mode.as_deref().unwrap_or("-"),
            counts.seen,
            counts.paid,
            counts.canceled,
            counts.released,
            counts.attention,
            counts.unchanged,
            counts.not_imported,
            counts.failed,
            counts.total_calls(),
            calls.join(", "),
            counts.continuations,
            counts.duration_ms.unwrap_or_default() as f64 / 1000.0,
        );
        let level = if counts.failed > 0 || counts.attention > 0 {
            api_log::Level::Warning
        } else {
            api_log::Level::Info
        };
        api_log::write(
            &mut tx,
            &api_log::Entry {
                run_id: Some(run.id),
                code: Some("run_summary"),
                details: Some(counts_json),
                ..api_log::Entry::new(Some(shop.shop.id), ACTION, level, &message)
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(run_id = %run.id, %message, "status-sync run finished");
        Ok(())
    }

    async fn fail(
        &self,
        shop: &ShopRecord,
        run: &runs::Run,
        counts: &Counts,
        message: &str,
    ) -> Result<(), SyncError> {
        let mut counts = counts.clone();
        counts.duration_ms = Some((Utc::now() - run.started_at).num_milliseconds());
        let counts_json = serde_json::to_value(&counts).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        runs::finish(
            &mut tx,
            run.id,
            RunStatus::Failed,
            None,
            &counts_json,
            counts.total_calls(),
            Some(message),
        )
        .await?;
        runs::release_lease(&mut tx, shop.shop.id, ACTION, run.id).await?;
        api_log::write(
            &mut tx,
            &api_log::Entry {
                run_id: Some(run.id),
                code: Some("run_failed"),
                details: Some(counts_json),
                ..api_log::Entry::new(Some(shop.shop.id), ACTION, api_log::Level::Error, message)
            },
        )
        .await?;
        tx.commit().await?;
        tracing::error!(run_id = %run.id, %message, "status-sync run failed");
        Ok(())
    }
}

enum Step {
    More,
    Done(Option<DateTime<Utc>>),
    Failed(spapi::Error),
}

fn progress(cursor: &Cursor, counts: &Counts) -> Progress {
    Progress {
        window_from: None,
        window_to: None,
        cursor: Some(serde_json::to_value(cursor).unwrap_or_default()),
        counts: serde_json::to_value(counts).unwrap_or_default(),
        amazon_calls: counts.total_calls(),
    }
}

/// Why one order could not be applied.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Data(String),
}

/// Applies Amazon's state of one order to its instruction (in a savepoint).
async fn apply_one(
    conn: &mut PgConnection,
    keys: &crypto::Keyring,
    shop_id: Uuid,
    run_id: Uuid,
    order: &Order,
    rules: &[domain::delivery_rules::DeliveryRule<catalog::DeliveryMethod>],
    events: &str,
) -> Result<Applied, ApplyError> {
    let Some(inst) = instructions::lock_by_order(&mut *conn, shop_id, &order.order_id).await?
    else {
        return Ok(Applied::NotImported);
    };
    let data = orders::to_amazon_order(order).map_err(|e| ApplyError::Data(e.to_string()))?;
    let state = SyncState {
        imported_via_api: inst.imported_via_api(),
        status: inst.status()?,
        payment_status: inst.payment_status()?,
    };
    match decide(state, data.status) {
        SyncDecision::MarkPaid => {
            let method = if inst.delivery_method_id.is_none() {
                orders::pick_delivery(rules, &data)
            } else {
                None
            };
            let delivery = method.map_or(Delivery::Placeholder, Delivery::Method);
            instructions::apply_paid(&mut *conn, keys, &inst, &data, delivery).await?;
            event(
                conn,
                shop_id,
                events,
                EventKind::OrderPaid {
                    instruction_id: inst.id,
                    amazon_order_id: order.order_id.clone(),
                },
            )
            .await?;
            Ok(Applied::Paid)
        }
        SyncDecision::Cancel => {
            let reason = format!("amazon order {} cancelled", order.order_id);
            let released = instructions::cancel(
                &mut *conn,
                inst.id,
                data.status,
                data.last_updated_at,
                &reason,
            )
            .await?;
            event(
                conn,
                shop_id,
                events,
                EventKind::OrderCanceled {
                    instruction_id: inst.id,
                    amazon_order_id: order.order_id.clone(),
                },
            )
            .await?;
            Ok(Applied::Canceled(released))
        }
        SyncDecision::NeedsAttention(why) => {
            let new = attention(
                conn,
                shop_id,
                run_id,
                &order.order_id,
                "amazon_cancelled_after_allocation",
                &format!("order {}: {why}", order.order_id),
                order.last_updated_time,
            )
            .await?;
            Ok(if new {
                Applied::Attention
            } else {
                Applied::Unchanged
            })
        }
        SyncDecision::Nothing => {
            let requested = order.order_items.iter().any(|i| {
                i.cancellation
                    .as_ref()
                    .and_then(|c| c.cancellation_request.as_ref())
                    .is_some()
            });
            if requested
                && data.status != AmazonOrderStatus::Cancelled
                && inst.status()? != domain::InstructionStatus::Canceled
            {
                let new = attention(
                    conn,
                    shop_id,
                    run_id,
                    &order.order_id,
                    "buyer_cancellation_request",
                    &format!(
                        "order {}: the buyer asked to cancel it; cancel it in Seller Central (and here) or ship it",
                        order.order_id
                    ),
                    order.last_updated_time,
                )
                .await?;
                if new {
                    return Ok(Applied::Attention);
                }
            }
            Ok(Applied::Unchanged)
        }
    }
}

/// Writes an attention entry once per (order, code, Amazon update time). Returns whether it
/// was new.
async fn attention(
    conn: &mut PgConnection,
    shop_id: Uuid,
    run_id: Uuid,
    amazon_order_id: &str,
    code: &str,
    message: &str,
    amazon_last_updated: DateTime<Utc>,
) -> Result<bool, ApplyError> {
    let stamp = amazon_last_updated.to_rfc3339();
    let seen: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM api_log WHERE shop_id = $1 AND amazon_order_id = $2 AND code = $3
                          AND details->>'amazon_last_updated' = $4) AS "seen!""#,
        shop_id,
        amazon_order_id,
        code,
        stamp
    )
    .fetch_one(&mut *conn)
    .await?;
    if seen {
        return Ok(false);
    }
    api_log::write(
        &mut *conn,
        &api_log::Entry {
            run_id: Some(run_id),
            amazon_order_id: Some(amazon_order_id),
            code: Some(code),
            details: Some(serde_json::json!({"amazon_last_updated": stamp})),
            ..api_log::Entry::new(Some(shop_id), ACTION, api_log::Level::Attention, message)
        },
    )
    .await?;
    Ok(true)
}

async fn event(
    conn: &mut PgConnection,
    shop_id: Uuid,
    exchange: &str,
    kind: EventKind,
) -> Result<(), ApplyError> {
    let e = Event::new(shop_id, kind, Utc::now());
    let mut msg = bus::OutboxMessage::new(
        exchange,
        e.kind.routing_key(),
        serde_json::to_value(&e).map_err(|e| ApplyError::Data(e.to_string()))?,
    );
    msg.id = e.event_id;
    bus::outbox::enqueue(conn, msg).await?;
    Ok(())
}
