//! Shops and their encrypted LWA credentials.

use chrono::{DateTime, Utc};
use crypto::Keyring;
use domain::{
    Marketplace,
    shop::{ShipmentStrategy, Shop, ShopCode},
};
use secrecy::SecretString;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::{StoreError, map_unique};

/// LWA credentials of a shop, decrypted. `Debug` redacts the secrets.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
    /// A second secret during Amazon's client-secret rotation overlap.
    pub client_secret_next: Option<SecretString>,
    pub refresh_token: SecretString,
}

/// A shop to create.
#[derive(Debug, Clone)]
pub struct NewShop {
    pub code: ShopCode,
    pub name: String,
    pub seller_id: String,
    pub marketplaces: Vec<Marketplace>,
    pub time_zone: chrono_tz::Tz,
    pub sp_api_endpoint: String,
    pub lwa_endpoint: String,
    pub shipment_strategy: ShipmentStrategy,
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
}

impl NewShop {
    /// A shop on Amazon.co.jp (Asia/Tokyo, shipments by feed) whose SP-API and LWA endpoints are
    /// at `base_url`, e.g. the simulator of a demo, a benchmark or a test, with placeholder
    /// credentials; change any field with `NewShop { field, ..NewShop::japan_at(…) }`.
    pub fn japan_at(code: ShopCode, name: &str, seller_id: &str, base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        Self {
            code,
            name: name.to_owned(),
            seller_id: seller_id.to_owned(),
            marketplaces: vec![Marketplace::Japan],
            time_zone: chrono_tz::Asia::Tokyo,
            sp_api_endpoint: base.to_owned(),
            lwa_endpoint: format!("{base}/auth/o2/token"),
            shipment_strategy: ShipmentStrategy::Feed,
            client_id: "amzn1.application-oa2-client.test".to_owned(),
            client_secret: SecretString::from("secret"),
            refresh_token: SecretString::from("Atzr|test"),
        }
    }
}

/// A shop with its operational state (no secrets).
#[derive(Debug, Clone)]
pub struct ShopRecord {
    pub shop: Shop,
    pub lwa_client_id: String,
    pub auth_status: String,
    pub auth_error: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

fn aad(shop_id: Uuid, field: &str) -> String {
    format!("shops/{shop_id}/{field}")
}

/// Creates a shop with the default schedule entries (`domain::schedule::DEFAULTS`); the client
/// secret and refresh token are stored encrypted, bound to the row.
pub async fn insert(
    conn: &mut PgConnection,
    keys: &Keyring,
    new: &NewShop,
) -> Result<ShopRecord, StoreError> {
    let id = Uuid::now_v7();
    let secret = keys.encrypt_secret(&new.client_secret, &aad(id, "lwa_client_secret"));
    let token = keys.encrypt_secret(&new.refresh_token, &aad(id, "lwa_refresh_token"));
    let marketplaces: Vec<String> = new
        .marketplaces
        .iter()
        .map(|m| m.code().to_owned())
        .collect();
    sqlx::query!(
        r#"INSERT INTO shops (id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint,
                              shipment_strategy, lwa_client_id, lwa_client_secret_enc, lwa_refresh_token_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        id,
        new.code.as_str(),
        new.name,
        new.seller_id,
        &marketplaces,
        new.time_zone.name(),
        new.sp_api_endpoint,
        new.lwa_endpoint,
        new.shipment_strategy.as_str(),
        new.client_id,
        secret,
        token,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| map_unique(e, "shop", new.code.as_str()))?;
    // Every action runs on its default cadence from the start (自動実行; changed later with
    // `ctl schedule` or the console).
    crate::schedules::create_defaults(conn, id, crate::schedules::DEFAULTS_BY).await?;
    get(conn, id).await
}

struct Row {
    id: Uuid,
    code: String,
    name: String,
    seller_id: String,
    marketplaces: Vec<String>,
    time_zone: String,
    sp_api_endpoint: String,
    lwa_endpoint: String,
    shipment_strategy: String,
    lwa_client_id: String,
    auth_status: String,
    auth_error: Option<String>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for ShopRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("shop {}: {what}", r.code));
        let marketplaces = r
            .marketplaces
            .iter()
            .map(|m| m.parse::<Marketplace>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        let time_zone = r
            .time_zone
            .parse()
            .map_err(|_| corrupt(format!("unknown time zone {:?}", r.time_zone)))?;
        Ok(ShopRecord {
            shop: Shop {
                id: r.id,
                code: r
                    .code
                    .parse()
                    .map_err(|e: domain::shop::InvalidShopCode| corrupt(e.to_string()))?,
                name: r.name,
                seller_id: r.seller_id,
                marketplaces,
                time_zone,
                sp_api_endpoint: r.sp_api_endpoint,
                lwa_endpoint: r.lwa_endpoint,
                shipment_strategy: r.shipment_strategy.parse().map_err(corrupt)?,
            },
            lwa_client_id: r.lwa_client_id,
            auth_status: r.auth_status,
            auth_error: r.auth_error,
            active: r.active,
            created_at: r.created_at,
        })
    }
}

/// A shop by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<ShopRecord, StoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint, shipment_strategy,
                  lwa_client_id, auth_status, auth_error, active, created_at
           FROM shops WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .found("shop", id)?;
    row.try_into()
}

/// A shop by its code.
pub async fn get_by_code(conn: &mut PgConnection, code: &str) -> Result<ShopRecord, StoreError> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint, shipment_strategy,
                  lwa_client_id, auth_status, auth_error, active, created_at
           FROM shops WHERE code = $1"#,
        code
    )
    .fetch_optional(conn)
    .await?
    .found("shop", code)?;
    row.try_into()
}

/// Every shop, by code.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ShopRecord>, StoreError> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint, shipment_strategy,
                  lwa_client_id, auth_status, auth_error, active, created_at
           FROM shops ORDER BY code"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// The shop's decrypted LWA credentials.
pub async fn credentials(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
) -> Result<Credentials, StoreError> {
    let r = sqlx::query!(
        r#"SELECT lwa_client_id, lwa_client_secret_enc, lwa_client_secret_next_enc, lwa_refresh_token_enc
           FROM shops WHERE id = $1"#,
        shop_id
    )
    .fetch_optional(conn)
    .await?
    .found("shop", shop_id)?;
    Ok(Credentials {
        client_id: r.lwa_client_id,
        client_secret: keys
            .decrypt_secret(&r.lwa_client_secret_enc, &aad(shop_id, "lwa_client_secret"))?,
        client_secret_next: r
            .lwa_client_secret_next_enc
            .map(|c| keys.decrypt_secret(&c, &aad(shop_id, "lwa_client_secret_next")))
            .transpose()?,
        refresh_token: keys
            .decrypt_secret(&r.lwa_refresh_token_enc, &aad(shop_id, "lwa_refresh_token"))?,
    })
}

/// Records that the seller must re-authorize (invalid_grant / invalid_client), or clears it.
pub async fn set_auth_status(
    conn: &mut PgConnection,
    shop_id: Uuid,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let status = if error.is_some() {
        "needs_reauthorization"
    } else {
        "ok"
    };
    sqlx::query!(
        "UPDATE shops SET auth_status = $2, auth_error = $3, updated_at = now() WHERE id = $1",
        shop_id,
        status,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether inventory-sync leaves Amazon's handling time as it is for SKUs without 出荷作業日数
/// (`true`), instead of setting it back to Amazon's default (the seed's rule, `false`).
pub async fn keep_amazon_handling_time(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<bool, StoreError> {
    sqlx::query_scalar!(
        "SELECT keep_amazon_handling_time FROM shops WHERE id = $1",
        shop_id
    )
    .fetch_optional(conn)
    .await?
    .found("shop", shop_id)
}

/// Sets [`keep_amazon_handling_time`].
pub async fn set_keep_amazon_handling_time(
    conn: &mut PgConnection,
    shop_id: Uuid,
    keep: bool,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shops SET keep_amazon_handling_time = $2, updated_at = now() WHERE id = $1",
        shop_id,
        keep
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the refresh token (re-authorization) and clears the re-authorization flag.
pub async fn set_refresh_token(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
    token: &SecretString,
) -> Result<(), StoreError> {
    let enc = keys.encrypt_secret(token, &aad(shop_id, "lwa_refresh_token"));
    let n = sqlx::query!(
        "UPDATE shops SET lwa_refresh_token_enc = $2, auth_status = 'ok', auth_error = NULL, updated_at = now() WHERE id = $1",
        shop_id,
        enc
    )
    .execute(conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "shop",
            key: shop_id.to_string(),
        });
    }
    Ok(())
}

/// Client-secret rotation. `stage` keeps the current secret valid and adds the new one as
/// "next" (Amazon's overlap); `promote` makes "next" the only secret.
pub async fn stage_client_secret(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
    secret: &SecretString,
) -> Result<(), StoreError> {
    let enc = keys.encrypt_secret(secret, &aad(shop_id, "lwa_client_secret_next"));
    sqlx::query!(
        "UPDATE shops SET lwa_client_secret_next_enc = $2, updated_at = now() WHERE id = $1",
        shop_id,
        enc
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Promotes the staged client secret (see [`stage_client_secret`]).
pub async fn promote_client_secret(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
) -> Result<(), StoreError> {
    let creds = credentials(conn, keys, shop_id).await?;
    let next = creds
        .client_secret_next
        .found("staged client secret for shop", shop_id)?;
    let enc = keys.encrypt_secret(&next, &aad(shop_id, "lwa_client_secret"));
    sqlx::query!(
        "UPDATE shops SET lwa_client_secret_enc = $2, lwa_client_secret_next_enc = NULL, updated_at = now() WHERE id = $1",
        shop_id,
        enc
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Re-encrypts every shop's secrets that are not under the current key. Returns how many shops changed.
pub async fn rotate_keys(conn: &mut PgConnection, keys: &Keyring) -> Result<u64, StoreError> {
    let rows = sqlx::query!("SELECT id, lwa_client_secret_enc, lwa_refresh_token_enc, lwa_client_secret_next_enc FROM shops FOR UPDATE")
        .fetch_all(&mut *conn)
        .await?;
    let mut changed = 0;
    for r in rows {
        let stale = keys.needs_rotation(&r.lwa_client_secret_enc)
            || keys.needs_rotation(&r.lwa_refresh_token_enc)
            || r.lwa_client_secret_next_enc
                .as_deref()
                .is_some_and(|c| keys.needs_rotation(c));
        if !stale {
            continue;
        }
        let re = |data: &[u8], field: &str| -> Result<Vec<u8>, StoreError> {
            let a = aad(r.id, field);
            Ok(keys.encrypt(&keys.decrypt(data, &a)?, &a))
        };
        let secret = re(&r.lwa_client_secret_enc, "lwa_client_secret")?;
        let token = re(&r.lwa_refresh_token_enc, "lwa_refresh_token")?;
        let next = r
            .lwa_client_secret_next_enc
            .as_deref()
            .map(|c| re(c, "lwa_client_secret_next"))
            .transpose()?;
        sqlx::query!(
            "UPDATE shops SET lwa_client_secret_enc = $2, lwa_refresh_token_enc = $3, lwa_client_secret_next_enc = $4 WHERE id = $1",
            r.id,
            secret,
            token,
            next
        )
        .execute(&mut *conn)
        .await?;
        changed += 1;
    }
    Ok(changed)
}
