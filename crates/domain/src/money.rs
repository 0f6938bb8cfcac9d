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

    /// The symbol a buyer of the marketplace reads: `¥`, `A$`, `S$`.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Jpy => "¥",
            Self::Aud => "A$",
            Self::Sgd => "S$",
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

impl Money {
    /// The amount in the currency's own form: `¥18,790` (JPY has no minor unit), `A$23.50`,
    /// `S$23.50`; thousands grouped with commas, rounded half away from zero.
    pub fn local(&self) -> String {
        let dp = self.currency.minor_units();
        let rounded = self
            .amount
            .round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let text = format!("{:.*}", dp as usize, rounded.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
            "-"
        } else {
            ""
        };
        let frac = if frac.is_empty() {
            String::new()
        } else {
            format!(".{frac}")
        };
        format!("{sign}{}{grouped}{frac}", self.currency.symbol())
    }
}

/// An amount stored with its currency code, for display: [`Money::local`] for JPY, AUD and SGD;
/// another or no currency shows the amount with two decimals and the code as stored.
pub fn display_amount(amount: Decimal, currency: Option<&str>) -> String {
    match currency.map(str::parse::<Currency>) {
        Some(Ok(c)) => Money::new(amount, c).local(),
        Some(Err(_)) => format!("{:.2} {}", amount, currency.unwrap_or_default()),
        None => format!("{amount:.2}"),
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

    /// Issue 17: money in the currency's own form.
    #[test]
    fn local_forms() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(Money::new(d("18790"), Currency::Jpy).local(), "¥18,790");
        assert_eq!(Money::new(d("18790.4"), Currency::Jpy).local(), "¥18,790");
        assert_eq!(Money::new(d("23.5"), Currency::Aud).local(), "A$23.50");
        assert_eq!(Money::new(d("23.5"), Currency::Sgd).local(), "S$23.50");
        assert_eq!(
            Money::new(d("1234567.005"), Currency::Aud).local(),
            "A$1,234,567.01"
        );
        assert_eq!(Money::new(d("-330"), Currency::Jpy).local(), "-¥330");
        assert_eq!(Money::new(d("0"), Currency::Jpy).local(), "¥0");
        assert_eq!(display_amount(d("3300.0000"), Some("JPY")), "¥3,300");
        assert_eq!(display_amount(d("12.5"), Some("USD")), "12.50 USD");
        assert_eq!(display_amount(d("12.5"), None), "12.50");
    }

    #[test]
    fn currency_parse() {
        assert_eq!("jpy".parse::<Currency>().unwrap(), Currency::Jpy);
        assert!("USD".parse::<Currency>().is_err());
    }
}
