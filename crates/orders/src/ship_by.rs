//! Ship-by warnings: an open instruction whose Amazon ship-by time (`LatestShipDate`) is less
//! than [`domain::ship_by::WARN_HOURS`] away gets one `attention` entry (`ship_by_approaching`)
//! before it is missed, naming the order and the time in the shop's zone. Status sync checks on
//! every `changes` run (every ten minutes by default). A time already past is not written (Amazon
//! already counts the order late; the console's task list marks it 出荷期限超過), so a backlog
//! does not flood the API log.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use store::{
    StoreError,
    api_log::{self, Entry, Level},
    instructions,
};
use uuid::Uuid;

/// The API-log code of the entry.
pub const CODE: &str = "ship_by_approaching";

/// Writes the entries for the shop's open instructions due within the warning window that were
/// not warned about yet. Returns how many were written. Run it in the caller's transaction.
pub async fn notice(
    conn: &mut PgConnection,
    shop_id: Uuid,
    tz: chrono_tz::Tz,
    run_id: Option<Uuid>,
    action: &str,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let until = now + Duration::hours(domain::ship_by::WARN_HOURS);
    let due = instructions::ship_by_due(&mut *conn, shop_id, now, until).await?;
    for d in &due {
        let local = d.latest_ship_at.with_timezone(&tz).format("%Y-%m-%d %H:%M");
        let message = format!(
            "order {} must ship by {local} ({tz}) and is still {}: ship it and confirm the \
             shipment before then, or Amazon counts it as shipped late",
            d.amazon_order_id, d.status
        );
        api_log::write(
            &mut *conn,
            &Entry {
                run_id,
                amazon_order_id: Some(&d.amazon_order_id),
                code: Some(CODE),
                details: Some(serde_json::json!({
                    "instruction_id": d.id,
                    "latest_ship_at": d.latest_ship_at,
                })),
                ..Entry::new(Some(shop_id), action, Level::Attention, &message)
            },
        )
        .await?;
    }
    let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
    if !ids.is_empty() {
        instructions::mark_ship_by_noticed(conn, &ids).await?;
    }
    Ok(due.len() as u32)
}
