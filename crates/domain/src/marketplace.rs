//! The three marketplaces the connector serves.

use std::{fmt, str::FromStr};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// An Amazon marketplace served by the connector (Far East region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Marketplace {
    /// Amazon.co.jp
    #[serde(rename = "JP")]
    Japan,
    /// Amazon.com.au
    #[serde(rename = "AU")]
    Australia,
    /// Amazon.sg
    #[serde(rename = "SG")]
    Singapore,
}

/// A marketplace code or id that is not one of JP, AU, SG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown marketplace {0:?}: expected JP, AU or SG (or their ids A1VC38T7YXB528, A39IBJ37TRP1C6, A19VAU5U5O7RUS)"
)]
pub struct UnknownMarketplace(pub String);

impl Marketplace {
    /// Every marketplace the connector serves.
    pub const ALL: [Marketplace; 3] = [Self::Japan, Self::Australia, Self::Singapore];

    /// Amazon's marketplace id.
    pub fn id(self) -> &'static str {
        match self {
            Self::Japan => "A1VC38T7YXB528",
            Self::Australia => "A39IBJ37TRP1C6",
            Self::Singapore => "A19VAU5U5O7RUS",
        }
    }

    /// Two-letter code used in configuration and the console.
    pub fn code(self) -> &'static str {
        match self {
            Self::Japan => "JP",
            Self::Australia => "AU",
            Self::Singapore => "SG",
        }
    }

    /// The marketplace's currency.
    pub fn currency(self) -> Currency {
        match self {
            Self::Japan => Currency::Jpy,
            Self::Australia => Currency::Aud,
            Self::Singapore => Currency::Sgd,
        }
    }

    /// The marketplace's local time zone ("today" for shipment feedback).
    pub fn time_zone(self) -> Tz {
        match self {
            Self::Japan => chrono_tz::Asia::Tokyo,
            Self::Australia => chrono_tz::Australia::Sydney,
            Self::Singapore => chrono_tz::Asia::Singapore,
        }
    }

    /// Looks a marketplace up by Amazon's id.
    pub fn from_id(id: &str) -> Result<Self, UnknownMarketplace> {
        Self::ALL
            .into_iter()
            .find(|m| m.id() == id)
            .ok_or_else(|| UnknownMarketplace(id.to_owned()))
    }
}

impl FromStr for Marketplace {
    type Err = UnknownMarketplace;

    /// Accepts the code (`JP`, case-insensitive) or Amazon's id.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.code().eq_ignore_ascii_case(t) || m.id() == t)
            .ok_or_else(|| UnknownMarketplace(s.to_owned()))
    }
}

impl fmt::Display for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for m in Marketplace::ALL {
            assert_eq!(Marketplace::from_id(m.id()).unwrap(), m);
            assert_eq!(m.code().parse::<Marketplace>().unwrap(), m);
            assert_eq!(m.id().parse::<Marketplace>().unwrap(), m);
        }
        assert_eq!("jp".parse::<Marketplace>().unwrap(), Marketplace::Japan);
        let err = "US".parse::<Marketplace>().unwrap_err();
        assert!(err.to_string().contains("expected JP, AU or SG"));
    }

    #[test]
    fn currency_and_zone() {
        assert_eq!(Marketplace::Japan.currency(), Currency::Jpy);
        assert_eq!(
            Marketplace::Australia.time_zone(),
            chrono_tz::Australia::Sydney
        );
        assert_eq!(Marketplace::Singapore.currency().code(), "SGD");
    }
}
