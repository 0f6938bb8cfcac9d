//! ショップ: the shops an operator sees, with their authorization state and last good run.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A shop as the shops page lists it (no secrets).
#[derive(Debug, Clone)]
pub struct ShopOverview {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub seller_id: String,
    pub marketplaces: Vec<String>,
    pub time_zone: String,
    /// `feed` or `confirm_shipment`.
    pub shipment_strategy: String,
    /// `ok` or `needs_reauthorization`.
    pub auth_status: String,
    pub auth_error: Option<String>,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
    /// When the shop's last successful run finished.
    pub last_ok: Option<DateTime<Utc>>,
}

/// These shops, by code.
pub async fn overview(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<ShopOverview>, StoreError> {
    Ok(sqlx::query_as!(
        ShopOverview,
        r#"SELECT s.id, s.code, s.name, s.seller_id, s.marketplaces, s.time_zone, s.shipment_strategy,
                  s.auth_status, s.auth_error, s.active, s.updated_at,
                  (SELECT max(finished_at) FROM action_runs r WHERE r.shop_id = s.id AND r.status = 'succeeded') AS last_ok
           FROM shops s WHERE s.id = ANY($1) ORDER BY s.code"#,
        ids
    )
    .fetch_all(conn)
    .await?)
}
