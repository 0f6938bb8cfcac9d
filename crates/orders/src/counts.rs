//! Ledger counts of an order import (`action_runs.counts`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::upsert::Outcome;

/// Ledger counts of an order import run (`action_runs.counts`): what its pages did, its
/// Amazon calls and its timing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Pages of `searchOrders` imported.
    pub pages: u32,
    /// Orders seen (imported, unchanged or refused).
    pub orders: u32,
    /// Orders imported as new instructions.
    pub new: u32,
    /// Known instructions changed.
    pub updated: u32,
    /// Known instructions left as they were.
    pub unchanged: u32,
    /// Orders that could not be imported (listed in the API log).
    pub failed: u32,
    /// Lines imported without a product (listed in the API log).
    pub unmapped_lines: u32,
    /// Amazon calls by operation.
    pub calls: BTreeMap<String, u32>,
    /// Times the run stored its cursor and scheduled its own continuation.
    pub continuations: u32,
    /// Wall-clock time from start to finish (waiting included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Time spent working (calls and upserts, waiting excluded).
    pub active_ms: i64,
}

impl Counts {
    /// Counts what an upsert did with one order.
    pub fn add(&mut self, o: &Outcome) {
        self.orders += 1;
        match o {
            Outcome::New { unmapped_skus, .. } => {
                self.new += 1;
                self.unmapped_lines += unmapped_skus.len() as u32;
            }
            Outcome::Updated { unmapped_skus, .. } => {
                self.updated += 1;
                self.unmapped_lines += unmapped_skus.len() as u32;
            }
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    /// Counts one call of `operation`.
    pub fn call(&mut self, operation: &str) {
        *self.calls.entry(operation.into()).or_default() += 1;
    }

    /// All Amazon calls of the run.
    pub fn total_calls(&self) -> i32 {
        self.calls.values().map(|c| *c as i32).sum()
    }
}
