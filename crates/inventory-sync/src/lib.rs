//! inventory-sync (在庫連携): pushes the free stock (フリー在庫数) of our products, and the handling
//! time (出荷作業日数) where one is set, to the Amazon SKUs mapped to them in the external-product
//! mapping table (seed section 4).
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy); this crate supplies the plan and the step ([`job`], one
//! module per step: `job` (release, targets, feeds in turn), `submit` (one feed: intent, then
//! upload and submission)). One run per command, one run at a time per shop (lease):
//! 1. **Release** submissions an interrupted run left without a recorded `createFeed` outcome:
//!    they are closed as not sent and their SKUs become targets again. (A stock push is
//!    idempotent: sending it twice is harmless, so no `getFeeds` reconciliation is needed, unlike
//!    shipment confirmations.)
//! 2. **Targets**, read in one statement ([`store::inventory::targets`]): mapped SKUs whose
//!    product's free stock changed since their last push (`stock.change_seq`), whose handling
//!    time differs from what was pushed, never pushed, or whose last push failed; every mapped
//!    SKU in `full` mode. Nothing else is sent; with no target no Amazon call is made at all.
//! 3. Per marketplace, one `JSON_LISTINGS_FEED` (split at 25,000 messages): `PATCH` `merge` on
//!    `/attributes/fulfillment_availability` with `fulfillment_channel_code: DEFAULT`, the
//!    quantity, and `lead_time_to_ship_max_days` only when set (a merge leaves Amazon's handling
//!    time alone otherwise).
//! 4. Per feed: record the submission and every messageId ↔ SKU with the quantity, handling
//!    days and change sequence sent (**intent**, committed before any call), upload, mark
//!    `in_flight`, `createFeed`, then in one transaction: feed id, SKUs `sent`, API log,
//!    `feed.submitted` (outbox). The next feed's intent is written while the current feed is
//!    uploaded and marked sent. feed-poller applies the processing report with
//!    [`store::inventory::apply_listing_results`].
//! 5. When Amazon throttles or fails, the SKUs not accepted are marked `failed`; a throttled or
//!    transient failure ends the run with a fresh trigger in the outbox (`not_before`), and the
//!    next run sends them. A permanent refusal fails the run with an API-log entry saying what
//!    to do (the runner's error policy).
//!
//! A stock change that lands while a run builds its feed has a higher `change_seq` than the one
//! recorded for the push, so the next run picks it up.

pub mod job;
mod submit;

use std::collections::BTreeMap;

use bus::{Handler, HandlerError, Incoming, Topology};
use domain::Marketplace;
use domain::messages::CommandParams;
use domain::shop::Shop;
use runtime::job::{Decided, Report, RunnerError, Trigger};
use serde::{Deserialize, Serialize};
use spapi::SpApi;
use spapi::listings_feed;
use sqlx::PgPool;
use uuid::Uuid;

use job::Sync;

/// Service, queue and API-log action name.
pub const SERVICE: &str = "inventory-sync";
const ACTION: &str = "inventory-sync";
/// Feed type of the pushes.
pub const FEED_TYPE: &str = spapi::feeds::JSON_LISTINGS_FEED;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lease of one run per shop.
    pub lease_ttl: chrono::Duration,
    /// First `getFeed` of a new feed after this long (feed-poller).
    pub first_poll_delay: chrono::Duration,
    /// Messages per feed (Amazon's maximum is 25,000).
    pub max_messages_per_feed: usize,
    /// When Amazon throttles or fails transiently, the continuation runs after this long (at least).
    pub retry_delay: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ttl: chrono::Duration::minutes(15),
            first_poll_delay: chrono::Duration::seconds(60),
            max_messages_per_feed: listings_feed::MAX_MESSAGES_PER_FEED,
            retry_delay: chrono::Duration::seconds(60),
        }
    }
}

impl Settings {
    /// The defaults, with the first result poll after `FEED_FIRST_POLL_SECONDS` when set
    /// (`runtime::first_poll_delay`; default 60 s).
    pub fn from_env() -> anyhow::Result<Self> {
        let d = Self::default();
        Ok(Self {
            first_poll_delay: runtime::first_poll_delay(d.first_poll_delay)?,
            ..d
        })
    }
}

/// What a run did (also the ledger's `counts`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: Option<Uuid>,
    /// Another run held the lease, or the shop is inactive: nothing done.
    pub skipped: bool,
    /// The command already ran (redelivery): nothing done.
    pub duplicate: bool,
    pub full: bool,
    /// SKUs selected.
    pub targets: usize,
    /// Why they were selected (`never`, `failed`, `stock`, `handling_days`, `full`).
    pub by_reason: BTreeMap<String, usize>,
    /// Refused by the feed builder (logged, marked failed).
    pub rejected: usize,
    /// Messages in feeds Amazon accepted (all marketplaces).
    pub sent: usize,
    /// SKUs whose feed Amazon did not accept (marked failed, sent by the next run).
    pub not_sent: usize,
    /// Feeds submitted by this run.
    pub feed_submission_ids: Vec<Uuid>,
    /// Submissions of an interrupted run closed as not sent.
    pub released: usize,
    /// A continuation was scheduled (throttling, transient failure, unknown outcome).
    pub continuation: bool,
    /// SP-API calls made by this run (createFeedDocument, createFeed).
    pub amazon_calls: u32,
    /// Why the run stopped sending (Amazon did not accept a feed), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Why the run failed (Amazon refused, the shop must be re-authorized), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the run's time went, in milliseconds summed over its feeds: `release`, `targets`,
    /// `build` (feed JSON), `intent` (submission and messages recorded), `upload`
    /// (createFeedDocument + upload), `create` (createFeed), `sent` (SKUs marked sent, log,
    /// event). Shown in the ledger and by `bench inventory`. A feed's `build` and `intent`
    /// overlap the previous feed's `upload`, `create` and `sent`: the sum may exceed the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phase_ms: BTreeMap<String, u64>,
}

impl RunReport {
    /// Adds the time since `since` to `phase`.
    pub(crate) fn timed(&mut self, phase: &str, since: std::time::Instant) {
        self.add(phase, since.elapsed());
    }

    /// Adds `took` to `phase`.
    pub(crate) fn add(&mut self, phase: &str, took: std::time::Duration) {
        *self.phase_ms.entry(phase.to_owned()).or_default() += took.as_millis() as u64;
    }
}

impl Report for RunReport {
    fn decided(&mut self, d: Decided) {
        self.run_id = d.run_id;
        self.skipped = d.skipped;
        self.duplicate = d.duplicate;
        self.continuation = d.continuation;
        self.error = d.error;
    }
}

/// Errors that abort a run (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Database, store or broker (see `runtime::job::errors`).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Runner(e) => e.into(),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

/// The inventory-sync service: the job runner over [`job`]. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    jobs: runtime::job::Service<Sync>,
}

impl Service {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        settings: Settings,
    ) -> Self {
        let jobs = runtime::job::Service::new(pool, keys, api, topology, settings);
        Self { jobs }
    }

    /// From the runtime context.
    pub fn from_ctx(ctx: runtime::Ctx) -> anyhow::Result<Self> {
        Self::from_ctx_with(ctx, Settings::default())
    }

    /// As [`Self::from_ctx`], with `settings` (the binary's: [`Settings::from_env`]).
    pub fn from_ctx_with(ctx: runtime::Ctx, settings: Settings) -> anyhow::Result<Self> {
        let api = ctx.spapi_client()?;
        Ok(Self::new(ctx.pool, ctx.keys, api, ctx.topology, settings))
    }

    /// The SP-API handle of a shop (its endpoints and decrypted credentials).
    pub async fn shop_api(&self, shop: &Shop) -> Result<spapi::Shop, RunError> {
        let deps = &self.jobs.runner().job().deps;
        let mut conn = deps.pool.acquire().await?;
        Ok(job_api::shop_api(&mut conn, &deps.keys, &deps.api, shop).await?)
    }

    /// Runs the action for one shop now (`full`: every mapped SKU).
    pub async fn run(
        &self,
        shop_id: Uuid,
        full: bool,
        command_id: Option<Uuid>,
        requested_by: &str,
    ) -> Result<RunReport, RunError> {
        let params = CommandParams::InventorySync { full };
        let outcome = self
            .jobs
            .runner()
            .start(Trigger {
                shop_id,
                command_id,
                requested_by,
                params: &params,
            })
            .await?;
        let mut report = outcome.into_report();
        report.full = full;
        Ok(report)
    }
}

impl Handler for Service {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let report = self.jobs.runner().handle(&msg).await?.into_report();
        tracing::info!(
            targets = report.targets,
            sent = report.sent,
            feeds = report.feed_submission_ids.len(),
            skipped = report.skipped,
            duplicate = report.duplicate,
            "inventory sync run"
        );
        Ok(())
    }
}

/// `header.issueLocale` for a marketplace (Amazon's issue texts in the shop's language).
pub fn issue_locale(m: Marketplace) -> &'static str {
    match m {
        Marketplace::Japan => "ja_JP",
        Marketplace::Australia => "en_AU",
        Marketplace::Singapore => "en_SG",
    }
}

/// The service binary: reads its settings from the environment (`--help` lists them), then
/// consumes its queue until SIGTERM (`runtime::run`). The `inventory-sync` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    runtime::run(SERVICE, &[], move |ctx| {
        Service::from_ctx_with(ctx, settings).expect("SP-API client configuration")
    })
    .await
}
