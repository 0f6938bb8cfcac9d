//! What a job is to the runner (`runtime::job::Runner`): the [`Job`] trait a service implements
//! (plan, step, summary), the values the runner hands it ([`Planning`], [`Running`], [`RunCtx`])
//! and those it hands back ([`Planned`], [`Step`], [`Summary`], [`JobError`]), the error policy
//! ([`errors`]), the runner's settings, and what a job is built from ([`Deps`], [`Build`]).
//!
//! A service's step calls only forward from here: into this crate (checkpoint, lease, a shop's
//! SP-API handle, summaries), the libraries and `store`, never back into the runner.

pub mod errors;
mod shop_api;
pub mod summary;

use std::future::Future;

use bus::Topology;
use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, Command, CommandParams};
use serde::{Serialize, de::DeserializeOwned};
use spapi::SpApi;
use sqlx::{PgConnection, PgPool};
use store::api_log::Level;
use store::runs::Progress;
use store::shops::ShopRecord;
use uuid::Uuid;

pub use errors::{JobError, RunnerError};
pub use shop_api::shop_api;

/// How a run goes on after Amazon asked it to wait (throttling, transient failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The same run continues from its cursor: it goes `waiting`, keeps its lease until then,
    /// and a `Continue { run_id }` command is written to the outbox (runs that page through
    /// Amazon: order-ingest, status-sync).
    SameRun,
    /// The run ends `succeeded` with what it did, and a fresh trigger of the same action is
    /// written to the outbox: the next run selects again what is still to do (runs that select
    /// their targets from the database each time: shipment-feedback, inventory-sync).
    NextRun,
}

/// What [`Job::plan`] decided.
#[derive(Debug)]
pub enum Planned<P> {
    /// Run with this plan; `mode` goes to the ledger (`action_runs.mode`).
    Run { plan: P, mode: Option<String> },
    /// Refuse the trigger: a run `rejected` with `message` and an API-log error
    /// `invalid_trigger` carrying `details`.
    Refuse {
        message: String,
        mode: Option<String>,
        details: Option<serde_json::Value>,
    },
    /// Nothing to do (e.g. the shop is inactive): a run `skipped` with `message`.
    Skip {
        message: String,
        mode: Option<String>,
    },
}

impl<P> Planned<P> {
    /// The refusal of a trigger whose parameters are not `action`'s (e.g. a direct call with
    /// another action's parameters; on the queue such a command is dead-lettered at decoding).
    pub fn wrong_params(params: &CommandParams, action: Action) -> Self {
        Self::Refuse {
            message: format!(
                "trigger refused: {} parameters were sent to the {action} queue",
                params.action().map_or("continuation", |a| a.as_str())
            ),
            mode: None,
            details: serde_json::to_value(params).ok(),
        }
    }
}

/// What one [`Job::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do: the runner saves the cursor and counts, renews the lease and steps again.
    More,
    /// The run is complete; `watermark` goes to the ledger (the next plan starts from it).
    Done { watermark: Option<DateTime<Utc>> },
}

/// A summary line of a finished run, written to the API log by the runner.
#[derive(Debug, Clone)]
pub struct Summary {
    pub level: Level,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// What a plan is made from: the trigger, its shop (which exists), the runner's clock and the
/// transaction that will create the run.
pub struct Planning<'a> {
    pub conn: &'a mut PgConnection,
    pub shop: &'a ShopRecord,
    pub trigger: &'a Trigger<'a>,
    /// When the runner took the trigger.
    pub now: DateTime<Utc>,
}

/// A run in progress as a step sees it: its context (also through `Deref`), where it is and
/// what it did so far. The runner saves `cursor` and `counts` between steps.
pub struct Running<'a, J: Job> {
    pub ctx: RunCtx<'a, J::Plan>,
    pub cursor: J::Cursor,
    pub counts: J::Counts,
    /// Transient failures in a row (the runner's backoff).
    pub transient_failures: u32,
}

impl<'a, J: Job> std::ops::Deref for Running<'a, J> {
    type Target = RunCtx<'a, J::Plan>;

    fn deref(&self) -> &Self::Target {
        &self.ctx
    }
}

impl<J: Job> Running<'_, J> {
    /// The ledger's progress of the run now (the runner saves it between steps).
    pub fn progress(&self, amazon_calls: i32) -> Progress {
        progress(
            self.ctx.plan,
            &self.cursor,
            self.transient_failures,
            &self.counts,
            amazon_calls,
            (None, None),
        )
    }
}

/// A service's own part of an action. Handlers are plain async functions over domain types;
/// the runner does the rest (see the module documentation).
pub trait Job: Sized + Send + Sync + 'static {
    /// What the plan decided, kept with the run for its continuations.
    type Plan: Serialize + DeserializeOwned + Send + Sync;
    /// Where the run is (e.g. Amazon's next page token), saved between steps.
    type Cursor: Serialize + DeserializeOwned + Default + Send + Sync;
    /// What the run did (`action_runs.counts`).
    type Counts: Serialize + DeserializeOwned + Default + Clone + Send + Sync;

    /// The action: queue, ledger and API-log name.
    const ACTION: Action;
    /// How the run goes on when Amazon asks it to wait: by default the same run continues
    /// from its cursor.
    const RESUME: Resume = Resume::SameRun;

    /// Plans a new run from the trigger (the shop exists). A [`JobError::Permanent`] refuses
    /// the trigger like [`Planned::Refuse`].
    fn plan(
        &self,
        at: Planning<'_>,
    ) -> impl Future<Output = Result<Planned<Self::Plan>, JobError>> + Send;

    /// Does one step of the run from `run.cursor`, adding to `run.counts`.
    fn step(
        &self,
        run: &mut Running<'_, Self>,
    ) -> impl Future<Output = Result<Step, JobError>> + Send;

    /// The API-log summary of a run that ended (succeeded, or went on as a fresh trigger).
    fn summary(&self, run: &RunCtx<'_, Self::Plan>, counts: &Self::Counts) -> Option<Summary>;

    /// Amazon calls of the run so far (`action_runs.amazon_calls`).
    fn amazon_calls(&self, counts: &Self::Counts) -> i32;

    /// The parameters of the fresh trigger that continues the work ([`Resume::NextRun`]).
    fn next_run_params(&self, plan: &Self::Plan) -> CommandParams;

    /// The window the plan covers, written to the ledger when the run starts
    /// (`action_runs.window_from` / `window_to`). None by default.
    fn window(&self, _plan: &Self::Plan) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (None, None)
    }

    /// A trigger that finds another run of the action holding the shop's lease is skipped: that
    /// run covers its work. A trigger carrying work no other run covers (status-sync's orders
    /// Amazon announced) returns a delay: the runner waits up to that long for the lease (such
    /// runs are short and follow each other), and if it is still held, writes a copy of the
    /// trigger (a new message id, the same parameters) to the outbox for that much later. None
    /// by default.
    fn retry_when_busy(&self, _plan: &Self::Plan) -> Option<chrono::Duration> {
        None
    }

    /// The runner's own figures in the counts, when the job keeps them: the runner then counts
    /// continuations, the time spent in steps and the run's wall-clock duration there.
    fn tally(_counts: &mut Self::Counts) -> Option<&mut store::runs::Tally> {
        None
    }
}

/// The runner's settings of one action.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The (shop, action) lease lasts this long past the last sign of life of a run.
    pub lease_ttl: Duration,
    /// A continuation never comes sooner than this.
    pub retry_delay: Duration,
    /// First delay after a transient failure (doubled each time in a row).
    pub transient_retry: Duration,
    /// Transient failures in a row after which the run fails.
    pub max_transient_failures: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::minutes(10),
            retry_delay: Duration::seconds(60),
            transient_retry: Duration::seconds(30),
            max_transient_failures: 5,
        }
    }
}

/// A trigger of a new run: a command, or a direct call (tests, `ctl`).
#[derive(Debug, Clone, Copy)]
pub struct Trigger<'a> {
    pub shop_id: Uuid,
    /// The command's message id (the ledger's duplicate key); `None` for a direct call.
    pub command_id: Option<Uuid>,
    pub requested_by: &'a str,
    pub params: &'a CommandParams,
}

impl<'a> Trigger<'a> {
    /// The trigger of a command.
    pub fn of(cmd: &'a Command) -> Self {
        Self {
            shop_id: cmd.shop_id,
            command_id: Some(cmd.message_id),
            requested_by: &cmd.requested_by,
            params: &cmd.params,
        }
    }
}

/// What a step knows about its run.
pub struct RunCtx<'a, P> {
    /// The ledger row.
    pub run_id: Uuid,
    /// The shop.
    pub shop: &'a ShopRecord,
    /// What [`Job::plan`] decided.
    pub plan: &'a P,
    /// `action_runs.mode`.
    pub mode: Option<&'a str>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// The action (the lease's name).
    pub action: Action,
    /// Who holds the lease (`action@pid`).
    pub holder: &'a str,
    /// How long the lease lasts past the last sign of life.
    pub lease_ttl: Duration,
}

impl<P: Serialize> RunCtx<'_, P> {
    /// Saves `cursor` and `counts` as the run's progress on `conn` and renews the lease, so a
    /// step can commit its effect and its cursor in one transaction (a crash then resumes
    /// exactly after the committed work). The runner saves the same again after the step.
    pub async fn checkpoint<C: Serialize, N: Serialize>(
        &self,
        conn: &mut PgConnection,
        cursor: &C,
        counts: &N,
        amazon_calls: i32,
    ) -> Result<(), store::StoreError> {
        let progress = progress(self.plan, cursor, 0, counts, amazon_calls, (None, None));
        store::runs::save_progress(
            &mut *conn,
            self.run_id,
            store::runs::RunStatus::Running,
            &progress,
        )
        .await?;
        self.keep_lease(conn).await?;
        Ok(())
    }
}

impl<P> RunCtx<'_, P> {
    /// Extends the run's lease (long steps). False when another run took it over: the step
    /// should then stop.
    pub async fn keep_lease(&self, conn: &mut PgConnection) -> Result<bool, store::StoreError> {
        let kept = store::runs::try_lease(
            conn,
            self.shop.shop.id,
            self.action.as_str(),
            self.run_id,
            self.holder,
            self.lease_ttl,
        )
        .await?;
        if !kept {
            tracing::warn!(run_id = %self.run_id, action = %self.action, "lease taken over by another run: stopping");
        }
        Ok(kept)
    }
}

/// The ledger's progress of a run: plan, cursor and failures in a row (what [`Saved`] reads
/// back), counts, Amazon calls and (when the run starts) its window.
pub fn progress<P: serde::Serialize, C: serde::Serialize, N: serde::Serialize>(
    plan: &P,
    cursor: &C,
    transient_failures: u32,
    counts: &N,
    amazon_calls: i32,
    (window_from, window_to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> Progress {
    let saved = serde_json::json!({
        "plan": plan,
        "cursor": cursor,
        "transient_failures": transient_failures,
    });
    Progress {
        window_from,
        window_to,
        cursor: Some(saved),
        counts: serde_json::to_value(counts).unwrap_or_default(),
        amazon_calls,
    }
}

/// What every job is built from.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub pool: PgPool,
    /// The credentials' keys.
    pub keys: crypto::Keyring,
    /// The SP-API client (one per process, built by `Ctx::spapi_client`).
    pub api: SpApi,
    /// The bus topology (outbox routing).
    pub topology: Topology,
    /// The events exchange (`Topology::events_exchange`).
    pub events: String,
}

impl Deps {
    /// The SP-API handle of the run's shop. Credentials that cannot be read (decryption,
    /// endpoints) fail the run: trying again cannot help.
    pub async fn shop_api<P>(&self, run: &RunCtx<'_, P>) -> Result<spapi::Shop, JobError> {
        let mut conn = self.pool.acquire().await?;
        crate::shop_api(&mut conn, &self.keys, &self.api, &run.shop.shop)
            .await
            .map_err(|e| JobError::Permanent {
                code: "run_failed",
                message: e.to_string(),
            })
    }
}

/// A job that can be built from [`Deps`] and its own configuration.
pub trait Build: Job + Sized {
    /// The service's own tuning.
    type Config;

    /// The job and the runner's settings for it.
    fn build(deps: Deps, config: Self::Config) -> (Self, Settings);
}

impl Settings {
    /// The settings of a job that pages through Amazon with a cursor: a continuation comes as
    /// soon as Amazon's quota allows the next call (no minimum delay).
    pub fn paging(
        lease_ttl: Duration,
        transient_retry: Duration,
        max_transient_failures: u32,
    ) -> Self {
        Self {
            lease_ttl,
            retry_delay: Duration::zero(),
            transient_retry,
            max_transient_failures,
        }
    }

    /// The settings of a job that does its work in one step and leaves what Amazon did not take
    /// to a fresh trigger ([`Resume::NextRun`]): that trigger comes `retry_delay` later at
    /// the soonest; transient failures follow the runner's defaults.
    pub fn one_step(lease_ttl: Duration, retry_delay: Duration) -> Self {
        Self {
            lease_ttl,
            retry_delay,
            ..Self::default()
        }
    }
}
