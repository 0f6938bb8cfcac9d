//! Client-side call counters per operation, for the run ledger (`action_runs.amazon_calls`)
//! and the API log.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Counters of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperationStats {
    /// HTTP requests sent (including retries).
    pub calls: u64,
    /// Responses with status 429.
    pub throttled: u64,
    /// Other error outcomes (non-2xx statuses, transport errors, unreadable bodies).
    pub errors: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// Total time spent waiting in the shared rate limiter.
    pub limiter_wait_ms: u64,
}

/// Snapshot of the counters, keyed by operation name (`searchOrders`, `lwa`,
/// `uploadFeedDocument`, `downloadDocument`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallStats {
    /// Counters per operation.
    pub operations: BTreeMap<String, OperationStats>,
}

impl CallStats {
    /// Requests sent in total.
    pub fn total_calls(&self) -> u64 {
        self.operations.values().map(|s| s.calls).sum()
    }

    /// 429 responses in total.
    pub fn total_throttled(&self) -> u64 {
        self.operations.values().map(|s| s.throttled).sum()
    }

    /// Counters of one operation (zero when it was never called).
    pub fn get(&self, operation: &str) -> OperationStats {
        self.operations.get(operation).cloned().unwrap_or_default()
    }
}

/// Counters of every call this process made, per (seller key, operation), since start-up.
static PROCESS: Mutex<BTreeMap<(String, String), OperationStats>> = Mutex::new(BTreeMap::new());

/// Counters of every SP-API call of this process (all clients and shops), keyed by
/// (seller key, operation), since start-up: what a service's `/metrics` exposes.
pub fn process_stats() -> BTreeMap<(String, String), OperationStats> {
    PROCESS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn with_process<F: FnOnce(&mut OperationStats)>(seller: &str, operation: &str, f: F) {
    let mut guard = PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    f(guard
        .entry((seller.to_owned(), operation.to_owned()))
        .or_default());
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<CallStats>,
}

#[derive(Clone, Copy)]
pub(crate) enum Outcome {
    Ok,
    Throttled,
    Error,
}

impl StatsRecorder {
    fn with<F: FnOnce(&mut OperationStats)>(&self, operation: &str, f: F) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.operations.entry(operation.to_owned()).or_default());
    }

    pub(crate) fn record_call(&self, operation: &str, retry: bool, outcome: Outcome) {
        self.with(operation, |s| count_call(s, retry, outcome));
    }

    pub(crate) fn record_wait(&self, operation: &str, waited: Duration) {
        if !waited.is_zero() {
            self.with(operation, |s| {
                s.limiter_wait_ms += waited.as_millis() as u64
            });
        }
    }

    /// Adds a call to the process-wide counters ([`process_stats`]).
    pub(crate) fn record_process_call(
        seller: &str,
        operation: &str,
        retry: bool,
        outcome: Outcome,
    ) {
        with_process(seller, operation, |s| count_call(s, retry, outcome));
    }

    /// Adds limiter wait to the process-wide counters ([`process_stats`]).
    pub(crate) fn record_process_wait(seller: &str, operation: &str, waited: Duration) {
        if !waited.is_zero() {
            with_process(seller, operation, |s| {
                s.limiter_wait_ms += waited.as_millis() as u64
            });
        }
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn take(&self) -> CallStats {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn count_call(s: &mut OperationStats, retry: bool, outcome: Outcome) {
    s.calls += 1;
    if retry {
        s.retries += 1;
    }
    match outcome {
        Outcome::Ok => {}
        Outcome::Throttled => s.throttled += 1,
        Outcome::Error => s.errors += 1,
    }
}
