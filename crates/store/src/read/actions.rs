//! アクション実行: triggers (commands written to the outbox) and the runs they started.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A command in the outbox.
#[derive(Debug, Clone)]
pub struct QueuedCommand {
    /// The action (the command's routing key).
    pub routing_key: String,
    /// The command as published (ids and parameters only).
    pub payload: serde_json::Value,
}

/// The outbox message `id`, if it is still there.
pub async fn queued_command(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<QueuedCommand>, StoreError> {
    Ok(sqlx::query_as!(
        QueuedCommand,
        "SELECT routing_key, payload FROM outbox WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// A trigger and the latest run it started.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: Uuid,
    pub routing_key: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// When the relay published it (`None`: still waiting).
    pub sent_at: Option<DateTime<Utc>>,
    pub run_status: Option<String>,
    pub run_id: Option<Uuid>,
}

/// A shop's latest commands on `exchange`, newest first.
pub async fn recent_triggers(
    conn: &mut PgConnection,
    exchange: &str,
    shop_id: Uuid,
    limit: i64,
) -> Result<Vec<Trigger>, StoreError> {
    Ok(sqlx::query_as!(
        Trigger,
        r#"SELECT o.id, o.routing_key, o.payload, o.created_at, o.sent_at,
                  r.status AS "run_status?", r.id AS "run_id?"
           FROM outbox o
           LEFT JOIN LATERAL (SELECT status, id FROM action_runs WHERE command_id = o.id
                              ORDER BY started_at DESC LIMIT 1) r ON true
           WHERE o.exchange = $1 AND o.payload->>'shop_id' = $2
           ORDER BY o.created_at DESC LIMIT $3"#,
        exchange,
        shop_id.to_string(),
        limit
    )
    .fetch_all(conn)
    .await?)
}
