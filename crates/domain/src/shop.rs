//! Shops: one seller account on one region, the tenant of every row.

use std::{fmt, str::FromStr};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Marketplace;

/// Far East production SP-API endpoint (JP, AU, SG).
pub const FE_SP_API_ENDPOINT: &str = "https://sellingpartnerapi-fe.amazon.com";
/// Login with Amazon token endpoint.
pub const LWA_ENDPOINT: &str = "https://api.amazon.com/auth/o2/token";

/// A shop's short code, used on the command line and in the console (`acme-jp`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShopCode(String);

/// A shop code with characters or a length the connector does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid shop code {0:?}: use 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
)]
pub struct InvalidShopCode(pub String);

impl ShopCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ShopCode {
    type Err = InvalidShopCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=63).contains(&s.len())
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidShopCode(s.to_owned()))
        }
    }
}

impl TryFrom<String> for ShopCode {
    type Error = InvalidShopCode;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ShopCode> for String {
    fn from(c: ShopCode) -> String {
        c.0
    }
}

impl fmt::Display for ShopCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How shipments are reported to Amazon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStrategy {
    /// One `POST_ORDER_FULFILLMENT_DATA` feed per run (the seed's way).
    #[default]
    Feed,
    /// Orders v0 `confirmShipment`, one call per order.
    ConfirmShipment,
}

impl ShipmentStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feed => "feed",
            Self::ConfirmShipment => "confirm_shipment",
        }
    }
}

impl FromStr for ShipmentStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('-', "_").as_str() {
            "feed" => Ok(Self::Feed),
            "confirm_shipment" => Ok(Self::ConfirmShipment),
            _ => Err(format!(
                "unknown shipment strategy {s:?}: expected feed or confirm-shipment"
            )),
        }
    }
}

/// A shop as the services see it (credentials are fetched and decrypted separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    pub id: Uuid,
    pub code: ShopCode,
    pub name: String,
    pub seller_id: String,
    pub marketplaces: Vec<Marketplace>,
    pub time_zone: Tz,
    pub sp_api_endpoint: String,
    pub lwa_endpoint: String,
    pub shipment_strategy: ShipmentStrategy,
}

impl Shop {
    /// The shop's primary marketplace (the first configured).
    pub fn primary_marketplace(&self) -> Marketplace {
        self.marketplaces
            .first()
            .copied()
            .unwrap_or(Marketplace::Japan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_codes() {
        assert!("acme-jp".parse::<ShopCode>().is_ok());
        assert!("Acme".parse::<ShopCode>().is_err());
        assert!("".parse::<ShopCode>().is_err());
        assert!("-x".parse::<ShopCode>().is_err());
        assert!(
            "ok; drop table"
                .parse::<ShopCode>()
                .unwrap_err()
                .to_string()
                .contains("a-z, 0-9")
        );
    }

    #[test]
    fn strategies() {
        assert_eq!(
            "confirm-shipment".parse::<ShipmentStrategy>().unwrap(),
            ShipmentStrategy::ConfirmShipment
        );
        assert!("fax".parse::<ShipmentStrategy>().is_err());
    }
}
