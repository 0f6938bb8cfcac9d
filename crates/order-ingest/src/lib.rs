//! order-ingest (出荷指示取得): imports Amazon orders (PENDING and UNSHIPPED, merchant-fulfilled)
//! as shipping instructions, through Orders v2026-01-01 `searchOrders`.
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy). This crate supplies only its own part, [`Ingest`]:
//! * **plan** ([`window`]): the window from the command and the ledger (`domain::window`);
//! * **step**: one page, fetched (`fetch`: `searchOrders` from the cursor) and applied (`apply`:
//!   `orders::apply_orders` in one transaction together with the run's cursor); the watermark
//!   is Amazon's `createdBefore` of the last page;
//! * **summary**: the counts, as an API-log `run_summary`.
//!
//! When the shared limiter says the next page is not due soon, the runner stores the cursor,
//! schedules the same run's `Continue` through the outbox (`not_before`) and acknowledges the
//! message: no handler ever sleeps on Amazon's quota. The mapping of an order, delivery rules
//! and the single-order import live in the `orders` library.

mod apply;
mod fetch;
pub mod window;

use std::sync::Arc;
use std::time::Instant;

use bus::{HandlerError, Incoming, Topology};
use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, CommandParams};
use runtime::job::{
    Job, JobError, Planned, Resume, RunCtx, Runner, Step, Summary, Trigger, summary,
};
use serde::{Deserialize, Serialize};
use spapi::SpApi;
use sqlx::{PgConnection, PgPool};
use store::shops::ShopRecord;

pub use orders::Counts;
pub use runtime::job::{RunOutcome, RunnerError};

use window::Plan;

/// Action, queue and ledger name (the ledger name of every order import).
pub const ACTION: &str = orders::ACTION;

/// Tuning of the service.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// `maxResultsPerPage` (1-100).
    pub page_size: u32,
    /// The (shop, action) lease lasts this long past the last sign of life of a run.
    pub lease_ttl: Duration,
    /// First delay before continuing after a transient Amazon failure (doubles each time).
    pub transient_retry: Duration,
    /// Transient failures in a row after which the run fails.
    pub max_transient_failures: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            page_size: 100,
            lease_ttl: Duration::minutes(10),
            transient_retry: Duration::seconds(30),
            max_transient_failures: 5,
        }
    }
}

/// Where a run is in Amazon's pagination.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Token of the next page (valid 24 h); `None` before the first page.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// The order-ingest job: plan, step and summary of a run.
pub struct Ingest {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    events: String,
    page_size: u32,
}

impl Job for Ingest {
    type Plan = Plan;
    type Cursor = Cursor;
    type Counts = Counts;
    const ACTION: Action = Action::OrderIngest;
    /// Pages go on from the cursor: a wait continues the same run.
    const RESUME: Resume = Resume::SameRun;

    async fn plan(
        &self,
        conn: &mut PgConnection,
        shop: &ShopRecord,
        trigger: &Trigger<'_>,
    ) -> Result<Planned<Plan>, JobError> {
        window::plan(conn, shop, trigger.params, Utc::now()).await
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
        let started = Instant::now();
        let shop = &run.shop.shop;
        let token = cursor.next_token.clone();
        let resp =
            fetch::page(&api, shop, run.plan, self.page_size, token, counts, started).await?;
        let fetched = started.elapsed();
        cursor.next_token = resp.pagination.and_then(|p| p.next_token);
        apply::page(
            &self.pool,
            &self.keys,
            &self.events,
            run,
            &resp.orders,
            cursor,
            counts,
        )
        .await?;
        counts.active_ms += started.elapsed().as_millis() as i64;
        tracing::debug!(run_id = %run.run_id, orders = resp.orders.len(), fetch_ms = fetched.as_millis() as u64,
            apply_ms = (started.elapsed() - fetched).as_millis() as u64, "page imported");
        Ok(match cursor.next_token {
            Some(_) => Step::More,
            None => Step::Done {
                watermark: Some(resp.created_before.unwrap_or(run.plan.to)),
            },
        })
    }

    fn summary(&self, run: &RunCtx<'_, Plan>, c: &Counts) -> Option<Summary> {
        let message = format!(
            "order-ingest {} {} .. {}: {} page(s), {} order(s): {} new, {} updated, {} unchanged, {} not imported; \
             {} unmapped line(s); {}",
            run.mode.unwrap_or("-"),
            run.plan.from.to_rfc3339(),
            run.plan.to.to_rfc3339(),
            c.pages,
            c.orders,
            c.new,
            c.updated,
            c.unchanged,
            c.failed,
            c.unmapped_lines,
            summary::calls_and_time(&c.calls, c.continuations, c.duration_ms),
        );
        Some(summary::run_summary(
            message,
            c.failed > 0 || c.unmapped_lines > 0,
            c,
        ))
    }

    fn amazon_calls(&self, counts: &Counts) -> i32 {
        counts.total_calls()
    }

    fn next_run_params(&self, _plan: &Plan) -> CommandParams {
        CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Differential,
        }
    }

    fn window(&self, plan: &Plan) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (Some(plan.from), Some(plan.to))
    }

    fn waiting(&self, counts: &mut Counts) {
        counts.continuations += 1;
    }

    fn ending(&self, started_at: DateTime<Utc>, counts: &mut Counts) {
        counts.duration_ms = Some((Utc::now() - started_at).num_milliseconds());
    }
}

/// The order-ingest handler: the job runner over [`Ingest`]. Cheap to clone.
#[derive(Clone)]
pub struct OrderIngest {
    runner: Arc<Runner<Ingest>>,
}

impl std::fmt::Debug for OrderIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderIngest").finish_non_exhaustive()
    }
}

impl OrderIngest {
    /// The handler over the pool, the keys, the SP-API client and the bus topology.
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        config: IngestConfig,
    ) -> Self {
        let settings = runtime::job::Settings {
            lease_ttl: config.lease_ttl,
            // A continuation comes as soon as Amazon's quota allows the next page.
            retry_delay: Duration::zero(),
            transient_retry: config.transient_retry,
            max_transient_failures: config.max_transient_failures,
        };
        let job = Ingest {
            pool: pool.clone(),
            keys,
            api,
            events: topology.events_exchange(),
            page_size: config.page_size,
        };
        Self {
            runner: Arc::new(Runner::new(job, pool, topology, settings)),
        }
    }

    /// The SP-API client (call statistics).
    pub fn api(&self) -> &SpApi {
        &self.runner.job().api
    }
}

impl bus::Handler for OrderIngest {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.runner.handle(&msg).await?;
        Ok(())
    }
}
