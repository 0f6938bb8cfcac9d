//! Buyer and ship-to data (PII): encrypted at rest, and kept no longer than Amazon's Data
//! Protection Policy allows.
//!
//! **At rest.** An instruction's buyer and ship-to fields ([`PersonalData`]: also a business
//! buyer's company and purchase order number, the delivery preference and the gift messages of
//! its lines) are stored as one
//! AES-256-GCM blob, `shipping_instructions.pii_enc`, sealed by the application with the
//! connector's keyring and bound to the shop and the instruction (associated data), so a blob
//! copied to another row or shop does not open. The database, its backups and anyone with SQL
//! access see ciphertext; only processes holding `CONNECTOR_ENCRYPTION_KEYS` read it ([`read`]:
//! the console, when an operator reveals it). The country stays in clear (statistics).
//! [`reseal`] (`ctl keys rotate`) re-encrypts blobs of an older key version and seals rows
//! written in clear before encryption existed.
//!
//! **Retention.** The PII of an instruction is deleted (and `pii_purged_at` set) once it was
//! shipped more than the retention period ago, or was canceled (last change) more than the
//! retention period ago. Everything else (order id, lines, tracking, country for statistics)
//! stays. Idempotent; run daily (`ctl pii purge`, a CronJob).

use chrono::{DateTime, Utc};
use crypto::Keyring;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

/// An instruction's buyer and ship-to data. `Debug` never prints the values.
///
/// Sealed as compact JSON (short keys, absent fields left out): the blob travels in order-ingest's
/// bulk statements, a page of orders each.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    #[serde(rename = "bn", default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
    #[serde(rename = "be", default, skip_serializing_if = "Option::is_none")]
    pub buyer_email: Option<String>,
    #[serde(rename = "sn", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_name: Option<String>,
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_postal_code: Option<String>,
    #[serde(rename = "ss", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_state: Option<String>,
    #[serde(rename = "sc", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_city: Option<String>,
    #[serde(rename = "sa", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_address: Option<String>,
    #[serde(rename = "sf", default, skip_serializing_if = "Option::is_none")]
    pub ship_to_phone: Option<String>,
    /// A business buyer's company name.
    #[serde(rename = "bc", default, skip_serializing_if = "Option::is_none")]
    pub buyer_company: Option<String>,
    /// A business buyer's purchase order number.
    #[serde(rename = "po", default, skip_serializing_if = "Option::is_none")]
    pub purchase_order_number: Option<String>,
    /// The buyer's delivery preference (drop-off place, instructions, preferred hours), as text.
    #[serde(rename = "dp", default, skip_serializing_if = "Option::is_none")]
    pub delivery_preference: Option<String>,
    /// Gift messages by Amazon order item id.
    #[serde(
        rename = "gm",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub gift_messages: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalData([REDACTED])")
    }
}

impl PersonalData {
    /// Sealed for the instruction `id` of `shop_id` (the `pii_enc` column).
    pub fn seal(&self, keys: &Keyring, shop_id: Uuid, id: Uuid) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("serializing strings cannot fail");
        keys.encrypt(&json, &aad(shop_id, id))
    }

    /// Opens a `pii_enc` blob of the instruction `id` of `shop_id`.
    pub fn open(
        keys: &Keyring,
        shop_id: Uuid,
        id: Uuid,
        sealed: &[u8],
    ) -> Result<Self, StoreError> {
        let json = keys.decrypt(sealed, &aad(shop_id, id))?;
        serde_json::from_slice(&json)
            .map_err(|e| StoreError::Corrupt(format!("personal data of instruction {id}: {e}")))
    }
}

fn aad(shop_id: Uuid, id: Uuid) -> String {
    format!("shipping_instructions.pii_enc:{shop_id}:{id}")
}

/// The personal data of an instruction: `None` when it has none (purged, or never had any).
/// Rows written in clear before encryption existed are read from their old columns.
pub async fn read(
    conn: &mut PgConnection,
    keys: &Keyring,
    id: Uuid,
) -> Result<Option<PersonalData>, StoreError> {
    let Some(r) = sqlx::query!(
        r#"SELECT shop_id, pii_enc, buyer_name, buyer_email, ship_to_name, ship_to_postal_code, ship_to_state,
                  ship_to_city, ship_to_address, ship_to_phone
           FROM shipping_instructions WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    else {
        return Err(StoreError::NotFound { what: "instruction", key: id.to_string() });
    };
    if let Some(sealed) = r.pii_enc {
        return PersonalData::open(keys, r.shop_id, id, &sealed).map(Some);
    }
    let legacy = PersonalData {
        buyer_name: r.buyer_name,
        buyer_email: r.buyer_email,
        ship_to_name: r.ship_to_name,
        ship_to_postal_code: r.ship_to_postal_code,
        ship_to_state: r.ship_to_state,
        ship_to_city: r.ship_to_city,
        ship_to_address: r.ship_to_address,
        ship_to_phone: r.ship_to_phone,
        ..PersonalData::default()
    };
    Ok((legacy != PersonalData::default()).then_some(legacy))
}

/// Replaces the personal data of an instruction (an operator's correction), sealed.
pub async fn write(
    conn: &mut PgConnection,
    keys: &Keyring,
    id: Uuid,
    data: &PersonalData,
) -> Result<(), StoreError> {
    let shop_id = sqlx::query_scalar!(
        "SELECT shop_id FROM shipping_instructions WHERE id = $1 FOR NO KEY UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("instruction", id)?;
    seal_row(conn, keys, shop_id, id, data).await
}

async fn seal_row(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
    id: Uuid,
    data: &PersonalData,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE shipping_instructions
              SET pii_enc = $2, buyer_name = NULL, buyer_email = NULL, ship_to_name = NULL,
                  ship_to_postal_code = NULL, ship_to_state = NULL, ship_to_city = NULL,
                  ship_to_address = NULL, ship_to_phone = NULL, updated_at = now()
            WHERE id = $1"#,
        id,
        data.seal(keys, shop_id, id)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Seals, under the current key, up to `limit` instructions whose personal data is in clear
/// (written before encryption) or sealed with an older key version, clearing the plaintext
/// columns. Returns how many were sealed; call until it returns 0.
pub async fn reseal(
    conn: &mut PgConnection,
    keys: &Keyring,
    limit: i64,
) -> Result<u64, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT id, shop_id FROM shipping_instructions
           WHERE pii_purged_at IS NULL
             AND ((pii_enc IS NOT NULL AND get_byte(pii_enc, 0) <> $1)
               OR (pii_enc IS NULL AND num_nonnulls(buyer_name, buyer_email, ship_to_name, ship_to_postal_code,
                                                    ship_to_state, ship_to_city, ship_to_address, ship_to_phone) > 0))
           ORDER BY id LIMIT $2
           FOR UPDATE SKIP LOCKED"#,
        i32::from(keys.current_version()),
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let Some(data) = read(&mut *conn, keys, r.id).await? else {
            continue;
        };
        seal_row(&mut *conn, keys, r.shop_id, r.id, &data).await?;
    }
    Ok(rows.len() as u64)
}

/// Days after shipment (or cancellation) that buyer and ship-to data is kept.
pub const RETENTION_DAYS: i64 = 30;

/// The columns of `shipping_instructions` that hold (or, before encryption, held) buyer or
/// ship-to PII: the only place PII may be stored; nulled by [`purge`].
pub const PII_COLUMNS: [&str; 9] = [
    "pii_enc",
    "buyer_name",
    "buyer_email",
    "ship_to_name",
    "ship_to_postal_code",
    "ship_to_state",
    "ship_to_city",
    "ship_to_address",
    "ship_to_phone",
];

/// Purges the PII of instructions shipped (or canceled) before `now - older_than`, and the
/// order mirror's payloads polled before then that no reader applied. Returns how many
/// instructions were purged.
pub async fn purge(
    conn: &mut PgConnection,
    older_than: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let cutoff = now - older_than;
    let done = sqlx::query(
        r#"UPDATE shipping_instructions
              SET pii_enc = NULL, buyer_name = NULL, buyer_email = NULL, ship_to_name = NULL,
                  ship_to_postal_code = NULL, ship_to_state = NULL, ship_to_city = NULL,
                  ship_to_address = NULL, ship_to_phone = NULL, pii_purged_at = $2
            WHERE pii_purged_at IS NULL
              AND ((status = 'shipped'
                    AND COALESCE(shipped_at, shipped_on::timestamp AT TIME ZONE 'UTC') < $1)
                OR (status = 'canceled' AND updated_at < $1))"#,
    )
    .bind(cutoff)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    crate::mirror::purge_payloads(&mut *conn, cutoff).await?;
    Ok(done.rows_affected())
}
