//! The API-log summary of a run: one `run_summary` entry with the counts as details (the tail
//! of a paging run's line is its [`store::runs::Tally`]).

use serde::Serialize;
use store::api_log::Level;

use crate::Summary;

/// A `run_summary` entry with the counts as details: a warning when `warn` (something needs a
/// look), else info.
pub fn run_summary<C: Serialize>(message: String, warn: bool, counts: &C) -> Summary {
    Summary {
        level: if warn { Level::Warning } else { Level::Info },
        code: "run_summary",
        message,
        details: serde_json::to_value(counts).ok(),
    }
}
