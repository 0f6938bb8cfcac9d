//! shipment-feedback (出荷実績戻し): tracking numbers of today's shipped instructions back to
//! Amazon (seed section 3).
//!
//! Runs on the job runner ([`runtime::job`]: decoding, unknown shop, duplicates, ledger, lease,
//! continuations, error policy); this crate supplies the plan and the step ([`job`]). One run
//! per command, one run at a time per shop (lease):
//! 1. **Reconcile** submissions whose `createFeed` outcome was never recorded (crash or unknown
//!    outcome between Amazon accepting the feed and our commit): `getFeeds` since the intent; a
//!    feed Amazon has that we do not know is adopted (nothing is sent again); when Amazon has
//!    none, the submission is closed as not sent and its instructions become targets again.
//! 2. **Select** the seed's targets: imported through the API, has a tracking number, API status
//!    印刷待ち (awaiting print), instruction 出荷済み (shipped), ship date = today in the shop's
//!    time zone (or an operator's `ctl resend-shipment`); for a shop that sends every package,
//!    also the partially shipped instructions (allocated, 一部出荷済み) with a package that left
//!    today and is not confirmed (`store::shipments::partial_targets`). Of an instruction's
//!    packages only those Amazon has not confirmed are sent.
//! 3. **Validate** each: carrier mapping for the delivery method's external delivery method,
//!    first tracking number (length, carrier's format), the feed builder's own checks. Refused
//!    ones get an API-log entry and stay awaiting print; the rest go.
//! 4. Strategy `feed`: record the submission and every MessageID ↔ instruction (**intent**),
//!    upload the document, mark `in_flight`, `createFeed`, then in one transaction: feed id,
//!    instructions → 印刷済み (printed), API log, `feed.submitted` event (outbox).
//!    Strategy `confirm_shipment`: Orders v0 `confirmShipment` per order (package reference 1,
//!    so a repeat edits the same shipment instead of adding one), result immediate.
//!
//! When Amazon throttles or fails transiently, the run ends with what it did and a fresh trigger
//! is queued through the outbox (`not_before`): the next run reconciles and selects again. A
//! permanent refusal or a revoked authorization fails the run with an API-log entry saying what
//! to do (the runner's error policy, `runtime::job::errors`).
//!
//! Modules, one per step: [`job`] (plan and step), `reconcile`, `store::shipments` (selection, API-status changes), `validate`,
//! `submit` (feed), `confirm` (confirmShipment), `confirmation` (one confirmation's fields).

mod acknowledge;
mod confirm;
mod confirmation;
mod fail_points;
pub mod job;
mod reconcile;
mod submit;
mod validate;

use std::sync::Arc;

use bus::{Handler, HandlerError, Incoming, Topology};
use domain::messages::CommandParams;
use runtime::job::{Decided, Report, RunnerError, Trigger};
use serde::{Deserialize, Serialize};
use spapi::SpApi;
use sqlx::PgPool;
use uuid::Uuid;

pub use fail_points::{FAIL_POINT_ENV, FailPoints};
pub use store::shipments::Target;
pub use validate::{Refusal, validate_tracking};

use job::Feedback;

/// Service, queue and api_log action name.
pub const SERVICE: &str = "shipment-feedback";
const ACTION: &str = "shipment-feedback";
const FEED_TYPE: &str = spapi::feeds::POST_ORDER_FULFILLMENT_DATA;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lease of one run per shop.
    pub lease_ttl: chrono::Duration,
    /// First `getFeed` of a new feed after this long (feed-poller).
    pub first_poll_delay: chrono::Duration,
    /// Messages per feed before splitting (Amazon: keep a feed under 10 MiB).
    pub max_messages_per_feed: usize,
    /// How far before the intent `getFeeds` looks when reconciling (clock skew).
    pub reconcile_skew: chrono::Duration,
    /// When Amazon throttles or fails transiently, the run continues after this long (at least).
    pub retry_delay: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ttl: chrono::Duration::minutes(10),
            first_poll_delay: chrono::Duration::seconds(30),
            max_messages_per_feed: 5_000,
            reconcile_skew: chrono::Duration::minutes(5),
            retry_delay: chrono::Duration::seconds(60),
        }
    }
}

impl Settings {
    /// The defaults, with the first result poll after `FEED_FIRST_POLL_SECONDS` when set
    /// (`runtime::first_poll_delay`; default 30 s).
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
    /// Another run held the lease: nothing done.
    pub skipped: bool,
    /// The trigger already ran (a copy or a redelivery): nothing done.
    pub duplicate: bool,
    pub targets: usize,
    /// Refused before sending (stay awaiting print).
    pub refused: usize,
    /// Shipments of an earlier day still awaiting print, newly told to the operator (attention).
    #[serde(default)]
    pub late: usize,
    /// Sent in feeds accepted by Amazon (printed) or confirmed (shipped).
    pub sent: usize,
    /// confirm-shipment: refused by Amazon (failed).
    pub failed: usize,
    /// Accepted buyer cancellations sent to Amazon (order acknowledgement feed).
    #[serde(default)]
    pub acknowledged: usize,
    /// Feeds submitted by this run.
    pub feed_submission_ids: Vec<Uuid>,
    /// Submissions found at Amazon by reconciliation (not sent again).
    pub reconciled: usize,
    /// Submissions Amazon never received (their instructions are targets again).
    pub released: usize,
    /// A continuation was scheduled (throttling, transient failure, unknown outcome).
    pub continuation: bool,
    /// Why the run failed (Amazon refused, the shop must be re-authorized), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// A test fail point left the run as a crashed process would.
    #[error("fail point: {0}")]
    FailPoint(&'static str),
    /// Database, store or broker (see `runtime::job::errors`).
    #[error(transparent)]
    Runner(RunnerError),
}

impl From<RunnerError> for RunError {
    fn from(e: RunnerError) -> Self {
        match e {
            RunnerError::Abandoned(point) => Self::FailPoint(point),
            other => Self::Runner(other),
        }
    }
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::FailPoint(p) => HandlerError::retry(format!("fail point: {p}")),
            RunError::Runner(e) => e.into(),
        }
    }
}

/// The shipment-feedback service: the job runner over [`job`]. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    jobs: runtime::job::Service<Feedback>,
}

impl Service {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        settings: Settings,
    ) -> Self {
        let config = (settings, FailPoints::default());
        let jobs = runtime::job::Service::new(pool, keys, api, topology, config);
        Self { jobs }
    }

    /// From the runtime context.
    pub fn from_ctx(ctx: runtime::Ctx) -> anyhow::Result<Self> {
        Self::from_ctx_with(ctx, Settings::default())
    }

    /// As [`Self::from_ctx`], with `settings` (the binary's: [`Settings::from_env`]).
    pub fn from_ctx_with(ctx: runtime::Ctx, settings: Settings) -> anyhow::Result<Self> {
        let api = ctx.spapi_client()?;
        let config = (settings, FailPoints::from_env());
        let jobs = runtime::job::Service::new(ctx.pool, ctx.keys, api, ctx.topology, config);
        Ok(Self { jobs })
    }

    /// The crash hooks (tests).
    pub fn fail_points(&self) -> &Arc<FailPoints> {
        &self.jobs.runner().job().fail
    }

    /// Runs the action for one shop now (`command_id`: the trigger, for the duplicate check).
    pub async fn run(
        &self,
        shop_id: Uuid,
        command_id: Option<Uuid>,
        requested_by: &str,
    ) -> Result<RunReport, RunError> {
        let params = CommandParams::ShipmentFeedback {};
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
        Ok(outcome.into_report())
    }
}

impl Handler for Service {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let report = self.jobs.runner().handle(&msg).await?.into_report();
        tracing::info!(
            sent = report.sent,
            refused = report.refused,
            skipped = report.skipped,
            duplicate = report.duplicate,
            "shipment feedback run"
        );
        Ok(())
    }
}

/// The service binary: reads its settings from the environment (`--help` lists them), then
/// consumes its queue until SIGTERM (`runtime::run`). The `shipment-feedback` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    runtime::run(SERVICE, &[], move |ctx| {
        Service::from_ctx_with(ctx, settings).expect("SP-API client configuration")
    })
    .await
}
