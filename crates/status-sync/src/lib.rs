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
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy). This crate supplies only its own part, [`SyncJob`]: the plan
//! (`plan`: mode and lower bound), one step per mode (`changes`: one page; `reconcile`: one
//! batch), both applying through `apply`, and the summary.

mod apply;
mod changes;
pub mod plan;
mod reconcile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bus::{HandlerError, Incoming, Topology};
use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, CommandParams, StatusSyncMode};
use runtime::job::{
    Job, JobError, Planned, Resume, RunCtx, Runner, Step, Summary, Trigger, summary,
};
use serde::{Deserialize, Serialize};
use spapi::SpApi;
use sqlx::{PgConnection, PgPool};
use store::shops::ShopRecord;

use plan::Plan;

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

/// Where a run is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// `changes`: the next page token.
    #[serde(default)]
    pub next_token: Option<String>,
    /// `reconcile`: last order id checked.
    #[serde(default)]
    pub after_order_id: Option<String>,
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
    /// Amazon calls of every operation.
    pub fn total_calls(&self) -> i32 {
        self.calls.values().map(|c| *c as i32).sum()
    }

    /// Counts one call of `op`.
    pub fn call(&mut self, op: &str) {
        *self.calls.entry(op.into()).or_default() += 1;
    }
}

/// The status-sync job: plan, step and summary of a run.
pub struct SyncJob {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    events: String,
    config: SyncConfig,
}

impl Job for SyncJob {
    type Plan = Plan;
    type Cursor = Cursor;
    type Counts = Counts;
    const ACTION: Action = Action::StatusSync;
    /// Pages and batches go on from the cursor: a wait continues the same run.
    const RESUME: Resume = Resume::SameRun;

    async fn plan(
        &self,
        conn: &mut PgConnection,
        shop: &ShopRecord,
        trigger: &Trigger<'_>,
    ) -> Result<Planned<Plan>, JobError> {
        plan::plan(conn, shop, trigger.params, Utc::now()).await
    }

    async fn step(
        &self,
        run: &RunCtx<'_, Plan>,
        cursor: &mut Cursor,
        counts: &mut Counts,
    ) -> Result<Step, JobError> {
        let api = {
            let mut conn = self.pool.acquire().await?;
            runtime::shop_api(&mut conn, &self.keys, &self.api, &run.shop.shop)
                .await
                .map_err(|e| JobError::Permanent {
                    code: "run_failed",
                    message: e.to_string(),
                })?
        };
        let (pool, keys, events) = (&self.pool, &self.keys, self.events.as_str());
        let started = Instant::now();
        let stepped = match run.plan.mode {
            StatusSyncMode::Changes => {
                let size = self.config.page_size;
                changes::page(pool, keys, events, &api, run, size, cursor, counts).await
            }
            StatusSyncMode::Reconcile => {
                let size = self.config.reconcile_batch;
                reconcile::batch(pool, keys, events, &api, run, size, cursor, counts).await
            }
        };
        counts.active_ms += started.elapsed().as_millis() as i64;
        stepped
    }

    fn summary(&self, run: &RunCtx<'_, Plan>, c: &Counts) -> Option<Summary> {
        let message = format!(
            "status-sync {}: {} order(s) seen: {} paid, {} canceled ({} reserved released), {} need attention, \
             {} unchanged, {} not imported, {} failed; {}",
            run.mode.unwrap_or("-"),
            c.seen,
            c.paid,
            c.canceled,
            c.released,
            c.attention,
            c.unchanged,
            c.not_imported,
            c.failed,
            summary::calls_and_time(&c.calls, c.continuations, c.duration_ms),
        );
        Some(summary::run_summary(
            message,
            c.failed > 0 || c.attention > 0,
            c,
        ))
    }

    fn amazon_calls(&self, counts: &Counts) -> i32 {
        counts.total_calls()
    }

    fn next_run_params(&self, plan: &Plan) -> CommandParams {
        CommandParams::StatusSync { mode: plan.mode }
    }

    fn window(&self, plan: &Plan) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (plan.last_updated_after, None)
    }

    fn waiting(&self, counts: &mut Counts) {
        counts.continuations += 1;
    }

    fn ending(&self, started_at: DateTime<Utc>, counts: &mut Counts) {
        counts.duration_ms = Some((Utc::now() - started_at).num_milliseconds());
    }
}

/// The status-sync handler: the job runner over [`SyncJob`]. Cheap to clone.
#[derive(Clone)]
pub struct StatusSync {
    runner: Arc<Runner<SyncJob>>,
}

impl std::fmt::Debug for StatusSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSync").finish_non_exhaustive()
    }
}

impl StatusSync {
    /// The handler over the pool, the keys, the SP-API client and the bus topology.
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        config: SyncConfig,
    ) -> Self {
        let settings = runtime::job::Settings {
            lease_ttl: config.lease_ttl,
            // A continuation comes as soon as Amazon's quota allows the next call.
            retry_delay: Duration::zero(),
            transient_retry: config.transient_retry,
            max_transient_failures: config.max_transient_failures,
        };
        let job = SyncJob {
            pool: pool.clone(),
            keys,
            api,
            events: topology.events_exchange(),
            config,
        };
        Self {
            runner: Arc::new(Runner::new(job, pool, topology, settings)),
        }
    }
}

impl bus::Handler for StatusSync {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.runner.handle(&msg).await?;
        Ok(())
    }
}
