//! 実行履歴: the run ledger as the console's runs and shop pages and `ctl runs` show it, and the
//! one-line summary of a run's counts they all print.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{StoreError, runs::Run};

/// Which runs to list. Unset fields do not filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFilter<'a> {
    /// Only runs of these shops (`None`: every shop).
    pub shops: Option<&'a [Uuid]>,
    /// Only this action (e.g. `order-ingest`).
    pub action: Option<&'a str>,
    /// Only this outcome (e.g. `failed`).
    pub status: Option<&'a str>,
    /// At most this many runs (zero or less: 100).
    pub limit: i64,
}

/// Runs, newest first.
pub async fn list(conn: &mut PgConnection, f: &RunFilter<'_>) -> Result<Vec<Run>, StoreError> {
    let limit = if f.limit <= 0 { 100 } else { f.limit };
    Ok(sqlx::query_as!(
        Run,
        r#"SELECT id, shop_id, action, mode, status, command_id, requested_by, window_from, window_to, watermark,
                  cursor, counts, amazon_calls, error, started_at, finished_at
           FROM action_runs
           WHERE ($1::uuid[] IS NULL OR shop_id = ANY($1))
             AND ($2::text IS NULL OR action = $2)
             AND ($3::text IS NULL OR status = $3)
           ORDER BY started_at DESC, id DESC LIMIT $4"#,
        f.shops,
        f.action,
        f.status,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Counts shown first, even when zero: how much a run read.
const FIRST: [&str; 2] = ["pages", "orders"];

/// A run's `counts` on one line, e.g. `pages 3 · orders 12 · new 10 · updated 2`.
///
/// Only top-level numbers: `pages` and `orders` first, then the other non-zero counts in key
/// order. Timings (`*_ms`), flags, ids and nested objects (calls per operation, shown by the
/// run's call count) are left out.
pub fn counts_summary(counts: &serde_json::Value) -> String {
    let Some(map) = counts.as_object() else {
        return String::new();
    };
    let first = FIRST
        .iter()
        .filter_map(|k| map.get(*k).filter(|v| v.is_number()).map(|v| (*k, v)));
    let rest = map.iter().filter(|(k, v)| {
        v.is_number()
            && !FIRST.contains(&k.as_str())
            && !k.ends_with("_ms")
            && v.as_f64() != Some(0.0)
    });
    first
        .chain(rest.map(|(k, v)| (k.as_str(), v)))
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::counts_summary;

    #[test]
    fn pages_and_orders_first_then_non_zero_numbers() {
        let c = json!({"active_ms": 120, "calls": {"getOrders": 2}, "failed": 0, "new": 3,
                       "orders": 4, "pages": 0, "continuations": 1});
        assert_eq!(
            counts_summary(&c),
            "pages 0 · orders 4 · continuations 1 · new 3"
        );
        assert_eq!(counts_summary(&json!(null)), "");
    }

    #[test]
    fn ids_flags_and_timings_are_left_out() {
        let c = json!({"run_id": "0190a3b4-0000-7000-8000-000000000000", "skipped": false,
                       "new": 3, "updated": 0, "calls": {"searchOrders": 2}, "duration_ms": 5,
                       "by_reason": {"changed": 2}, "sent": 2});
        assert_eq!(counts_summary(&c), "new 3 · sent 2");
    }
}
