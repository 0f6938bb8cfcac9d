//! Crash hooks for fault-injection tests (never armed in production).

use std::sync::atomic::{AtomicBool, Ordering};

use job_api::JobError;

/// Environment variable that arms a fail point in the service binary (fault-injection tests
/// only): `crash_after_create_feed` or `crash_after_confirm`. The process then aborts at that
/// point, as if it were killed.
pub const FAIL_POINT_ENV: &str = "SHIPMENT_FEEDBACK_FAIL_POINT";

/// Test hooks that simulate a crash at a precise point (never set in production).
#[derive(Debug, Default)]
pub struct FailPoints {
    /// Stop right after Amazon accepted `createFeed`, before recording it (as if the process
    /// died): the submission stays `in_flight`.
    pub crash_after_create_feed: AtomicBool,
    /// Same for `confirmShipment`.
    pub crash_after_confirm: AtomicBool,
    /// Abort the process at an armed fail point instead of returning an error.
    pub abort_process: AtomicBool,
}

impl FailPoints {
    /// Fail points armed by [`FAIL_POINT_ENV`] (they abort the process).
    pub fn from_env() -> Self {
        let f = Self::default();
        match std::env::var(FAIL_POINT_ENV).as_deref() {
            Ok("crash_after_create_feed") => {
                f.crash_after_create_feed.store(true, Ordering::SeqCst)
            }
            Ok("crash_after_confirm") => f.crash_after_confirm.store(true, Ordering::SeqCst),
            _ => return f,
        }
        tracing::warn!("{FAIL_POINT_ENV} is set: this process will abort at the fail point");
        f.abort_process.store(true, Ordering::SeqCst);
        f
    }

    /// Whether the point is armed.
    pub(crate) fn armed(flag: &AtomicBool) -> bool {
        flag.load(Ordering::SeqCst)
    }

    /// The crash at `point`: aborts the process, or leaves the run as a dead process would.
    pub(crate) fn hit(&self, point: &'static str) -> JobError {
        if self.abort_process.load(Ordering::SeqCst) {
            eprintln!("fail point {point}: aborting the process");
            std::process::abort();
        }
        JobError::Abandoned(point)
    }
}
