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

mod ledger;
mod service;

use bus::{Incoming, Topology};
use chrono::{DateTime, Utc};
use domain::messages::{Action, Command, CommandParams};
use sqlx::PgPool;
use uuid::Uuid;

pub use job_api::{
    Build, Deps, Job, JobError, Planned, Planning, Resume, RunCtx, RunnerError, Running, Settings,
    Step, Summary, Trigger, errors, summary,
};
pub use service::Service;

/// Set when the process was asked to stop (SIGTERM, see [`crate::run`]).
static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The process is stopping: a run that pages ([`Resume::SameRun`]) stops after the step in hand,
/// saves its cursor and goes `waiting` with a continuation due now, which the next process
/// consuming the queue (the restarted pod, another replica) claims and goes on with. So a
/// rolling deploy neither waits out a long import nor loses it. [`crate::run`] calls this on
/// SIGTERM; tests call it to stand for one.
pub fn request_shutdown() {
    SHUTDOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn shutdown_requested() -> bool {
    SHUTDOWN.load(std::sync::atomic::Ordering::SeqCst)
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
