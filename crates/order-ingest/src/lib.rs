//! order-ingest (出荷指示取得): imports Amazon orders (PENDING and UNSHIPPED, merchant-fulfilled)
//! as shipping instructions, through Orders v2026-01-01 `searchOrders`.
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy). This crate supplies only its own part, [`Ingest`]:
//! * **plan** ([`window`]): the window from the command and the ledger (`domain::window`);
//! * **step**: differential (`mirrored`): the next batch of the shop's order mirror
//!   (`orders::mirror`: one `lastUpdatedAfter` poll shared with status-sync); while Amazon
//!   announces the shop's order changes, differential is a created-time window like range and
//!   hours (new orders only, `domain::notifications`); range and hours:
//!   one page, fetched (`fetch`: `searchOrders` from the cursor) and applied (`apply`:
//!   `orders::apply_orders` in one transaction together with the run's cursor), the watermark
//!   being Amazon's `createdBefore` of the last page;
//! * **summary**: the counts, as an API-log `run_summary`.
//!
//! When the shared limiter says the next page is not due soon, the runner stores the cursor,
//! schedules the same run's `Continue` through the outbox (`not_before`) and acknowledges the
//! message: no handler ever sleeps on Amazon's quota. The mapping of an order, delivery rules
//! and the single-order import live in the `orders` library.

mod apply;
mod fetch;
mod mirrored;
pub mod window;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, CommandParams};
use job_api::{
    Build, Deps, Job, JobError, Planned, Planning, RunCtx, Running, Settings, Step, Summary,
    summary,
};
use runtime::job::Service;
use serde::{Deserialize, Serialize};
use store::runs::Tally;

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
    /// A differential import finding the shop's order mirror polled less than this ago reads
    /// the mirror only (zero: every run polls; the service reads `ORDER_MIRROR_MIN_POLL_SECONDS`).
    pub mirror_min_interval: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            mirror_min_interval: Duration::zero(),
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
    /// Differential: where the run is in the order mirror.
    #[serde(default)]
    pub mirror: orders::mirror::Position,
}

impl Job for Ingest {
    type Plan = Plan;
    type Cursor = Cursor;
    type Counts = Counts;
    const ACTION: Action = Action::OrderIngest;

    async fn plan(&self, at: Planning<'_>) -> Result<Planned<Plan>, JobError> {
        window::plan(at.conn, at.shop, at.trigger.params, at.now).await
    }

    /// One page, from the cursor (a wait continues the same run).
    async fn step(&self, running: &mut Running<'_, Self>) -> Result<Step, JobError> {
        let Running {
            ctx: run,
            cursor,
            counts,
            ..
        } = running;
        let run = &*run;
        let Deps { pool, keys, .. } = &self.deps;
        let api = self.deps.shop_api(run).await?;
        if run.plan.mirror {
            let m = mirrored::Mirrored {
                deps: &self.deps,
                api: &api,
                settings: self.mirror,
            };
            return mirrored::step(&m, run, cursor, counts).await;
        }
        let started = Instant::now();
        let shop = &run.shop.shop;
        let token = cursor.next_token.clone();
        let resp = fetch::page(&api, shop, run.plan, self.page_size, token, counts).await?;
        let fetched = started.elapsed();
        cursor.next_token = resp.pagination.and_then(|p| p.next_token);
        apply::page(
            pool,
            keys,
            &self.deps.events,
            run,
            &resp.orders,
            cursor,
            counts,
        )
        .await?;
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
        let Counts {
            pages,
            orders,
            new,
            updated,
            unchanged,
            failed,
            unmapped_lines,
            tally,
        } = c;
        let (mode, from, to) = (run.mode.unwrap_or("-"), run.plan.from, run.plan.to);
        let (from, to) = (from.to_rfc3339(), to.to_rfc3339());
        let message = format!(
            "order-ingest {mode} {from} .. {to}: {pages} page(s), {orders} order(s): {new} new, {updated} updated, \
             {unchanged} unchanged, {failed} not imported; {unmapped_lines} unmapped line(s); {tally}"
        );
        let attention = *failed > 0 || *unmapped_lines > 0;
        Some(summary::run_summary(message, attention, c))
    }

    fn amazon_calls(&self, counts: &Counts) -> i32 {
        counts.tally.total_calls()
    }

    fn next_run_params(&self, _plan: &Plan) -> CommandParams {
        CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Differential,
        }
    }

    fn window(&self, plan: &Plan) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (Some(plan.from), Some(plan.to))
    }

    fn tally(counts: &mut Counts) -> Option<&mut Tally> {
        Some(&mut counts.tally)
    }
}

/// The order-ingest handler: the job runner over [`Ingest`] (`OrderIngest::new(pool, keys,
/// api, topology, config)`).
pub type OrderIngest = Service<Ingest>;

/// The order-ingest job: plan, step and summary of a run.
pub struct Ingest {
    deps: Deps,
    page_size: u32,
    mirror: orders::mirror::Settings,
}

impl Build for Ingest {
    type Config = IngestConfig;

    fn build(deps: Deps, config: IngestConfig) -> (Self, Settings) {
        let c = &config;
        let settings = Settings::paging(c.lease_ttl, c.transient_retry, c.max_transient_failures);
        let page_size = config.page_size;
        let mirror = orders::mirror::Settings {
            page_size,
            min_interval: config.mirror_min_interval,
            statuses: &orders::mirror::POLLED_STATUSES,
        };
        let job = Self {
            deps,
            page_size,
            mirror,
        };
        (job, settings)
    }
}

/// The service binary: reads its settings from the environment (`--help` lists them), then
/// consumes its queue until SIGTERM (`runtime::run`). The `order-ingest` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    let page_size = runtime::env_in_range("INGEST_PAGE_SIZE", 100, 1..=100)?;
    let (env, default) = (
        orders::mirror::MIN_POLL_ENV,
        orders::mirror::SERVICE_MIN_POLL_SECONDS,
    );
    let mirror_poll = runtime::env_in_range(env, default, 0..=3600)?;
    let config = IngestConfig {
        page_size: page_size as u32,
        mirror_min_interval: Duration::seconds(mirror_poll.cast_signed()),
        ..IngestConfig::default()
    };
    runtime::run(ACTION, &[], move |ctx| {
        // Limiter waits beyond SPAPI_MAX_LIMITER_WAIT_MS become continuations (runtime).
        let api = ctx.spapi_client().expect("the SP-API client can be built");
        OrderIngest::new(ctx.pool, ctx.keys, api, ctx.topology, config)
    })
    .await
}
