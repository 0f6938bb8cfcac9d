//! Money as decimals, never floats.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Currencies of the served marketplaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Jpy,
    Aud,
    Sgd,
}

/// A currency code other than JPY, AUD, SGD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected JPY, AUD or SGD")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Jpy => "JPY",
            Self::Aud => "AUD",
            Self::Sgd => "SGD",
        }
    }

    /// Minor units (decimal places) used when displaying amounts.
    pub fn minor_units(self) -> u32 {
        match self {
            Self::Jpy => 0,
            Self::Aud | Self::Sgd => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "JPY" => Ok(Self::Jpy),
            "AUD" => Ok(Self::Aud),
            "SGD" => Ok(Self::Sgd),
            _ => Err(UnknownCurrency(s.to_owned())),
        }
    }
}

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// `self × quantity`, e.g. a line total from a unit price.
    pub fn times(self, quantity: u32) -> Self {
        Self::new(self.amount * Decimal::from(quantity), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = self.amount.round_dp(self.currency.minor_units());
        write!(f, "{} {}", rounded, self.currency.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_total_is_exact() {
        let unit = Money::new(Decimal::from_str("19.99").unwrap(), Currency::Aud);
        assert_eq!(unit.times(3).amount, Decimal::from_str("59.97").unwrap());
        assert_eq!(unit.times(3).to_string(), "59.97 AUD");
        let yen = Money::new(Decimal::from(1980), Currency::Jpy);
        assert_eq!(yen.times(2).to_string(), "3960 JPY");
    }

    #[test]
    fn currency_parse() {
        assert_eq!("jpy".parse::<Currency>().unwrap(), Currency::Jpy);
        assert!("USD".parse::<Currency>().is_err());
    }
}
