//! Shared model helpers: open string enums, money, decimal strings.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Declares an "open" string enum: the documented values as variants plus `Other(String)` for
/// values Amazon adds later, so that a new value never breaks deserialization.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value not documented when this client was written (kept verbatim).
            Other(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use string_enum;

/// A currency amount (`{"amount":"19940","currencyCode":"JPY"}` in Orders v2026 and Listings).
/// The amount is a decimal string on the wire and never goes through a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// The amount.
    #[serde(with = "decimal_string")]
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency_code: String,
}

/// Serializes a [`Decimal`] as a JSON string; accepts a string or a number.
pub mod decimal_string {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the decimal as a string (exact).
    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    /// Reads a decimal from a string (or, leniently, a number).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        <Decimal as Deserialize>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    string_enum! {
        /// test
        pub enum Color {
            /// red
            Red = "RED",
        }
    }

    #[test]
    fn open_enums_keep_unknown_values() {
        let v: Vec<Color> = serde_json::from_str(r#"["RED","ULTRAVIOLET"]"#).unwrap();
        assert_eq!(v, vec![Color::Red, Color::Other("ULTRAVIOLET".into())]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"["RED","ULTRAVIOLET"]"#
        );
        assert_eq!(Color::from_str("RED").unwrap(), Color::Red);
    }

    #[test]
    fn money_is_exact() {
        let m: Money = serde_json::from_str(r#"{"amount":"25.99","currencyCode":"AUD"}"#).unwrap();
        assert_eq!(m.amount, Decimal::from_str("25.99").unwrap());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":"25.99","currencyCode":"AUD"}"#
        );
        let n: Money = serde_json::from_str(r#"{"amount":1980,"currencyCode":"JPY"}"#).unwrap();
        assert_eq!(n.amount, Decimal::from(1980));
    }
}
