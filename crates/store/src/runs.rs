//! The run ledger (action_runs) and the per-(shop, action) lease that keeps one run at a time.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

/// What every paging run counts besides its own figures (flattened into its
/// `action_runs.counts`): Amazon calls by operation, continuations, wall-clock and active time.
/// Its [`Display`](std::fmt::Display) is the tail of the run's summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Amazon calls by operation.
    #[serde(default)]
    pub calls: std::collections::BTreeMap<String, u32>,
    /// Times the run stored its cursor and scheduled its own continuation.
    #[serde(default)]
    pub continuations: u32,
    /// Wall-clock time from start to finish (waiting included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Time spent working (calls and writes, waiting excluded).
    #[serde(default)]
    pub active_ms: i64,
}

impl Tally {
    /// Counts one call of `operation`.
    pub fn call(&mut self, operation: &str) {
        *self.calls.entry(operation.into()).or_default() += 1;
    }

    /// All Amazon calls of the run.
    pub fn total_calls(&self) -> i32 {
        self.calls.values().map(|c| *c as i32).sum()
    }
}

impl std::fmt::Display for Tally {
    /// "`N` Amazon call(s) (op n, …); `K` continuation(s); `S` s".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_operation: Vec<String> =
            self.calls.iter().map(|(k, v)| format!("{k} {v}")).collect();
        write!(
            f,
            "{} Amazon call(s) ({}); {} continuation(s); {:.1} s",
            self.total_calls(),
            by_operation.join(", "),
            self.continuations,
            self.duration_ms.unwrap_or_default() as f64 / 1000.0
        )
    }
}

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Stored its cursor and scheduled a continuation (e.g. Amazon's quota).
    Waiting,
    Succeeded,
    Failed,
    /// Another run for the same shop and action was active.
    Skipped,
    /// The trigger was invalid; nothing changed.
    Rejected,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Rejected => "rejected",
        }
    }
}

/// A ledger row.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub action: String,
    pub mode: Option<String>,
    pub status: String,
    pub command_id: Option<Uuid>,
    pub requested_by: Option<String>,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub watermark: Option<DateTime<Utc>>,
    pub cursor: Option<serde_json::Value>,
    pub counts: serde_json::Value,
    pub amazon_calls: i32,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Fields of a new run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub shop_id: Uuid,
    pub action: &'a str,
    pub mode: Option<&'a str>,
    pub status: RunStatus,
    pub command_id: Option<Uuid>,
    pub requested_by: Option<&'a str>,
}

/// Inserts a ledger row and returns its id.
pub async fn insert(conn: &mut PgConnection, r: &NewRun<'_>) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let finished = !matches!(r.status, RunStatus::Running | RunStatus::Waiting);
    sqlx::query!(
        r#"INSERT INTO action_runs (id, shop_id, action, mode, status, command_id, requested_by, finished_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END)"#,
        id,
        r.shop_id,
        r.action,
        r.mode,
        r.status.as_str(),
        r.command_id,
        r.requested_by,
        finished
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// A run by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Run, StoreError> {
    sqlx::query_as!(
        Run,
        r#"SELECT id, shop_id, action, mode, status, command_id, requested_by, window_from, window_to, watermark,
                  cursor, counts, amazon_calls, error, started_at, finished_at
           FROM action_runs WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .found("run", id)
}

/// Recent runs, newest first (the console and `ctl` filter more: [`crate::read::runs::list`]).
pub async fn recent(
    conn: &mut PgConnection,
    shop_id: Option<Uuid>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<Run>, StoreError> {
    let shop = shop_id.map(|id| [id]);
    crate::read::runs::list(
        conn,
        &crate::read::runs::RunFilter {
            shops: shop.as_ref().map(|s| s.as_slice()),
            action,
            status: None,
            limit,
        },
    )
    .await
}

/// Progress of a running run: window, cursor, counts and calls so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub cursor: Option<serde_json::Value>,
    pub counts: serde_json::Value,
    pub amazon_calls: i32,
}

/// Saves progress and sets the status (running or waiting). A run already finished is left
/// alone, so a late progress write can never reopen it.
pub async fn save_progress(
    conn: &mut PgConnection,
    id: Uuid,
    status: RunStatus,
    p: &Progress,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE action_runs SET status = $2, window_from = COALESCE($3, window_from), window_to = COALESCE($4, window_to),
                  cursor = $5, counts = $6, amazon_calls = $7
           WHERE id = $1 AND finished_at IS NULL"#,
        id,
        status.as_str(),
        p.window_from,
        p.window_to,
        p.cursor,
        p.counts,
        p.amazon_calls
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Finishes a run. A watermark is only ever moved forward by the caller's next plan.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: RunStatus,
    watermark: Option<DateTime<Utc>>,
    counts: &serde_json::Value,
    amazon_calls: i32,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE action_runs SET status = $2, watermark = $3, counts = $4, amazon_calls = $5, error = $6,
                  cursor = NULL, finished_at = now()
           WHERE id = $1"#,
        id,
        status.as_str(),
        watermark,
        counts,
        amazon_calls,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a trigger refused before any work (wrong parameters, an impossible window): a run
/// `rejected` with `message`, and an API-log error `invalid_trigger` carrying `details`.
/// Returns the run's id.
pub async fn reject(
    conn: &mut PgConnection,
    run: &NewRun<'_>,
    message: &str,
    details: Option<serde_json::Value>,
) -> Result<Uuid, StoreError> {
    let run_id = insert(
        &mut *conn,
        &NewRun {
            status: RunStatus::Rejected,
            ..run.clone()
        },
    )
    .await?;
    let empty = serde_json::json!({});
    finish(
        &mut *conn,
        run_id,
        RunStatus::Rejected,
        None,
        &empty,
        0,
        Some(message),
    )
    .await?;
    let level = crate::api_log::Level::Error;
    log_run(
        conn,
        run_id,
        run.shop_id,
        run.action,
        level,
        "invalid_trigger",
        message,
        details,
    )
    .await?;
    tracing::warn!(%run_id, action = run.action, %message, "trigger rejected");
    Ok(run_id)
}

/// Ends `run_id` as `skipped` (another run of the shop holds the lease) with an API-log info
/// entry `skipped` saying so.
pub async fn skip(
    conn: &mut PgConnection,
    run_id: Uuid,
    shop_id: Uuid,
    action: &str,
    message: &str,
) -> Result<(), StoreError> {
    let empty = serde_json::json!({});
    finish(
        &mut *conn,
        run_id,
        RunStatus::Skipped,
        None,
        &empty,
        0,
        Some(message),
    )
    .await?;
    let level = crate::api_log::Level::Info;
    log_run(
        conn, run_id, shop_id, action, level, "skipped", message, None,
    )
    .await
}

/// The API-log entry of a run that ended before any work.
#[allow(clippy::too_many_arguments)]
async fn log_run(
    conn: &mut PgConnection,
    run_id: Uuid,
    shop_id: Uuid,
    action: &str,
    level: crate::api_log::Level,
    code: &str,
    message: &str,
    details: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    crate::api_log::write(
        conn,
        &crate::api_log::Entry {
            run_id: Some(run_id),
            code: Some(code),
            details,
            ..crate::api_log::Entry::new(Some(shop_id), action, level, message)
        },
    )
    .await?;
    Ok(())
}

/// What [`lease_new_run`] decided for a new run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewRunLease {
    /// The run holds the (shop, action) lease: go on.
    Leased,
    /// Another live run holds the lease: the new run ended `skipped` ("another run is active").
    Busy,
    /// A run for the same trigger (`command_id`) already succeeded: the new run ended `skipped`
    /// as a duplicate and the lease was given back.
    Duplicate,
}

/// Takes the (shop, action) lease for the new run `run_id` of an action that finishes within one
/// message (no continuations). When another live run holds the lease, `run_id` ends `skipped`
/// ("another run is active") with `counts`. Once the lease is taken, a run of the same trigger
/// `command_id` that already succeeded makes this one a duplicate (checked under the lease, so
/// copies of one trigger handled one after another, or at once, run the action once). Other
/// runs of the same (shop, action) still marked `running` belong to a process that died
/// (their lease is gone): they are closed as `failed` ("abandoned") so the ledger does not show
/// them running for ever.
#[allow(clippy::too_many_arguments)]
pub async fn lease_new_run(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: &str,
    run_id: Uuid,
    command_id: Option<Uuid>,
    holder: &str,
    ttl: Duration,
    counts: &serde_json::Value,
) -> Result<NewRunLease, StoreError> {
    if !try_lease(&mut *conn, shop_id, action, run_id, holder, ttl).await? {
        finish(
            conn,
            run_id,
            RunStatus::Skipped,
            None,
            counts,
            0,
            Some("another run is active"),
        )
        .await?;
        return Ok(NewRunLease::Busy);
    }
    if let Some(command_id) = command_id
        && command_succeeded(&mut *conn, command_id, action).await?
    {
        finish(
            &mut *conn,
            run_id,
            RunStatus::Skipped,
            None,
            counts,
            0,
            Some("duplicate: a run for this trigger already succeeded"),
        )
        .await?;
        release_lease(conn, shop_id, action, run_id).await?;
        return Ok(NewRunLease::Duplicate);
    }
    let abandoned = sqlx::query!(
        r#"UPDATE action_runs
              SET status = 'failed', finished_at = now(), cursor = NULL,
                  error = 'abandoned: the process running it stopped before it finished; a later run took over'
            WHERE shop_id = $1 AND action = $2 AND id <> $3 AND status = 'running'"#,
        shop_id,
        action,
        run_id
    )
    .execute(conn)
    .await?
    .rows_affected();
    if abandoned > 0 {
        tracing::warn!(%shop_id, action, abandoned, "runs of a dead process closed as failed");
    }
    Ok(NewRunLease::Leased)
}

/// Whether a run of `action` for this trigger already succeeded (a redelivered or duplicated
/// trigger is acknowledged without running again).
pub async fn command_succeeded(
    conn: &mut PgConnection,
    command_id: Uuid,
    action: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM action_runs WHERE command_id = $1 AND action = $2 AND status = 'succeeded') AS "e!""#,
        command_id,
        action
    )
    .fetch_one(conn)
    .await?)
}

/// The first run `action` started for the trigger `command_id`: its id and status (a
/// redelivered trigger finds the run it started before).
pub async fn for_command(
    conn: &mut PgConnection,
    command_id: Uuid,
    action: &str,
) -> Result<Option<(Uuid, String)>, StoreError> {
    Ok(sqlx::query!(
        "SELECT id, status FROM action_runs WHERE command_id = $1 AND action = $2 ORDER BY started_at LIMIT 1",
        command_id,
        action
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.status)))
}

/// The watermark of the latest successful run of `action` for the shop (and optional mode).
pub async fn last_watermark(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: &str,
    mode: Option<&str>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT max(watermark) FROM action_runs
           WHERE shop_id = $1 AND action = $2 AND status = 'succeeded' AND ($3::text IS NULL OR mode = $3)"#,
        shop_id,
        action,
        mode
    )
    .fetch_one(conn)
    .await?)
}

/// Takes the (shop, action) lease for `run_id` if it is free or expired. Returns false when
/// another live run holds it.
pub async fn try_lease(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: &str,
    run_id: Uuid,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let expires = Utc::now() + ttl;
    let got = sqlx::query_scalar!(
        r#"INSERT INTO action_leases (shop_id, action, run_id, holder, expires_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (shop_id, action) DO UPDATE
              SET run_id = EXCLUDED.run_id, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
              WHERE action_leases.expires_at < now() OR action_leases.run_id = EXCLUDED.run_id
           RETURNING run_id"#,
        shop_id,
        action,
        run_id,
        holder,
        expires
    )
    .fetch_optional(conn)
    .await?;
    Ok(got.is_some())
}

/// Releases the lease if `run_id` still holds it.
pub async fn release_lease(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: &str,
    run_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM action_leases WHERE shop_id = $1 AND action = $2 AND run_id = $3",
        shop_id,
        action,
        run_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a leased run of an action that finishes within one message: `succeeded`, or `failed`
/// with `error`, then gives the (shop, action) lease back.
pub async fn close_leased(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: &str,
    run_id: Uuid,
    counts: &serde_json::Value,
    amazon_calls: i32,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let status = match error {
        None => RunStatus::Succeeded,
        Some(_) => RunStatus::Failed,
    };
    finish(
        &mut *conn,
        run_id,
        status,
        None,
        counts,
        amazon_calls,
        error,
    )
    .await?;
    release_lease(conn, shop_id, action, run_id).await
}

/// What to do with a `Continue` message (see [`claim_continuation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// The caller now holds the run and its lease: execute it from its cursor.
    Run,
    /// Nothing to do: unknown run, finished run, or a duplicate of a claim that succeeded.
    Done,
    /// The run is `running` under a live lease of its own (the process that claimed it may have
    /// died): try again at `at`, when that lease expires.
    RetryAt { at: DateTime<Utc>, shop_id: Uuid },
}

/// Claims a continuation of a run that stored its cursor and went `waiting` (e.g. for Amazon's
/// quota): moves it back to `running` and takes the (shop, action) lease for it.
///
/// A continuation redelivered after its process died finds the run `running`: while the dead
/// holder's lease is live the answer is [`Continuation::RetryAt`] its expiry; once it has
/// expired the run is taken over and resumed from its cursor. If another run holds the lease,
/// this run is finished as failed. Concurrent deliveries serialize on the lease row.
pub async fn claim_continuation(
    conn: &mut PgConnection,
    run_id: Uuid,
    action: &str,
    holder: &str,
    lease_ttl: Duration,
) -> Result<Continuation, StoreError> {
    let run = match get(conn, run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => {
            tracing::warn!(%run_id, "continuation of an unknown run ignored");
            return Ok(Continuation::Done);
        }
        Err(e) => return Err(e),
    };
    match run.status.as_str() {
        "waiting" => {
            let claimed = sqlx::query!(
                "UPDATE action_runs SET status = 'running' WHERE id = $1 AND status = 'waiting'",
                run_id
            )
            .execute(&mut *conn)
            .await?;
            if claimed.rows_affected() == 0 {
                tracing::info!(%run_id, "continuation not needed (duplicate)");
                return Ok(Continuation::Done);
            }
        }
        "running" => {
            let lease = sqlx::query!(
                "SELECT run_id, expires_at FROM action_leases WHERE shop_id = $1 AND action = $2 FOR UPDATE",
                run.shop_id,
                action
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(l) = lease
                && l.run_id == run_id
                && l.expires_at > Utc::now()
            {
                tracing::info!(%run_id, until = %l.expires_at, "run is running under its lease: continuation retried when it expires");
                return Ok(Continuation::RetryAt {
                    at: l.expires_at,
                    shop_id: run.shop_id,
                });
            }
            tracing::warn!(%run_id, "run left running by a dead process: taking it over");
        }
        _ => {
            tracing::info!(%run_id, status = run.status, "continuation not needed (run finished)");
            return Ok(Continuation::Done);
        }
    }
    if !try_lease(conn, run.shop_id, action, run_id, holder, lease_ttl).await? {
        let message = "failed: the run's lease was taken by another run while it waited";
        finish(
            conn,
            run_id,
            RunStatus::Failed,
            None,
            &run.counts,
            run.amazon_calls,
            Some(message),
        )
        .await?;
        return Ok(Continuation::Done);
    }
    Ok(Continuation::Run)
}
