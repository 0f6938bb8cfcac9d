//! A paid order Amazon gives no buyer or ship-to for: the app lacks Amazon's PII role for it, or
//! Amazon withholds the data. The instruction is marked paid (the seed) but keeps the
//! 「Amazon 仮登録」 placeholders, which must not go out on a label: an attention entry says so.

use store::instructions::AmazonOrder;

/// The API-log code of the attention entry.
pub const CODE: &str = "paid_without_address";

/// What a paid order lacks (buyer, ship-to name or address), as the attention message; `None`
/// when the data is there.
pub fn missing_personal_data(order: &AmazonOrder) -> Option<String> {
    let blank = |v: Option<&String>| v.is_none_or(|s| s.trim().is_empty());
    let mut missing = Vec::new();
    if order.buyer.as_ref().is_none_or(|b| blank(b.name.as_ref())) {
        missing.push("buyer");
    }
    match &order.ship_to {
        None => missing.push("ship-to name and address"),
        Some(s) => {
            if blank(s.name.as_ref()) {
                missing.push("ship-to name");
            }
            if blank(s.address.as_ref()) {
                missing.push("ship-to address");
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "order {} is paid but Amazon gave no {} (the app may lack Amazon's PII role for this \
         marketplace, or Amazon withholds the data): the instruction keeps the placeholder \
         「{}」. Do not ship it on these values: check the order in Seller Central, then run \
         status sync again or enter the address in the WMS",
        order.amazon_order_id,
        missing.join(", "),
        domain::PLACEHOLDER_REGISTRATION
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::instructions::{BuyerData, ShipTo};

    fn order(buyer: Option<&str>, ship_to: Option<(&str, &str)>) -> AmazonOrder {
        AmazonOrder {
            amazon_order_id: "503-1234567-1234567".into(),
            marketplace_id: None,
            status: domain::AmazonOrderStatus::Unshipped,
            last_updated_at: chrono::Utc::now(),
            ordered_at: chrono::Utc::now(),
            ship_service_level: None,
            is_prime: false,
            currency: None,
            order_total: None,
            shipping_total: None,
            cod_fee: None,
            payment_method: domain::PaymentMethod::Other,
            buyer: buyer.map(|n| BuyerData {
                name: Some(n.to_owned()),
                ..BuyerData::default()
            }),
            ship_to: ship_to.map(|(name, address)| ShipTo {
                name: Some(name.to_owned()),
                address: Some(address.to_owned()),
                ..ShipTo::default()
            }),
            delivery_preference: None,
            details: Default::default(),
            lines: vec![],
        }
    }

    #[test]
    fn names_what_is_missing() {
        assert_eq!(
            missing_personal_data(&order(Some("山田"), Some(("山田", "神宮前1-2-3")))),
            None
        );
        let none = missing_personal_data(&order(None, None)).unwrap();
        assert!(none.contains("buyer, ship-to name and address"), "{none}");
        let blank = missing_personal_data(&order(Some("山田"), Some(("山田", " ")))).unwrap();
        assert!(blank.contains("no ship-to address"), "{blank}");
    }
}
