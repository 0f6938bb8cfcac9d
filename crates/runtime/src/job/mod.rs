//! The one job runner: what every action shares between "a command arrived" and "the run is in
//! the ledger". A service supplies only its own part, a [`Job`]: plan the work from the command,
//! do one step with the cursor, summarise the counts.
//!
//! The runner owns, in this order ([`Runner::handle`]):
//! 1. **Decoding** and the contract version ([`domain::messages::Command::decode`]); a body that
//!    does not decode, or a command for another action, is refused (dead-lettered). An import
//!    window Amazon cannot serve is left to the plan (a `rejected` run with the reason).
//! 2. **Unknown shop**: refused once with an API-log error, the message acknowledged.
//! 3. **Duplicates**, with one mechanism: the run ledger. A trigger (`command_id`) whose run of
//!    this action already succeeded is acknowledged without running again; the check is repeated
//!    under the lease ([`store::runs::lease_new_run`]), so copies handled at once run once. For
//!    jobs that continue the same run ([`Resume::SameRun`]) a redelivered trigger whose run is
//!    still `running` resumes that run from its cursor: at once when the broker redelivered it
//!    (the consumer that held it is gone), else when the holder's lease expires; one whose run is
//!    `waiting` is a duplicate. (The bus inbox, `bus::WithInbox`, is not used by the services.)
//! 4. **Plan** (the job): run, refuse (run `rejected` + API-log `invalid_trigger`) or skip.
//! 5. **Ledger and lease**: a run row, the per-(shop, action) lease (another live run → this
//!    one `skipped`); runs of a dead process still `running` are closed as `failed`
//!    (abandoned).
//! 6. **Steps** until the job says done; the cursor and counts are saved between steps and the
//!    lease renewed (a step may also commit its cursor with its effect: [`RunCtx::checkpoint`]).
//!    Jobs that keep a [`store::runs::Tally`] ([`Job::tally`]) get their continuations, time in
//!    steps and duration counted by the runner.
//! 7. **Continuations** through the outbox ([`Resume`]), and the **error policy** of
//!    [`errors`] (throttling → continuation, transient → backoff, permanent → failed with an
//!    API-log entry saying what to do).
//! 8. **Finish**: `succeeded` with the counts, the Amazon calls and the job's summary in the
//!    API log, the lease released.
//!
//! **Metrics** come from what the runner writes: `/metrics` ([`crate::metrics`]) reads runs by
//! status, counts and Amazon calls from the ledger; each run's end is also a `tracing` event
//! (`action`, `run_id`, `outcome`).

pub mod errors;
mod ledger;
mod service;
pub mod summary;

use std::future::Future;

use bus::{Incoming, Topology};
use chrono::{DateTime, Duration, Utc};
use domain::messages::{Action, Command, CommandParams};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{PgConnection, PgPool};
use store::api_log::Level;
use store::shops::ShopRecord;
use uuid::Uuid;

pub use errors::{JobError, RunnerError};
pub use service::{Build, Deps, Service};

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

/// A service's own part of an action. Handlers are plain async functions over domain types;
/// the runner does the rest (see the module documentation).
pub trait Job: Send + Sync + 'static {
    /// What the plan decided, kept with the run for its continuations.
    type Plan: Serialize + DeserializeOwned + Send + Sync;
    /// Where the run is (e.g. Amazon's next page token), saved between steps.
    type Cursor: Serialize + DeserializeOwned + Default + Send + Sync;
    /// What the run did (`action_runs.counts`).
    type Counts: Serialize + DeserializeOwned + Default + Clone + Send + Sync;

    /// The action: queue, ledger and API-log name.
    const ACTION: Action;
    /// How the run goes on when Amazon asks it to wait.
    const RESUME: Resume;

    /// Plans a new run from the trigger (the shop exists). A [`JobError::Permanent`] refuses
    /// the trigger like [`Planned::Refuse`].
    fn plan(
        &self,
        conn: &mut PgConnection,
        shop: &ShopRecord,
        trigger: &Trigger<'_>,
    ) -> impl Future<Output = Result<Planned<Self::Plan>, JobError>> + Send;

    /// Does one step of the run from `cursor`, adding to `counts`.
    fn step(
        &self,
        run: &RunCtx<'_, Self::Plan>,
        cursor: &mut Self::Cursor,
        counts: &mut Self::Counts,
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
    action: Action,
    holder: &'a str,
    lease_ttl: Duration,
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
        let progress = ledger::progress(self.plan, cursor, 0, counts, amazon_calls, (None, None));
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

/// How a message or a trigger ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome<C> {
    /// Nothing to do: unknown shop (refused), or a continuation not needed.
    Nothing,
    /// The trigger already ran (its run succeeded); `run_id` when a run row was opened.
    Duplicate { run_id: Option<Uuid> },
    /// Another run held the lease, or the plan skipped (e.g. inactive shop).
    Skipped { run_id: Uuid },
    /// The plan refused the trigger.
    Refused { run_id: Uuid },
    /// The run succeeded; `continued_at` when the rest goes on as a fresh trigger.
    Succeeded {
        run_id: Uuid,
        counts: C,
        continued_at: Option<DateTime<Utc>>,
    },
    /// The run waits for its continuation at `at`.
    Waiting {
        run_id: Uuid,
        counts: C,
        at: DateTime<Utc>,
    },
    /// The run failed (recorded in the ledger and the API log).
    Failed {
        run_id: Uuid,
        counts: C,
        error: String,
    },
}

impl<C> RunOutcome<C> {
    /// The run's id, when one was opened.
    pub fn run_id(&self) -> Option<Uuid> {
        match self {
            Self::Nothing => None,
            Self::Duplicate { run_id } => *run_id,
            Self::Skipped { run_id }
            | Self::Refused { run_id }
            | Self::Succeeded { run_id, .. }
            | Self::Waiting { run_id, .. }
            | Self::Failed { run_id, .. } => Some(*run_id),
        }
    }

    /// The run's counts, when it ran.
    pub fn counts(&self) -> Option<&C> {
        match self {
            Self::Succeeded { counts, .. }
            | Self::Waiting { counts, .. }
            | Self::Failed { counts, .. } => Some(counts),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Nothing => "nothing",
            Self::Duplicate { .. } => "duplicate",
            Self::Skipped { .. } => "skipped",
            Self::Refused { .. } => "refused",
            Self::Succeeded { .. } => "succeeded",
            Self::Waiting { .. } => "waiting",
            Self::Failed { .. } => "failed",
        }
    }
}

/// Steps 1–2 for every consumer of an action's queue: decodes the command (contract version,
/// parameters of this action, window limits) and refuses a trigger for an unknown shop once with
/// an API-log error. `None`: the shop is unknown (refused; acknowledge the message). A body that
/// does not decode, or a command of another action, is [`RunnerError::Refused`] (dead-letter).
/// [`Runner::handle`] starts with it; feed-poller, whose unit of work is a feed claim rather
/// than a run, uses it directly.
pub async fn intake(
    pool: &PgPool,
    action: Action,
    msg: &Incoming,
) -> Result<Option<Command>, RunnerError> {
    let body = serde_json::to_vec(&msg.payload).unwrap_or_default();
    let cmd = match Command::decode(&body, Utc::now()) {
        Ok(cmd) => cmd,
        // A window Amazon cannot serve is the plan's to refuse (a `rejected` run with the
        // reason and an API-log error), not a dead letter.
        Err(domain::messages::CommandError::Window(_)) => serde_json::from_slice(&body)
            .map_err(|e| RunnerError::Refused(format!("payload does not decode: {e}")))?,
        Err(e) => {
            return Err(RunnerError::Refused(match e {
                domain::messages::CommandError::Malformed(m) => {
                    format!("payload does not decode: {m}")
                }
                other => other.to_string(),
            }));
        }
    };
    if cmd.action != action {
        return Err(RunnerError::Refused(format!(
            "{} command on the {action} queue",
            cmd.action
        )));
    }
    let mut conn = pool.acquire().await?;
    let known = store::api_log::shop_known_or_refused(
        &mut conn,
        action.as_str(),
        cmd.shop_id,
        cmd.message_id,
    )
    .await?;
    Ok(known.then_some(cmd))
}

/// Runs a [`Job`]: one per service, cheap to share.
pub struct Runner<J: Job> {
    job: J,
    pool: PgPool,
    topology: Topology,
    settings: Settings,
    holder: String,
}

impl<J: Job> Runner<J> {
    /// A runner of `job` over the pool, publishing through the outbox of `topology`.
    pub fn new(job: J, pool: PgPool, topology: Topology, settings: Settings) -> Self {
        Self {
            job,
            pool,
            topology,
            settings,
            holder: format!("{}@{}", J::ACTION, std::process::id()),
        }
    }

    /// The job.
    pub fn job(&self) -> &J {
        &self.job
    }

    /// The runner's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Handles one message of the action's queue (steps 1–8 of the module documentation).
    pub async fn handle(&self, msg: &Incoming) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let Some(cmd) = intake(&self.pool, J::ACTION, msg).await? else {
            return Ok(RunOutcome::Nothing);
        };
        let outcome = match cmd.params {
            CommandParams::Continue { run_id } => self.resume(run_id).await?,
            _ => self.begin(Trigger::of(&cmd), msg.redelivered).await?,
        };
        tracing::info!(action = %J::ACTION, shop_id = %cmd.shop_id, run_id = ?outcome.run_id(), outcome = outcome.name(), "run handled");
        Ok(outcome)
    }
}

/// What the runner decided about a trigger, for a service's report ([`Report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    /// The run's id, when one was opened.
    pub run_id: Option<Uuid>,
    /// Another run held the lease, or the plan skipped: nothing done.
    pub skipped: bool,
    /// The trigger already ran: nothing done.
    pub duplicate: bool,
    /// The work goes on later (a continuation or a fresh trigger is in the outbox).
    pub continuation: bool,
    /// Why the run failed, when it did.
    pub error: Option<String>,
}

/// A service's report of one trigger: its counts with what the runner decided.
pub trait Report: Default {
    /// Records the runner's decision in the report.
    fn decided(&mut self, d: Decided);
}

impl<C: Report> RunOutcome<C> {
    /// The service's report: the run's counts (empty when it did not run) and the decision.
    pub fn into_report(self) -> C {
        let mut d = Decided {
            run_id: self.run_id(),
            ..Decided::default()
        };
        let counts = match self {
            Self::Succeeded {
                counts,
                continued_at,
                ..
            } => {
                d.continuation = continued_at.is_some();
                counts
            }
            Self::Waiting { counts, .. } => {
                d.continuation = true;
                counts
            }
            Self::Failed { counts, error, .. } => {
                d.error = Some(error);
                counts
            }
            Self::Skipped { .. } => {
                d.skipped = true;
                C::default()
            }
            Self::Duplicate { .. } => {
                d.duplicate = true;
                C::default()
            }
            Self::Nothing | Self::Refused { .. } => C::default(),
        };
        let mut report = counts;
        report.decided(d);
        report
    }
}
