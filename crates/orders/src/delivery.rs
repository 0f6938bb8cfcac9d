//! Delivery-rule picking for an Amazon order (the rules themselves are `domain::delivery_rules`).

use domain::{
    Marketplace,
    delivery_rules::{DeliveryRule, RuleInput, first_match},
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
    };
    first_match(rules, &input)
}
