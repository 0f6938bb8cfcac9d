//! 自動実行 (schedules): when each action runs for each shop (cron expressions read in the shop's
//! time zone, `domain::schedule`), changed by operators (`ctl schedule`, the console) with their
//! name on the row and in the API log, and claimed slot by slot by the one scheduler
//! ([`claim_due`], `ctl scheduler tick`).

use chrono::{DateTime, Duration, Utc};
use domain::{
    messages::Action,
    schedule::{self, Cadence, DEFAULTS, Due},
};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    StoreError,
    api_log::{self, Entry, Level},
};

/// API-log code of an operator's change to a schedule.
pub const CHANGED_CODE: &str = "schedule_changed";
/// `updated_by` of the entries a new shop starts with.
pub const DEFAULTS_BY: &str = "defaults";
/// API-log code of a slot the scheduler passed over (more than the allowed lateness old).
pub const MISSED_CODE: &str = "schedule_missed";

/// One entry of a shop's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub shop_id: Uuid,
    pub action: Action,
    /// `default`, or another name when an action runs on more than one cadence (`end-of-day`).
    pub entry: String,
    /// Five-field cron expression, read in the shop's time zone.
    pub cron: String,
    pub enabled: bool,
    /// The latest slot the scheduler has dealt with (fired or passed over).
    pub last_slot: DateTime<Utc>,
    /// The latest slot a trigger was published for.
    pub last_fired_slot: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    /// The next slot after `now` in `tz`; `None` when the entry is disabled.
    pub fn next_run(&self, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        let cadence: Cadence = self.cron.parse().ok()?;
        cadence.next_after(now.max(self.last_slot), tz)
    }
}

struct Row {
    shop_id: Uuid,
    action: String,
    entry: String,
    cron: String,
    enabled: bool,
    last_slot: DateTime<Utc>,
    last_fired_slot: Option<DateTime<Utc>>,
    last_fired_at: Option<DateTime<Utc>>,
    updated_by: String,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Schedule {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Schedule {
            action: r
                .action
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("schedule of shop {}: {e}", r.shop_id)))?,
            shop_id: r.shop_id,
            entry: r.entry,
            cron: r.cron,
            enabled: r.enabled,
            last_slot: r.last_slot,
            last_fired_slot: r.last_fired_slot,
            last_fired_at: r.last_fired_at,
            updated_by: r.updated_by,
            updated_at: r.updated_at,
        })
    }
}

/// The entries of `shop_ids`, by shop, then in the order of the actions (`Action::ALL`), then
/// by entry name (`default` first).
pub async fn list(conn: &mut PgConnection, shop_ids: &[Uuid]) -> Result<Vec<Schedule>, StoreError> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT sc.shop_id, sc.action, sc.entry, sc.cron, sc.enabled, sc.last_slot, sc.last_fired_slot,
                  sc.last_fired_at, sc.updated_by, sc.updated_at
           FROM schedules sc JOIN shops s ON s.id = sc.shop_id
           WHERE sc.shop_id = ANY($1)
           ORDER BY s.code,
                    array_position(ARRAY['order-ingest', 'status-sync', 'shipment-feedback', 'inventory-sync', 'feed-poller'], sc.action),
                    sc.entry <> 'default', sc.entry"#,
        shop_ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Gives a shop the default entries ([`DEFAULTS`]) it does not have yet, recorded as changed by
/// `by`. Returns how many were created.
pub async fn create_defaults(
    conn: &mut PgConnection,
    shop_id: Uuid,
    by: &str,
) -> Result<u64, StoreError> {
    let actions: Vec<String> = DEFAULTS
        .iter()
        .map(|d| d.action.as_str().to_owned())
        .collect();
    let entries: Vec<String> = DEFAULTS.iter().map(|d| d.entry.to_owned()).collect();
    let crons: Vec<String> = DEFAULTS.iter().map(|d| d.cron.to_owned()).collect();
    Ok(sqlx::query!(
        r#"INSERT INTO schedules (shop_id, action, entry, cron, updated_by)
           SELECT $1, d.action, d.entry, d.cron, $5
           FROM UNNEST($2::text[], $3::text[], $4::text[]) AS d (action, entry, cron)
           ON CONFLICT DO NOTHING"#,
        shop_id,
        &actions,
        &entries,
        &crons,
        by
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// What [`set_cron`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new entry (enabled).
    Created,
    /// The cadence changed from this one.
    Updated { previous: String },
    /// The entry already had this cadence; nothing was written.
    Unchanged,
}

/// Sets the cadence of a shop's entry, creating the entry (enabled) when the shop has none of
/// that action and name. A new or changed entry starts with its next slot (slots up to now are
/// not fired). The operator's name goes on the row and, with the old and new cadence, into an
/// API-log entry, in one transaction.
pub async fn set_cron(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: Action,
    entry: &str,
    cadence: &Cadence,
    operator: &str,
) -> Result<Change, StoreError> {
    schedule::entry_name(entry).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let current = sqlx::query_scalar!(
        "SELECT cron FROM schedules WHERE shop_id = $1 AND action = $2 AND entry = $3 FOR UPDATE",
        shop_id,
        action.as_str(),
        entry
    )
    .fetch_optional(&mut *tx)
    .await?;
    let change = match current {
        Some(c) if c == cadence.as_str() => return Ok(Change::Unchanged),
        Some(previous) => {
            sqlx::query!(
                r#"UPDATE schedules SET cron = $4, last_slot = now(), updated_by = $5, updated_at = now()
                   WHERE shop_id = $1 AND action = $2 AND entry = $3"#,
                shop_id,
                action.as_str(),
                entry,
                cadence.as_str(),
                operator
            )
            .execute(&mut *tx)
            .await?;
            Change::Updated { previous }
        }
        None => {
            sqlx::query!(
                r#"INSERT INTO schedules (shop_id, action, entry, cron, updated_by) VALUES ($1, $2, $3, $4, $5)"#,
                shop_id,
                action.as_str(),
                entry,
                cadence.as_str(),
                operator
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| crate::map_unique(e, "schedule", entry))?;
            Change::Created
        }
    };
    let (message, previous) = match &change {
        Change::Updated { previous } => (
            format!(
                "operator {operator} changed the schedule of {action} ({entry}) from \"{previous}\" to \"{cadence}\""
            ),
            Some(previous.as_str()),
        ),
        _ => (
            format!("operator {operator} added the schedule \"{cadence}\" for {action} ({entry})"),
            None,
        ),
    };
    log_change(
        &mut tx,
        shop_id,
        action,
        &message,
        json!({"operator": operator, "entry": entry, "cron": cadence.as_str(), "previous": previous}),
    )
    .await?;
    tx.commit().await?;
    Ok(change)
}

/// Enables or disables a shop's entries: one (`action` and `entry`), all of an action (`entry`
/// `None`), or all of the shop (both `None`). A re-enabled entry starts with its next slot (slots
/// missed while it was disabled are not fired). Returns the entries that changed, each recorded
/// with the operator's name on the row and in the API log, in one transaction;
/// [`StoreError::NotFound`] when nothing matches.
pub async fn set_enabled(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: Option<Action>,
    entry: Option<&str>,
    enabled: bool,
    operator: &str,
) -> Result<Vec<(Action, String)>, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let action_s = action.map(Action::as_str);
    let matching = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM schedules
           WHERE shop_id = $1 AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR entry = $3)"#,
        shop_id,
        action_s,
        entry
    )
    .fetch_one(&mut *tx)
    .await?;
    if matching == 0 {
        return Err(StoreError::NotFound {
            what: "schedule",
            key: format!(
                "{} ({})",
                action_s.unwrap_or("any action"),
                entry.unwrap_or("any entry")
            ),
        });
    }
    let rows = sqlx::query!(
        r#"UPDATE schedules
              SET enabled = $4, last_slot = CASE WHEN $4 THEN greatest(last_slot, now()) ELSE last_slot END,
                  updated_by = $5, updated_at = now()
           WHERE shop_id = $1 AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR entry = $3)
             AND enabled <> $4
           RETURNING action, entry, cron"#,
        shop_id,
        action_s,
        entry,
        enabled,
        operator
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = Vec::with_capacity(rows.len());
    for r in rows {
        let a: Action = r
            .action
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("schedule of shop {shop_id}: {e}")))?;
        let message = format!(
            "operator {operator} {} the schedule of {a} ({}, \"{}\")",
            if enabled { "enabled" } else { "disabled" },
            r.entry,
            r.cron
        );
        log_change(
            &mut tx,
            shop_id,
            a,
            &message,
            json!({"operator": operator, "entry": r.entry, "cron": r.cron, "enabled": enabled}),
        )
        .await?;
        changed.push((a, r.entry));
    }
    tx.commit().await?;
    Ok(changed)
}

/// Removes one entry of a shop, recorded with the operator's name in the API log;
/// [`StoreError::NotFound`] when the shop has no such entry.
pub async fn remove(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: Action,
    entry: &str,
    operator: &str,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let cron = sqlx::query_scalar!(
        "DELETE FROM schedules WHERE shop_id = $1 AND action = $2 AND entry = $3 RETURNING cron",
        shop_id,
        action.as_str(),
        entry
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "schedule",
        key: format!("{action} ({entry})"),
    })?;
    log_change(
        &mut tx,
        shop_id,
        action,
        &format!("operator {operator} removed the schedule of {action} ({entry}, \"{cron}\")"),
        json!({"operator": operator, "entry": entry, "cron": cron, "removed": true}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn log_change(
    conn: &mut PgConnection,
    shop_id: Uuid,
    action: Action,
    message: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    api_log::write(
        conn,
        &Entry {
            code: Some(CHANGED_CODE),
            details: Some(details),
            ..Entry::new(Some(shop_id), action.as_str(), Level::Info, message)
        },
    )
    .await?;
    Ok(())
}

/// A slot the scheduler claimed ([`claim_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub shop_id: Uuid,
    pub shop_code: String,
    pub action: Action,
    pub entry: String,
    /// Fire (publish a trigger for the slot) or passed over (too late; logged).
    pub due: Due,
}

struct DueRow {
    shop_id: Uuid,
    code: String,
    time_zone: String,
    action: String,
    entry: String,
    cron: String,
    last_slot: DateTime<Utc>,
}

/// Claims the slots due at `now`: for every enabled entry of every active shop whose latest slot
/// at or before `now` is later than the slot it last dealt with (`domain::schedule::due`), records
/// that slot and returns it. Missed slots before it are not returned (one fire, not a burst); a
/// latest slot more than `max_late` old is recorded as passed over ([`Due::Missed`], with a
/// warning in the API log) instead of fired.
///
/// Each claim is an `UPDATE … WHERE last_slot < slot`, so of two schedulers claiming at once only
/// one gets a slot: call it in a transaction and write the triggers of the [`Due::Fire`] claims
/// in the same transaction (the other scheduler waits on the rows until it commits, then finds
/// them claimed). An entry whose cadence or enabled flag changed meanwhile is not claimed.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    max_late: Duration,
) -> Result<Vec<Claim>, StoreError> {
    let rows = sqlx::query_as!(
        DueRow,
        r#"SELECT sc.shop_id, s.code, s.time_zone, sc.action, sc.entry, sc.cron, sc.last_slot
           FROM schedules sc JOIN shops s ON s.id = sc.shop_id
           WHERE sc.enabled AND s.active
           ORDER BY sc.shop_id, sc.action, sc.entry"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut claims = Vec::new();
    for r in rows {
        let (Ok(tz), Ok(cadence), Ok(action)) = (
            r.time_zone.parse::<chrono_tz::Tz>(),
            r.cron.parse::<Cadence>(),
            r.action.parse::<Action>(),
        ) else {
            tracing::warn!(shop = %r.code, action = %r.action, entry = %r.entry, cron = %r.cron,
                time_zone = %r.time_zone, "schedule entry cannot be evaluated; skipped");
            continue;
        };
        let Some(due) = schedule::due(&cadence, tz, r.last_slot, now, max_late) else {
            continue;
        };
        let fire = matches!(due, Due::Fire(_));
        let claimed = sqlx::query_scalar!(
            r#"UPDATE schedules
                  SET last_slot = $4,
                      last_fired_slot = CASE WHEN $5 THEN $4 ELSE last_fired_slot END,
                      last_fired_at = CASE WHEN $5 THEN $6 ELSE last_fired_at END
               WHERE shop_id = $1 AND action = $2 AND entry = $3 AND cron = $7 AND enabled
                 AND last_slot < $4
               RETURNING true AS "claimed!""#,
            r.shop_id,
            r.action,
            r.entry,
            due.slot(),
            fire,
            now,
            r.cron
        )
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
        if !claimed {
            continue;
        }
        if let Due::Missed(slot) = due {
            let message = format!(
                "the scheduler passed over the {} slot of {action} ({}, \"{}\"): it was more than {} min late (was the scheduler down?); the next slot runs as usual, or trigger it now",
                slot.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z"),
                r.entry,
                r.cron,
                max_late.num_minutes()
            );
            api_log::write(
                conn,
                &Entry {
                    code: Some(MISSED_CODE),
                    details: Some(json!({"entry": r.entry, "cron": r.cron, "slot": slot})),
                    ..Entry::new(Some(r.shop_id), action.as_str(), Level::Warning, &message)
                },
            )
            .await?;
        }
        claims.push(Claim {
            shop_id: r.shop_id,
            shop_code: r.code,
            action,
            entry: r.entry,
            due,
        });
    }
    Ok(claims)
}
