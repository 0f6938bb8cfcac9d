//! The API-log summary of a paging run (order-ingest, status-sync): the same tail and level
//! rule for every job that counts Amazon calls by operation.

use std::collections::BTreeMap;

use serde::Serialize;
use store::api_log::Level;

use super::Summary;

/// "`N` Amazon call(s) (op n, …); `K` continuation(s); `S` s": the end of a summary line.
pub fn calls_and_time(
    calls: &BTreeMap<String, u32>,
    continuations: u32,
    duration_ms: Option<i64>,
) -> String {
    let total: u32 = calls.values().sum();
    let by_operation: Vec<String> = calls.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "{total} Amazon call(s) ({}); {continuations} continuation(s); {:.1} s",
        by_operation.join(", "),
        duration_ms.unwrap_or_default() as f64 / 1000.0
    )
}

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
