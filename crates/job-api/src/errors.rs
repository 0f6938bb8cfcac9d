//! How a run ends when something goes wrong: the error policy of every action.
//!
//! A job's step returns a [`JobError`]; the runner (`runtime::job::Runner`) decides what follows, the
//! same way for every service:
//!
//! * **Amazon throttling** ([`spapi::ErrorClass::Throttled`]): not a failure. The run waits:
//!   a continuation is written to the outbox for the time Amazon's quota allows (never sooner
//!   than the job's `retry_delay`), an API-log warning `throttled` says so, and the message in
//!   hand is acknowledged. Nothing sleeps while holding a message.
//! * **Transient** (network, 5xx, an unknown outcome of `createFeed`/`confirmShipment`:
//!   [`spapi::ErrorClass::Transient`] and [`spapi::ErrorClass::Reconcile`]): retried later with
//!   backoff, through the same continuation: `transient_retry` × 2^(failures in a row − 1).
//!   After `max_transient_failures` in a row the run fails (API-log error `run_failed`).
//! * **Permanent** ([`spapi::ErrorClass::Permanent`], or [`JobError::Permanent`] from the job):
//!   the run ends `failed`, with an API-log error that says what to do; the message is
//!   acknowledged (trying it again cannot help).
//! * **Re-authorization** ([`spapi::ErrorClass::Reauthorize`]): the shop is marked as needing
//!   re-authorization, the run ends `failed` with an API-log `attention` entry telling the
//!   operator to re-authorize the shop in Seller Central. Never retried in a loop.
//! * **Infrastructure** (database, broker: [`JobError::Store`], [`JobError::Db`],
//!   [`JobError::Bus`]): the message is retried by the broker (bounded by the queue's delivery
//!   limit, then dead-lettered). A same-run job's run stays `running` with its cursor, and the
//!   redelivery resumes it once its lease expires; a next-run job's run is closed `failed` (when
//!   the database still answers) and the redelivered trigger starts a new run (the ledger's
//!   duplicate check only skips triggers whose run succeeded).
//! * **Crash simulation** ([`JobError::Abandoned`], test fail points only): the run and its lease
//!   are left as a dead process leaves them; the next run of the shop closes it as abandoned.
//!
//! Where the continuation goes depends on the job ([`crate::Resume`]): jobs with a cursor
//! continue the same run from its cursor (`Continue { run_id }`, the run `waiting` and its lease
//! kept until then); jobs that redo their selection each time end the run `succeeded` with what
//! they did and queue a fresh trigger for the rest.

use bus::HandlerError;
use spapi::ErrorClass;

/// What the policy decides for an SP-API failure ([`Decision::of`]); the one classification
/// the runner and feed-poller's per-feed handling share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Amazon's quota: continue when Amazon allows (no failure counted).
    Wait,
    /// Transient or unknown outcome: try again later with backoff.
    Retry,
    /// The shop's authorization is gone: mark the shop, tell the operator to re-authorize.
    Reauthorize,
    /// Amazon refused for good: stop and say what to do.
    Refuse,
}

impl Decision {
    /// The policy's decision for `e`.
    pub fn of(e: &spapi::Error) -> Self {
        match e.class() {
            ErrorClass::Throttled => Self::Wait,
            ErrorClass::Transient | ErrorClass::Reconcile => Self::Retry,
            ErrorClass::Reauthorize => Self::Reauthorize,
            _ => Self::Refuse,
        }
    }

    /// The API-log code of a failure of class `e.class()`.
    pub fn log_code(e: &spapi::Error) -> &'static str {
        match e.class() {
            ErrorClass::Throttled => "throttled",
            ErrorClass::Transient => "transient",
            ErrorClass::Reconcile => "unknown_outcome",
            ErrorClass::Reauthorize => "reauthorize",
            _ => "api_error",
        }
    }

    /// Whether the work goes on later (a continuation).
    pub fn continues(self) -> bool {
        matches!(self, Self::Wait | Self::Retry)
    }
}

/// Why a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An SP-API call failed; the policy follows its class (see the module documentation).
    #[error("{operation}: {error}")]
    Api {
        /// The operation, as the operator reads it (`createFeed`, `getFeeds (reconciliation)`).
        operation: String,
        /// Amazon's (or the transport's) error.
        error: spapi::Error,
        /// What happens to the work not done, appended to the API-log message (e.g. "the stock
        /// is sent by the next run").
        note: Option<String>,
        /// Details for the API-log entry (e.g. the feed submission).
        details: Option<serde_json::Value>,
    },
    /// The run cannot go on and trying again will not help; `message` says what to do.
    #[error("{message}")]
    Permanent {
        /// API-log code.
        code: &'static str,
        /// What went wrong and what the operator should do.
        message: String,
    },
    /// A test fail point: leave the run and its lease as a crashed process would.
    #[error("fail point: {0}")]
    Abandoned(&'static str),
    /// The store failed (database, decryption, corrupt data).
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The outbox (or another bus operation) failed.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
}

impl JobError {
    /// An SP-API failure of `operation`, with no note.
    pub fn api(operation: impl Into<String>, error: spapi::Error) -> Self {
        Self::Api {
            operation: operation.into(),
            error,
            note: None,
            details: None,
        }
    }

    /// An SP-API failure of `operation`, with what happens to the work not done.
    pub fn api_with(
        operation: impl Into<String>,
        error: spapi::Error,
        note: impl Into<String>,
        details: Option<serde_json::Value>,
    ) -> Self {
        Self::Api {
            operation: operation.into(),
            error,
            note: Some(note.into()),
            details,
        }
    }

    /// Whether this is an infrastructure failure (the message is retried by the broker).
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Db(_) | Self::Bus(_))
    }
}

/// Why the runner could not handle a message. Only infrastructure failures reach the broker
/// (retried); everything else about a run is recorded in the ledger and acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The message can never be handled (does not decode, wrong queue): dead-lettered.
    #[error("{0}")]
    Refused(String),
    /// A job's crash simulation (test fail points): the run was left as a dead process leaves it.
    #[error("fail point: {0}")]
    Abandoned(&'static str),
    /// Database, store or broker: the message is retried.
    #[error(transparent)]
    Infrastructure(JobError),
}

impl From<store::StoreError> for RunnerError {
    fn from(e: store::StoreError) -> Self {
        Self::Infrastructure(e.into())
    }
}

impl From<sqlx::Error> for RunnerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Infrastructure(e.into())
    }
}

impl From<bus::BusError> for RunnerError {
    fn from(e: bus::BusError) -> Self {
        Self::Infrastructure(e.into())
    }
}

impl From<RunnerError> for HandlerError {
    fn from(e: RunnerError) -> Self {
        match e {
            RunnerError::Refused(m) => HandlerError::Reject(m),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}
