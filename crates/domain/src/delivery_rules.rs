//! Delivery rules (the seed's conversion/processing rules, 変換ロボット/処理ロボット): ordered
//! conditions that choose a delivery method for an imported order. First match wins.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Marketplace;

/// Conditions of one rule. Every condition that is set must hold; an empty rule matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marketplaces: Vec<Marketplace>,
    /// Amazon's shipping service level (e.g. `Standard`, `Expedited`), case-insensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ship_service_levels: Vec<String>,
    /// Destination prefecture/state (`stateOrRegion`), exact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<String>,
    /// Any line with one of these SKUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_total: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prime: Option<bool>,
    /// The buyer chose a delivery date and time slot (scheduled delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_slot: Option<bool>,
}

/// What a rule can look at in an order. The destination is only known once paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInput<'a> {
    pub marketplace: Marketplace,
    pub ship_service_level: Option<&'a str>,
    pub state: Option<&'a str>,
    pub skus: &'a [String],
    pub order_total: Option<Decimal>,
    pub prime: bool,
    /// The buyer chose a delivery window ([`has_time_slot`]).
    pub time_slot: bool,
}

/// Whether an order carries a delivery window the buyer chose: Amazon's scheduled delivery
/// window on its items, or the `SCHEDULED` service level.
pub fn has_time_slot(scheduled_window: bool, ship_service_level: Option<&str>) -> bool {
    scheduled_window || ship_service_level.is_some_and(|l| l.eq_ignore_ascii_case("SCHEDULED"))
}

impl RuleConditions {
    /// What makes the conditions impossible to meet (a minimum total above the maximum).
    pub fn impossible(&self) -> Option<String> {
        match (self.min_total, self.max_total) {
            (Some(lo), Some(hi)) if lo > hi => Some(format!(
                "the minimum total {lo} is greater than the maximum total {hi}: no order could match"
            )),
            _ => None,
        }
    }

    /// Whether every set condition holds for `order`.
    pub fn matches(&self, order: &RuleInput<'_>) -> bool {
        (self.marketplaces.is_empty() || self.marketplaces.contains(&order.marketplace))
            && (self.ship_service_levels.is_empty()
                || order.ship_service_level.is_some_and(|l| {
                    self.ship_service_levels
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(l))
                }))
            && (self.states.is_empty()
                || order
                    .state
                    .is_some_and(|s| self.states.iter().any(|x| x == s)))
            && (self.skus.is_empty() || order.skus.iter().any(|s| self.skus.contains(s)))
            && self
                .min_total
                .is_none_or(|m| order.order_total.is_some_and(|t| t >= m))
            && self
                .max_total
                .is_none_or(|m| order.order_total.is_some_and(|t| t <= m))
            && self.prime.is_none_or(|p| p == order.prime)
            && self.time_slot.is_none_or(|t| t == order.time_slot)
    }
}

/// A rule with its position and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRule<T> {
    pub position: i32,
    pub conditions: RuleConditions,
    pub target: T,
}

/// The target of the first rule (lowest position) that matches.
pub fn first_match<'r, T>(rules: &'r [DeliveryRule<T>], order: &RuleInput<'_>) -> Option<&'r T> {
    let mut sorted: Vec<&DeliveryRule<T>> = rules.iter().collect();
    sorted.sort_by_key(|r| r.position);
    sorted
        .into_iter()
        .find(|r| r.conditions.matches(order))
        .map(|r| &r.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(skus: &'a [String]) -> RuleInput<'a> {
        RuleInput {
            marketplace: Marketplace::Japan,
            ship_service_level: Some("Expedited"),
            state: Some("東京都"),
            skus,
            order_total: Some(Decimal::from(5000)),
            prime: true,
            time_slot: false,
        }
    }

    #[test]
    fn first_match_wins_by_position() {
        let skus = vec!["SKU-1".to_string()];
        let rules = vec![
            DeliveryRule {
                position: 20,
                conditions: RuleConditions::default(),
                target: "default",
            },
            DeliveryRule {
                position: 10,
                conditions: RuleConditions {
                    prime: Some(true),
                    ship_service_levels: vec!["expedited".into()],
                    ..Default::default()
                },
                target: "express",
            },
        ];
        assert_eq!(first_match(&rules, &input(&skus)), Some(&"express"));
        let mut other = input(&skus);
        other.prime = false;
        assert_eq!(first_match(&rules, &other), Some(&"default"));
    }

    #[test]
    fn conditions() {
        let skus = vec!["SKU-1".to_string()];
        let c = RuleConditions {
            states: vec!["北海道".into()],
            ..Default::default()
        };
        assert!(!c.matches(&input(&skus)));
        let c = RuleConditions {
            min_total: Some(Decimal::from(10_000)),
            ..Default::default()
        };
        assert!(!c.matches(&input(&skus)));
        let c = RuleConditions {
            skus: vec!["SKU-1".into()],
            marketplaces: vec![Marketplace::Japan],
            ..Default::default()
        };
        assert!(c.matches(&input(&skus)));
        let pending = RuleInput {
            state: None,
            ..input(&skus)
        };
        assert!(
            !RuleConditions {
                states: vec!["東京都".into()],
                ..Default::default()
            }
            .matches(&pending)
        );
    }

    #[test]
    fn time_slot_condition() {
        let skus = vec!["SKU-1".to_string()];
        let slot = RuleConditions {
            time_slot: Some(true),
            ..Default::default()
        };
        assert!(!slot.matches(&input(&skus)));
        let scheduled = RuleInput {
            time_slot: true,
            ..input(&skus)
        };
        assert!(slot.matches(&scheduled));
        let none = RuleConditions {
            time_slot: Some(false),
            ..Default::default()
        };
        assert!(none.matches(&input(&skus)) && !none.matches(&scheduled));
        assert!(has_time_slot(true, None));
        assert!(has_time_slot(false, Some("Scheduled")));
        assert!(!has_time_slot(false, Some("EXPEDITED")));
        let stored: RuleConditions = serde_json::from_str(r#"{"time_slot":true}"#).unwrap();
        assert_eq!(stored, slot);
    }

    #[test]
    fn unknown_condition_is_refused() {
        let err = serde_json::from_str::<RuleConditions>(r#"{"colour":"red"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"));
        let ok: RuleConditions =
            serde_json::from_str(r#"{"marketplaces":["JP"],"min_total":"3000"}"#).unwrap();
        assert_eq!(ok.min_total, Some(Decimal::from(3000)));
    }
}
