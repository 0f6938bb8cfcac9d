//! status-sync (ステータス同期): applies what changed on Amazon (payment confirmed,
//! cancellations) to the imported shipping instructions, exactly under the seed's conditions
//! (`domain::eligibility::decide`).
//!
//! * `changes` mode: the shop's order mirror (`orders::mirror`): one `searchOrders` poll on
//!   `lastUpdatedAfter` = the mirror's watermark minus a small overlap (first poll: one week
//!   back), shared with order-ingest's differential import; one call covers up to 100 changed
//!   orders, and a change one service fetched is read by the other from the database.
//!   While Amazon announces the shop's order changes this is the sweep
//!   (`domain::notifications`): the mirror's poll asks for cancellations only, and the
//!   instructions still unpaid are then checked by `getOrder` (a payment whose notification was
//!   lost); new orders are order-ingest's new-orders poll.
//! * `reconcile` mode: every open API-imported instruction checked by `getOrder` (after an
//!   outage), keyset-paginated by order id.
//! * `orders` mode (`CommandParams::StatusSyncOrders`): the orders Amazon announced (ORDER_CHANGE
//!   notifications), each checked by `getOrder` and applied like `changes`; an order with no
//!   instruction yet that is merchant-fulfilled PENDING or UNSHIPPED is imported (order-ingest's
//!   page apply, `orders::apply_orders`), because Amazon may announce an order before the next
//!   import finds it.
//!
//! Both store their cursor in the run ledger and continue through the outbox when the shared
//! limiter says "later", like order-ingest. To paid: payment status, buyer, ship-to, payment
//! method, prices; delivery rules re-applied while the method is the placeholder. To canceled:
//! status canceled, reservations released. A cancellation Amazon reports for an allocated or
//! shipped instruction, or a buyer's cancellation request, is an `attention` entry in the API
//! log (once per Amazon state), and the instruction is left untouched. Idempotent: the same
//! Amazon state applied twice changes nothing.
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy). This crate supplies only its own part, [`SyncJob`]: the plan
//! (`plan`: mode and lower bound), one step per mode (`changes`: one page; `reconcile`: one
//! batch), both applying through `apply`, and the summary.

mod announced;
mod apply;
mod changes;
pub mod plan;
mod reconcile;

use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, CommandParams, StatusSyncMode};
use job_api::{
    Build, Deps, Job, JobError, Planned, Planning, RunCtx, Running, Settings, Step, Summary,
    summary,
};
use runtime::job::Service;
use serde::{Deserialize, Serialize};
use store::runs::Tally;

use plan::Plan;

/// Action, queue and ledger name.
pub const ACTION: &str = "status-sync";

/// First `changes` run of a shop: this far back.
pub const FIRST_LOOKBACK: Duration = orders::mirror::FIRST_LOOKBACK;

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
    /// With notifications on, a change the sweep applies that Amazon made longer ago than this
    /// and no notification announced is an attention entry (`SYNC_ANNOUNCE_GRACE_SECONDS`).
    pub announce_grace: Duration,
    /// A `changes` run finding the shop's order mirror polled less than this ago reads the
    /// mirror only (zero: every run polls; the service reads `ORDER_MIRROR_MIN_POLL_SECONDS`).
    pub mirror_min_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            page_size: 100,
            reconcile_batch: 20,
            lease_ttl: Duration::minutes(10),
            transient_retry: Duration::seconds(30),
            max_transient_failures: 5,
            announce_grace: domain::notifications::ANNOUNCE_GRACE,
            mirror_min_interval: Duration::zero(),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// `changes`: the next page token.
    #[serde(default)]
    pub next_token: Option<String>,
    /// `reconcile` and `orders`: last order id checked.
    #[serde(default)]
    pub after_order_id: Option<String>,
    /// `changes`: where the run is in the order mirror.
    #[serde(default)]
    pub mirror: orders::mirror::Position,
    /// The sweep: the mirror is read, the unpaid instructions are being checked (this many so
    /// far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid_checked: Option<u32>,
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
    /// `orders` mode: announced orders with no instruction yet, imported now.
    #[serde(default)]
    pub imported: u32,
    /// `changes` mode with notifications on (the sweep): changes no notification announced.
    #[serde(default)]
    pub unannounced: u32,
    /// `changes` mode: open orders whose ship-by time is near or past, warned about now
    /// (`ship_by_approaching` attention entries).
    #[serde(default)]
    pub ship_by: u32,
    /// Orders that could not be applied (listed in the API log).
    pub failed: u32,
    /// Amazon calls, continuations and timing.
    #[serde(flatten)]
    pub tally: Tally,
}

/// What a step works with.
pub(crate) struct Stepping<'a> {
    pub(crate) deps: &'a Deps,
    /// The events exchange.
    pub(crate) events: &'a str,
    /// The shop's SP-API handle.
    pub(crate) api: &'a spapi::Shop,
    pub(crate) run: &'a RunCtx<'a, Plan>,
}

impl Job for SyncJob {
    type Plan = Plan;
    type Cursor = Cursor;
    type Counts = Counts;
    const ACTION: Action = Action::StatusSync;

    async fn plan(&self, at: Planning<'_>) -> Result<Planned<Plan>, JobError> {
        plan::plan(at.conn, at.shop, at.trigger.params, at.now).await
    }

    /// One page of changes or one batch of the reconciliation, from the cursor (a wait
    /// continues the same run).
    async fn step(&self, running: &mut Running<'_, Self>) -> Result<Step, JobError> {
        let api = self.deps.shop_api(running).await?;
        let Running {
            ctx,
            cursor,
            counts,
            ..
        } = running;
        let s = Stepping {
            deps: &self.deps,
            events: &self.deps.events,
            api: &api,
            run: ctx,
        };
        let run = &s.run;
        if let Some(ids) = &run.plan.orders {
            return announced::batch(&s, ids, self.config.reconcile_batch, cursor, counts).await;
        }
        match run.plan.mode {
            StatusSyncMode::Changes if cursor.unpaid_checked.is_some() => {
                let watermark = cursor.mirror.watermark.or(run.plan.last_updated_after);
                let (grace, size) = (self.config.announce_grace, self.config.reconcile_batch);
                reconcile::unpaid(&s, watermark, grace, size, cursor, counts).await
            }
            StatusSyncMode::Changes => {
                let settings = orders::mirror::Settings {
                    page_size: self.config.page_size,
                    min_interval: self.config.mirror_min_interval,
                    statuses: if run.plan.sweep {
                        &orders::mirror::SWEPT_STATUSES
                    } else {
                        &orders::mirror::POLLED_STATUSES
                    },
                };
                let grace = self.config.announce_grace;
                changes::page(&s, settings, grace, cursor, counts).await
            }
            StatusSyncMode::Reconcile => {
                reconcile::batch(&s, self.config.reconcile_batch, cursor, counts).await
            }
        }
    }

    fn summary(&self, run: &RunCtx<'_, Plan>, c: &Counts) -> Option<Summary> {
        let mode = run.mode.unwrap_or("-");
        let Counts {
            seen,
            paid,
            canceled,
            released,
            attention,
            unchanged,
            not_imported,
            failed,
            unannounced,
            ship_by,
            tally,
            ..
        } = c;
        let mut missed = if *unannounced > 0 {
            format!(", {unannounced} not announced by a notification")
        } else {
            String::new()
        };
        if *ship_by > 0 {
            missed.push_str(&format!(
                ", {ship_by} open order(s) due to ship within hours"
            ));
        }
        let message = format!(
            "status-sync {mode}: {seen} order(s) seen: {paid} paid, {canceled} canceled ({released} reserved released), \
             {attention} need attention, {unchanged} unchanged, {not_imported} not imported, {failed} failed{missed}; {tally}"
        );
        let warn = *failed > 0 || *attention > 0;
        Some(summary::run_summary(message, warn, c))
    }

    fn amazon_calls(&self, counts: &Counts) -> i32 {
        counts.tally.total_calls()
    }

    fn next_run_params(&self, plan: &Plan) -> CommandParams {
        match &plan.orders {
            Some(ids) => CommandParams::StatusSyncOrders {
                order_ids: ids.clone(),
            },
            None => CommandParams::StatusSync { mode: plan.mode },
        }
    }

    /// Announced orders are work no other run covers for sure (a `changes` run in progress may
    /// have read its page before the change): tried again 15 s later instead of skipped.
    fn retry_when_busy(&self, plan: &Plan) -> Option<chrono::Duration> {
        plan.orders.as_ref().map(|_| chrono::Duration::seconds(15))
    }

    fn window(&self, plan: &Plan) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (plan.last_updated_after, None)
    }

    fn tally(counts: &mut Counts) -> Option<&mut Tally> {
        Some(&mut counts.tally)
    }
}

/// The status-sync handler: the job runner over [`SyncJob`] (`StatusSync::new(pool, keys, api,
/// topology, config)`).
pub type StatusSync = Service<SyncJob>;

/// The status-sync job: plan, step and summary of a run.
pub struct SyncJob {
    deps: Deps,
    config: SyncConfig,
}

impl Build for SyncJob {
    type Config = SyncConfig;

    fn build(deps: Deps, config: SyncConfig) -> (Self, Settings) {
        let c = &config;
        let settings = Settings::paging(c.lease_ttl, c.transient_retry, c.max_transient_failures);
        (Self { deps, config }, settings)
    }
}

/// The service binary: reads its settings from the environment (`--help` lists them), then
/// consumes its queue until SIGTERM (`runtime::run`). The `status-sync` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    let page_size = runtime::env_in_range("SYNC_PAGE_SIZE", 100, 1..=100)?;
    let grace = domain::notifications::ANNOUNCE_GRACE
        .num_seconds()
        .unsigned_abs();
    let grace = runtime::env_in_range("SYNC_ANNOUNCE_GRACE_SECONDS", grace, 0..=86_400)?;
    let (env, default) = (
        orders::mirror::MIN_POLL_ENV,
        orders::mirror::SERVICE_MIN_POLL_SECONDS,
    );
    let mirror_poll = runtime::env_in_range(env, default, 0..=3600)?;
    let config = SyncConfig {
        page_size: page_size as u32,
        announce_grace: Duration::seconds(grace.cast_signed()),
        mirror_min_interval: Duration::seconds(mirror_poll.cast_signed()),
        ..SyncConfig::default()
    };
    runtime::run(ACTION, &[], move |ctx| {
        // Limiter waits beyond SPAPI_MAX_LIMITER_WAIT_MS become continuations (runtime).
        let api = ctx.spapi_client().expect("the SP-API client can be built");
        StatusSync::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
