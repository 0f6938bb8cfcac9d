//! Ledger counts of an order import (`action_runs.counts`).

use serde::{Deserialize, Serialize};

use store::runs::Tally;

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
    /// Amazon calls, continuations and timing.
    #[serde(flatten)]
    pub tally: Tally,
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
}
