//! Carrier mappings: our external delivery method (外部連携先配送方法) → Amazon CarrierCode /
//! CarrierName, with the tracking-number format of the carrier. Rows with no shop are built-in
//! defaults (seeded by the migrations) for the marketplaces they list (every marketplace when
//! they list none): a shop sees the built-ins of its marketplaces, and its own row for the same
//! key wins.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{StoreError, map_unique};

/// A mapping row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarrierMapping {
    pub id: Uuid,
    /// `None`: built-in default for every shop.
    pub shop_id: Option<Uuid>,
    pub external_delivery_method: String,
    pub carrier_code: String,
    pub carrier_name: Option<String>,
    /// Regular expression the whole tracking number must match.
    pub tracking_pattern: Option<String>,
    /// A built-in's marketplace codes as in `shops.marketplaces` (`None`: every marketplace;
    /// always `None` for a shop's row).
    pub marketplaces: Option<Vec<String>>,
}

impl CarrierMapping {
    /// The marketplaces a built-in serves (`JP`, `AU`, `SG`); empty for every one.
    pub fn marketplace_codes(&self) -> Vec<&str> {
        self.marketplaces
            .iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// What Amazon is told for this mapping (an unlisted code goes as `Other` with a name).
    pub fn amazon_carrier(&self) -> domain::carrier::AmazonCarrier {
        domain::carrier::amazon_carrier(&self.carrier_code, self.carrier_name.as_deref())
    }
}

/// Normalizes a mapping key: trimmed, lower case.
pub fn normalize_key(external_delivery_method: &str) -> String {
    external_delivery_method.trim().to_lowercase()
}

/// The mapping for `external_delivery_method` as seen by `shop_id` (its own row first, then the
/// built-in default).
pub async fn resolve(
    conn: &mut PgConnection,
    shop_id: Uuid,
    external_delivery_method: &str,
) -> Result<Option<CarrierMapping>, StoreError> {
    let key = normalize_key(external_delivery_method);
    Ok(sqlx::query_as!(
        CarrierMapping,
        r#"SELECT id, shop_id, external_delivery_method, carrier_code, carrier_name, tracking_pattern, marketplaces
           FROM carrier_mappings
           WHERE external_delivery_method = $2
             AND (shop_id = $1 OR (shop_id IS NULL AND (marketplaces IS NULL
                  OR marketplaces && (SELECT marketplaces FROM shops WHERE id = $1))))
           ORDER BY shop_id NULLS LAST LIMIT 1"#,
        shop_id,
        key
    )
    .fetch_optional(conn)
    .await?)
}

/// Every mapping a shop sees (own rows override the built-ins of its marketplaces), by key.
pub async fn effective(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<CarrierMapping>, StoreError> {
    Ok(sqlx::query_as!(
        CarrierMapping,
        r#"SELECT DISTINCT ON (external_delivery_method)
                  id, shop_id, external_delivery_method, carrier_code, carrier_name, tracking_pattern, marketplaces
           FROM carrier_mappings
           WHERE shop_id = $1 OR (shop_id IS NULL AND (marketplaces IS NULL
                  OR marketplaces && (SELECT marketplaces FROM shops WHERE id = $1)))
           ORDER BY external_delivery_method, shop_id NULLS LAST"#,
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

/// Mappings of one scope: a shop's own rows, or the built-in defaults (`None`).
pub async fn list(
    conn: &mut PgConnection,
    shop_id: Option<Uuid>,
) -> Result<Vec<CarrierMapping>, StoreError> {
    Ok(sqlx::query_as!(
        CarrierMapping,
        r#"SELECT id, shop_id, external_delivery_method, carrier_code, carrier_name, tracking_pattern, marketplaces
           FROM carrier_mappings
           WHERE shop_id IS NOT DISTINCT FROM $1
           ORDER BY external_delivery_method"#,
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

/// A mapping to add or replace.
#[derive(Debug, Clone)]
pub struct NewMapping<'a> {
    pub shop_id: Option<Uuid>,
    pub external_delivery_method: &'a str,
    pub carrier_code: &'a str,
    pub carrier_name: Option<&'a str>,
    pub tracking_pattern: Option<&'a str>,
    /// For a built-in: the marketplace codes it serves (`None` keeps those of the built-in it
    /// replaces, or every marketplace for a new one). Ignored for a shop's row.
    pub marketplaces: Option<&'a [String]>,
}

impl NewMapping<'_> {
    /// What is wrong with the mapping before anything is saved (the pattern is checked by
    /// [`check_pattern`]): an empty external delivery method or carrier code, `Other` without a
    /// carrier name, a name over Amazon's 50 characters.
    pub fn invalid(&self) -> Option<String> {
        if normalize_key(self.external_delivery_method).is_empty() {
            return Some("the external delivery method must not be empty".into());
        }
        if self.carrier_code.trim().is_empty() {
            return Some("the carrier code must not be empty".into());
        }
        match domain::carrier::amazon_carrier(self.carrier_code, self.carrier_name) {
            domain::carrier::AmazonCarrier::Other(name) if name.is_empty() => {
                return Some(
                    "carrier code Other needs a carrier name (Amazon requires CarrierName with Other)"
                        .into(),
                );
            }
            domain::carrier::AmazonCarrier::Other(name) if name.chars().count() > 50 => {
                return Some(
                    "the carrier name must be at most 50 characters (Amazon's limit)".into(),
                );
            }
            _ => {}
        }
        let name = self.carrier_name.map(str::trim).filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.chars().count() > 50) {
            return Some("the carrier name must be at most 50 characters (Amazon's limit)".into());
        }
        None
    }
}

/// Adds a mapping or replaces the one with the same scope and key.
pub async fn upsert(
    conn: &mut PgConnection,
    m: &NewMapping<'_>,
) -> Result<CarrierMapping, StoreError> {
    let key = normalize_key(m.external_delivery_method);
    if key.is_empty() {
        return Err(StoreError::Corrupt(
            "external delivery method must not be empty".into(),
        ));
    }
    if m.carrier_code == "Other" && m.carrier_name.is_none_or(|n| n.trim().is_empty()) {
        return Err(StoreError::Corrupt(
            "carrier code Other needs a carrier name".into(),
        ));
    }
    let replaced = sqlx::query_scalar!(
        "DELETE FROM carrier_mappings WHERE shop_id IS NOT DISTINCT FROM $1 AND external_delivery_method = $2
         RETURNING marketplaces",
        m.shop_id,
        key
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    // A shop's row serves its shop; a built-in keeps the marketplaces of the one it replaces
    // unless new ones are given.
    let marketplaces = match m.shop_id {
        Some(_) => None,
        None => m.marketplaces.map(<[String]>::to_vec).or(replaced),
    };
    sqlx::query_as!(
        CarrierMapping,
        r#"INSERT INTO carrier_mappings
                  (id, shop_id, external_delivery_method, carrier_code, carrier_name, tracking_pattern, marketplaces)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id, shop_id, external_delivery_method, carrier_code, carrier_name, tracking_pattern, marketplaces"#,
        Uuid::now_v7(),
        m.shop_id,
        key,
        m.carrier_code,
        m.carrier_name,
        m.tracking_pattern,
        marketplaces.as_deref()
    )
    .fetch_one(conn)
    .await
    .map_err(|e| map_unique(e, "carrier mapping", &key))
}

/// Removes a mapping; returns whether one existed.
pub async fn remove(
    conn: &mut PgConnection,
    shop_id: Option<Uuid>,
    external_delivery_method: &str,
) -> Result<bool, StoreError> {
    let key = normalize_key(external_delivery_method);
    let n = sqlx::query!(
        "DELETE FROM carrier_mappings WHERE shop_id IS NOT DISTINCT FROM $1 AND external_delivery_method = $2",
        shop_id,
        key
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Checks that `pattern` is a regular expression Postgres accepts (tracking patterns are
/// matched by Postgres); an invalid one is a database error naming the problem.
pub async fn check_pattern(conn: &mut PgConnection, pattern: &str) -> Result<(), StoreError> {
    sqlx::query!("SELECT '' ~ $1 AS valid", pattern)
        .fetch_one(conn)
        .await?;
    Ok(())
}
