//! Delivery-rule picking for an Amazon order (the rules themselves are `domain::delivery_rules`).

use domain::{
    Marketplace,
    delivery_rules::{DeliveryRule, RuleInput, first_match, has_time_slot},
};
use store::{catalog::DeliveryMethod, instructions::AmazonOrder};

/// The first delivery rule matching the order, if any (an order of an unknown marketplace
/// matches none).
pub fn pick_delivery<'r>(
    rules: &'r [DeliveryRule<DeliveryMethod>],
    order: &AmazonOrder,
) -> Option<&'r DeliveryMethod> {
    let marketplace = Marketplace::from_id(order.marketplace_id.as_deref()?).ok()?;
    let skus: Vec<String> = order.lines.iter().map(|l| l.sku.clone()).collect();
    let input = RuleInput {
        marketplace,
        ship_service_level: order.ship_service_level.as_deref(),
        state: order.ship_to.as_ref().and_then(|s| s.state.as_deref()),
        skus: &skus,
        order_total: order.order_total,
        prime: order.is_prime,
        time_slot: has_time_slot(
            order.details.scheduled_delivery_from.is_some(),
            order.ship_service_level.as_deref(),
        ),
    };
    first_match(rules, &input)
}

/// What `try_rules` found for an imported order: what the rules look at, and each rule's verdict
/// in the order they are tried (`ctl rules test`, the console's 変換ロボット).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTrial {
    pub marketplace: Marketplace,
    pub ship_service_level: Option<String>,
    /// The ship-to prefecture or state (not personal on its own; nothing else of the address).
    pub state: Option<String>,
    pub skus: Vec<String>,
    pub order_total: Option<rust_decimal::Decimal>,
    pub prime: bool,
    /// The buyer chose a delivery window.
    pub time_slot: bool,
    /// (position, delivery method code, matches), lowest position first.
    pub verdicts: Vec<(i32, String, bool)>,
    /// The delivery method the first matching rule gives.
    pub winner: Option<String>,
}

/// Why a rule trial could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("order {0} is not imported for this shop")]
    NotImported(String),
    #[error("order {0} has no known marketplace")]
    NoMarketplace(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Tries the shop's delivery rules on an imported order (by Amazon order id), rule by rule.
/// The ship-to state is read from the sealed data with `keys`.
pub async fn try_rules(
    conn: &mut sqlx::PgConnection,
    keys: &crypto::Keyring,
    shop_id: uuid::Uuid,
    amazon_order_id: &str,
) -> Result<RuleTrial, TrialError> {
    let inst = store::instructions::by_order(&mut *conn, shop_id, amazon_order_id)
        .await?
        .ok_or_else(|| TrialError::NotImported(amazon_order_id.to_owned()))?;
    let skus: Vec<String> = store::instructions::lines(&mut *conn, inst.id)
        .await?
        .into_iter()
        .map(|l| l.sku)
        .collect();
    let personal = store::pii::read(&mut *conn, keys, inst.id)
        .await?
        .unwrap_or_default();
    let marketplace = inst
        .marketplace_id
        .as_deref()
        .and_then(|m| Marketplace::from_id(m).ok())
        .ok_or_else(|| TrialError::NoMarketplace(amazon_order_id.to_owned()))?;
    let input = RuleInput {
        marketplace,
        ship_service_level: inst.ship_service_level.as_deref(),
        state: personal.ship_to_state.as_deref(),
        skus: &skus,
        order_total: inst.order_total,
        prime: inst.is_prime,
        time_slot: has_time_slot(
            inst.scheduled_delivery_from.is_some(),
            inst.ship_service_level.as_deref(),
        ),
    };
    let rules = store::catalog::active_rules(&mut *conn, shop_id).await?;
    let winner = first_match(&rules, &input).map(|m| m.code.clone());
    let verdicts = rules
        .iter()
        .map(|r| {
            (
                r.position,
                r.target.code.clone(),
                r.conditions.matches(&input),
            )
        })
        .collect();
    Ok(RuleTrial {
        marketplace,
        ship_service_level: inst.ship_service_level.clone(),
        state: personal.ship_to_state.clone(),
        order_total: inst.order_total,
        prime: inst.is_prime,
        time_slot: input.time_slot,
        skus,
        verdicts,
        winner,
    })
}
