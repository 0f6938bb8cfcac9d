//! Amazon's `Order` (v2026-01-01) → the WMS's [`AmazonOrder`]. PII is copied into the
//! instruction only; nothing here logs it.

use domain::{AmazonOrderStatus, PaymentMethod};
use rust_decimal::Decimal;
use spapi::orders::{DeliveryPreference, Order, ProceedsBreakdown, ProceedsType};
use store::instructions::{AmazonLine, AmazonOrder, BuyerData, OrderDetails, ShipTo};

/// Why an order cannot be imported (it is skipped and listed in the API log; the others go on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("order has no fulfillment data (includedData=FULFILLMENT missing)")]
    NoFulfillment,
    #[error("unknown fulfillment status {0:?}")]
    UnknownStatus(String),
    #[error("order item {0} has no seller SKU")]
    NoSku(String),
    #[error("order item {0} has quantity 0")]
    ZeroQuantity(String),
    #[error("order has no items")]
    NoItems,
    /// Amazon's address and buyer fields are tens of characters; a field this long is bad
    /// input. The order is not imported (and its content is never logged).
    #[error(
        "{field} is {chars} characters long (at most {MAX_FIELD_CHARS} accepted); the order was not imported: check it in Seller Central"
    )]
    FieldTooLong { field: &'static str, chars: usize },
}

/// Longest buyer, ship-to or title field accepted from Amazon.
pub const MAX_FIELD_CHARS: usize = 1_000;

fn check_len(field: &'static str, value: &Option<String>) -> Result<(), ConvertError> {
    match value {
        Some(v) if v.chars().count() > MAX_FIELD_CHARS => Err(ConvertError::FieldTooLong {
            field,
            chars: v.chars().count(),
        }),
        _ => Ok(()),
    }
}

/// The sum of the breakdown entries of one proceeds category; `None` when there is none.
fn category(breakdowns: &[ProceedsBreakdown], kind: &ProceedsType) -> Option<Decimal> {
    breakdowns
        .iter()
        .filter(|b| &b.kind == kind)
        .map(|b| b.subtotal.amount)
        .reduce(|a, b| a + b)
}

/// An order-level charge (`SHIPPING`, `COD_FEE`): Amazon's order breakdown, which aggregates
/// the items', or else the items' own; zero when Amazon lists proceeds without it, `None` when
/// it sent no proceeds at all.
fn order_charge(o: &Order, kind: &ProceedsType) -> Option<Decimal> {
    if let Some(p) = o.proceeds.as_ref().filter(|p| !p.breakdowns.is_empty()) {
        return Some(category(&p.breakdowns, kind).unwrap_or_default());
    }
    let items: Vec<_> = o
        .order_items
        .iter()
        .filter_map(|i| i.proceeds.as_ref())
        .collect();
    (!items.is_empty()).then(|| {
        items
            .iter()
            .filter_map(|p| category(&p.breakdowns, kind))
            .sum()
    })
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Converts an order. Buyer, ship-to, payment method and prices are taken only once Amazon
/// considers the order paid (UNSHIPPED or later); before that the placeholders apply.
///
/// A line's total (合計金額(明細)) is the item's own price × quantity: Amazon's `ITEM` proceeds
/// of the item, else unit price × quantity. The item's `proceedsTotal` is not used: it includes
/// shipping and the COD fee, which are kept as the order's own amounts (`SHIPPING`, `COD_FEE`).
pub fn to_amazon_order(o: &Order) -> Result<AmazonOrder, ConvertError> {
    let fs = o.fulfillment_status().ok_or(ConvertError::NoFulfillment)?;
    let status: AmazonOrderStatus = fs
        .as_str()
        .parse()
        .map_err(|_| ConvertError::UnknownStatus(fs.as_str().to_owned()))?;
    let paid = status.is_paid();
    if o.order_items.is_empty() {
        return Err(ConvertError::NoItems);
    }
    let mut lines = Vec::with_capacity(o.order_items.len());
    let mut currency = None;
    for it in &o.order_items {
        let sku = non_empty(&it.product.seller_sku)
            .ok_or_else(|| ConvertError::NoSku(it.order_item_id.clone()))?;
        if it.quantity_ordered == 0 {
            return Err(ConvertError::ZeroQuantity(it.order_item_id.clone()));
        }
        let quantity = i32::try_from(it.quantity_ordered).unwrap_or(i32::MAX);
        let unit = it
            .product
            .price
            .as_ref()
            .and_then(|p| p.unit_price.as_ref());
        if currency.is_none() {
            currency = unit.map(|m| m.currency_code.clone());
        }
        let unit_price = if paid { unit.map(|m| m.amount) } else { None };
        let line_total = if paid {
            it.proceeds
                .as_ref()
                .and_then(|p| category(&p.breakdowns, &ProceedsType::Item))
                .or_else(|| unit_price.map(|u| u * Decimal::from(quantity)))
        } else {
            None
        };
        let gift = it
            .fulfillment
            .as_ref()
            .and_then(|f| f.packing.as_ref())
            .and_then(|p| p.gift_option.as_ref());
        let gift_wrap_level = gift.and_then(|g| non_empty(&g.gift_wrap_level));
        let gift_message = gift.and_then(|g| non_empty(&g.gift_message));
        lines.push(AmazonLine {
            order_item_id: it.order_item_id.clone(),
            sku,
            title: non_empty(&it.product.title),
            quantity,
            unit_price,
            line_total,
            is_gift: gift.is_some(),
            gift_wrap_level,
            gift_message,
            cod_fee: if paid {
                it.proceeds
                    .as_ref()
                    .and_then(|p| category(&p.breakdowns, &ProceedsType::CodFee))
            } else {
                None
            },
        });
    }
    let grand_total = o.proceeds.as_ref().and_then(|p| p.grand_total.as_ref());
    let buyer = match (&o.buyer, paid) {
        (Some(b), true) => Some(BuyerData {
            name: non_empty(&b.buyer_name),
            email: non_empty(&b.buyer_email),
            company_name: non_empty(&b.buyer_company_name),
            purchase_order_number: non_empty(&b.buyer_purchase_order_number),
        }),
        _ => None,
    };
    let ship_to = match (
        o.recipient
            .as_ref()
            .and_then(|r| r.delivery_address.as_ref()),
        paid,
    ) {
        (Some(a), true) => {
            let address: Vec<String> = [&a.address_line1, &a.address_line2, &a.address_line3]
                .into_iter()
                .filter_map(non_empty)
                .collect();
            Some(ShipTo {
                name: non_empty(&a.name),
                postal_code: non_empty(&a.postal_code),
                country: non_empty(&a.country_code),
                state: non_empty(&a.state_or_region),
                city: non_empty(&a.city),
                address: (!address.is_empty()).then(|| address.join(" ")),
                phone: non_empty(&a.phone),
            })
        }
        _ => None,
    };
    let payment_method = if paid {
        let methods: Vec<&str> = o
            .payment
            .as_ref()
            .map(|p| {
                p.payment_executions
                    .iter()
                    .filter_map(|e| e.payment_method.as_deref())
                    .collect()
            })
            .unwrap_or_default();
        match PaymentMethod::from_amazon(methods) {
            // Paid, but Amazon named no method: "other" (the placeholder is for Pending only).
            PaymentMethod::Placeholder => PaymentMethod::Other,
            m => m,
        }
    } else {
        PaymentMethod::Placeholder
    };
    if let Some(b) = &buyer {
        check_len("buyer name", &b.name)?;
        check_len("buyer e-mail", &b.email)?;
        check_len("buyer company", &b.company_name)?;
        check_len("purchase order number", &b.purchase_order_number)?;
    }
    let delivery_preference = if paid {
        o.recipient
            .as_ref()
            .and_then(|r| r.delivery_preference.as_ref())
            .and_then(preference_text)
    } else {
        None
    };
    check_len("delivery preference", &delivery_preference)?;
    if let Some(t) = &ship_to {
        for (field, value) in [
            ("ship-to name", &t.name),
            ("ship-to postal code", &t.postal_code),
            ("ship-to state", &t.state),
            ("ship-to city", &t.city),
            ("ship-to address", &t.address),
            ("ship-to phone", &t.phone),
        ] {
            check_len(field, value)?;
        }
    }
    for l in &lines {
        check_len("item title", &l.title)?;
        check_len("gift message", &l.gift_message)?;
        check_len("gift wrap level", &l.gift_wrap_level)?;
    }
    let programs = |p: &str| o.programs.iter().any(|x| x == p);
    let window = |w: Option<&spapi::orders::DateTimeRange>| {
        (
            w.and_then(|w| w.earliest_date_time),
            w.and_then(|w| w.latest_date_time),
        )
    };
    let f = o.fulfillment.as_ref();
    let (earliest_ship_at, latest_ship_at) = window(f.and_then(|f| f.ship_by_window.as_ref()));
    let (earliest_delivery_at, latest_delivery_at) =
        window(f.and_then(|f| f.deliver_by_window.as_ref()));
    // The window the buyer chose, per item: the order's is the earliest start and latest end.
    let slots: Vec<_> = o
        .order_items
        .iter()
        .filter_map(|i| i.fulfillment.as_ref()?.shipping.as_ref())
        .filter_map(|s| s.scheduled_delivery_window.as_ref())
        .collect();
    let details = OrderDetails {
        is_business: programs("AMAZON_BUSINESS"),
        is_premium: programs("PREMIUM"),
        earliest_ship_at,
        latest_ship_at,
        earliest_delivery_at,
        latest_delivery_at,
        scheduled_delivery_from: slots.iter().filter_map(|w| w.earliest_date_time).min(),
        scheduled_delivery_to: slots.iter().filter_map(|w| w.latest_date_time).max(),
    };
    Ok(AmazonOrder {
        amazon_order_id: o.order_id.clone(),
        marketplace_id: o.marketplace_id().map(str::to_owned),
        status,
        last_updated_at: o.last_updated_time,
        ordered_at: o.created_time,
        ship_service_level: o
            .fulfillment
            .as_ref()
            .and_then(|f| non_empty(&f.fulfillment_service_level)),
        is_prime: o.programs.iter().any(|p| p == "PRIME"),
        currency: grand_total.map(|m| m.currency_code.clone()).or(currency),
        order_total: if paid {
            grand_total.map(|m| m.amount)
        } else {
            None
        },
        shipping_total: paid
            .then(|| order_charge(o, &ProceedsType::Shipping))
            .flatten(),
        cod_fee: paid
            .then(|| order_charge(o, &ProceedsType::CodFee))
            .flatten(),
        payment_method,
        buyer,
        ship_to,
        delivery_preference,
        details,
        lines,
    })
}

/// The buyer's delivery preference as one line of text for the warehouse (`drop-off: …;
/// instructions: …; hours: MON 09:00-12:00, …; capabilities: …`); `None` when it says nothing.
pub fn preference_text(p: &DeliveryPreference) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(d) = non_empty(&p.drop_off_location) {
        parts.push(format!("drop-off: {d}"));
    }
    if let Some(i) = non_empty(&p.address_instruction) {
        parts.push(format!("instructions: {i}"));
    }
    let hours: Vec<String> = p
        .delivery_time
        .iter()
        .flat_map(|t| &t.business_hours)
        .map(|h| {
            let windows: Vec<String> = h
                .time_windows
                .iter()
                .map(|w| {
                    let hm = |t: Option<spapi::orders::HourMinute>| {
                        t.map_or_else(String::new, |t| format!("{:02}:{:02}", t.hour, t.minute))
                    };
                    format!("{}-{}", hm(w.start_time), hm(w.end_time))
                })
                .collect();
            format!(
                "{} {}",
                h.day_of_week.as_deref().unwrap_or("?"),
                windows.join(" ")
            )
            .trim()
            .to_owned()
        })
        .collect();
    if !hours.is_empty() {
        parts.push(format!("hours: {}", hours.join(", ")));
    }
    if !p.delivery_capabilities.is_empty() {
        parts.push(format!(
            "capabilities: {}",
            p.delivery_capabilities.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: serde_json::Value) -> Order {
        serde_json::from_value(json).unwrap()
    }

    fn base(status: &str) -> serde_json::Value {
        serde_json::json!({
            "orderId": "503-1234567-1234567",
            "createdTime": "2026-11-27T01:00:00Z",
            "lastUpdatedTime": "2026-11-27T02:00:00Z",
            "programs": ["PRIME"],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1VC38T7YXB528"},
            "buyer": {"buyerName": "山田 太郎", "buyerEmail": "x@marketplace.amazon.co.jp"},
            "recipient": {"deliveryAddress": {"name": "山田 太郎", "addressLine1": "千代田1-1", "addressLine2": "101号",
                "city": "千代田区", "stateOrRegion": "東京都", "postalCode": "100-0001", "countryCode": "JP", "phone": "03-0000-0000"}},
            "proceeds": {"grandTotal": {"amount": "3630", "currencyCode": "JPY"}},
            "payment": {"paymentExecutions": [{"paymentMethod": "CashOnDelivery"}]},
            "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT", "fulfillmentServiceLevel": "EXPEDITED"},
            "orderItems": [{"orderItemId": "11111111111111", "quantityOrdered": 2,
                "product": {"sellerSku": "SKU-0001", "title": "ボトル", "price": {"unitPrice": {"amount": "1650", "currencyCode": "JPY"}}}}]
        })
    }

    #[test]
    fn unshipped_orders_carry_buyer_address_payment_and_prices() {
        let a = to_amazon_order(&order(base("UNSHIPPED"))).unwrap();
        assert_eq!(a.status, AmazonOrderStatus::Unshipped);
        assert_eq!(a.payment_method, PaymentMethod::CashOnDelivery);
        let s = a.ship_to.unwrap();
        assert_eq!(s.state.as_deref(), Some("東京都"));
        assert_eq!(s.address.as_deref(), Some("千代田1-1 101号"));
        assert_eq!(a.lines[0].unit_price, Some(Decimal::from(1650)));
        assert_eq!(a.lines[0].line_total, Some(Decimal::from(3300)));
        assert_eq!(a.order_total, Some(Decimal::from(3630)));
        assert!(a.is_prime);
    }

    /// 合計金額(明細) is the line's own amount. Seed (ステータス同期, 入金済への更新): "処理が成功すると
    /// コマースロボの出荷指示が「入金済み」に更新されます。また、下記の情報を更新します。… ・単価
    /// ・合計金額(明細)". Amazon's item `proceedsTotal` also carries the shipping charge and the
    /// COD fee; the line total must be the item price × quantity, and shipping and COD fee stay
    /// the order's own amounts.
    #[test]
    fn line_total_is_the_item_price_and_shipping_and_cod_fee_are_kept_apart() {
        let money = |a: u32| serde_json::json!({"amount": a.to_string(), "currencyCode": "JPY"});
        let (item, shipping, cod) = (1650 * 2, 500, 330);
        let breakdowns = serde_json::json!([
            {"type": "ITEM", "subtotal": money(item)},
            {"type": "SHIPPING", "subtotal": money(shipping)},
            {"type": "COD_FEE", "subtotal": money(cod)},
        ]);
        let mut j = base("UNSHIPPED");
        j["orderItems"][0]["proceeds"] = serde_json::json!({
            "proceedsTotal": money(item + shipping + cod), "breakdowns": breakdowns});
        j["proceeds"] = serde_json::json!({
            "grandTotal": money(item + shipping + cod), "breakdowns": breakdowns});

        let a = to_amazon_order(&order(j.clone())).unwrap();
        assert_eq!(a.lines[0].unit_price, Some(Decimal::from(1650)));
        assert_eq!(a.lines[0].line_total, Some(Decimal::from(item)));
        assert_eq!(a.shipping_total, Some(Decimal::from(shipping)));
        assert_eq!(a.cod_fee, Some(Decimal::from(cod)));
        assert_eq!(a.order_total, Some(Decimal::from(item + shipping + cod)));

        // Only the items' breakdowns: the same amounts.
        j["proceeds"] = serde_json::json!({"grandTotal": money(item + shipping + cod)});
        let b = to_amazon_order(&order(j.clone())).unwrap();
        assert_eq!(
            (b.lines[0].line_total, b.shipping_total, b.cod_fee),
            (a.lines[0].line_total, a.shipping_total, a.cod_fee)
        );

        // Free shipping, no COD fee: zero, not unknown.
        j["orderItems"][0]["proceeds"] = serde_json::json!({
            "proceedsTotal": money(item), "breakdowns": [{"type": "ITEM", "subtotal": money(item)}]});
        let c = to_amazon_order(&order(j)).unwrap();
        assert_eq!(c.lines[0].line_total, Some(Decimal::from(item)));
        assert_eq!(
            (c.shipping_total, c.cod_fee),
            (Some(Decimal::ZERO), Some(Decimal::ZERO))
        );
    }

    /// Issue 21 item 4: the details a warehouse packs and ships by, from Amazon's v2026 fields.
    #[test]
    fn packing_and_shipping_details_are_carried() {
        let mut j = base("UNSHIPPED");
        j["programs"] = serde_json::json!(["PRIME", "PREMIUM", "AMAZON_BUSINESS"]);
        j["buyer"]["buyerCompanyName"] = serde_json::json!("株式会社テスト");
        j["buyer"]["buyerPurchaseOrderNumber"] = serde_json::json!("PO-778");
        j["recipient"]["deliveryPreference"] = serde_json::json!({
            "dropOffLocation": "FRONT_DOOR", "addressInstruction": "裏口",
            "deliveryTime": {"businessHours": [{"dayOfWeek": "MON", "timeWindows": [
                {"startTime": {"hour": 9, "minute": 0}, "endTime": {"hour": 12, "minute": 30}}]}]},
            "deliveryCapabilities": ["HAS_ACCESS_POINT"]});
        j["fulfillment"]["shipByWindow"] = serde_json::json!({
            "earliestDateTime": "2026-11-27T01:00:00Z", "latestDateTime": "2026-11-28T14:59:59Z"});
        j["fulfillment"]["deliverByWindow"] = serde_json::json!({
            "earliestDateTime": "2026-11-29T00:00:00Z", "latestDateTime": "2026-11-30T14:59:59Z"});
        let second = serde_json::json!({"orderItemId": "22222222222222", "quantityOrdered": 1,
            "product": {"sellerSku": "SKU-0002"},
            "proceeds": {"proceedsTotal": {"amount": "330", "currencyCode": "JPY"},
                "breakdowns": [{"type": "COD_FEE", "subtotal": {"amount": "330", "currencyCode": "JPY"}}]},
            "fulfillment": {"shipping": {"scheduledDeliveryWindow": {
                "earliestDateTime": "2026-11-29T09:00:00Z", "latestDateTime": "2026-11-29T12:00:00Z"}}}});
        j["orderItems"].as_array_mut().unwrap().push(second);
        j["orderItems"][0]["fulfillment"] = serde_json::json!({
            "packing": {"giftOption": {"giftMessage": "お誕生日おめでとう", "giftWrapLevel": "PREMIUM"}},
            "shipping": {"scheduledDeliveryWindow": {
                "earliestDateTime": "2026-11-29T08:00:00Z", "latestDateTime": "2026-11-29T11:00:00Z"}}});

        let a = to_amazon_order(&order(j.clone())).unwrap();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(a.is_prime && a.details.is_premium && a.details.is_business);
        let b = a.buyer.as_ref().unwrap();
        assert_eq!(b.company_name.as_deref(), Some("株式会社テスト"));
        assert_eq!(b.purchase_order_number.as_deref(), Some("PO-778"));
        assert_eq!(
            a.delivery_preference.as_deref(),
            Some(
                "drop-off: FRONT_DOOR; instructions: 裏口; hours: MON 09:00-12:30; capabilities: HAS_ACCESS_POINT"
            )
        );
        assert_eq!(a.details.latest_ship_at, Some(at("2026-11-28T14:59:59Z")));
        assert_eq!(a.details.earliest_ship_at, Some(at("2026-11-27T01:00:00Z")));
        assert_eq!(
            a.details.earliest_delivery_at,
            Some(at("2026-11-29T00:00:00Z"))
        );
        assert_eq!(
            a.details.latest_delivery_at,
            Some(at("2026-11-30T14:59:59Z"))
        );
        // The order's window spans its items' windows.
        assert_eq!(
            a.details.scheduled_delivery_from,
            Some(at("2026-11-29T08:00:00Z"))
        );
        assert_eq!(
            a.details.scheduled_delivery_to,
            Some(at("2026-11-29T12:00:00Z"))
        );
        let (gift, plain) = (&a.lines[0], &a.lines[1]);
        assert!(gift.is_gift && !plain.is_gift && a.is_gift());
        assert_eq!(gift.gift_wrap_level.as_deref(), Some("PREMIUM"));
        assert_eq!(gift.gift_message.as_deref(), Some("お誕生日おめでとう"));
        assert_eq!(
            (gift.cod_fee, plain.cod_fee),
            (None, Some(Decimal::from(330)))
        );

        // Pending: programs and windows are known, the personal details are not.
        let p = to_amazon_order(&order({
            let mut p = j.clone();
            p["fulfillment"]["fulfillmentStatus"] = serde_json::json!("PENDING");
            p
        }))
        .unwrap();
        assert!(p.details.is_business && p.details.latest_ship_at.is_some());
        assert!(p.buyer.is_none() && p.delivery_preference.is_none());
        assert_eq!(p.lines[1].cod_fee, None);

        // A plain order has none of it.
        let plain = to_amazon_order(&order(base("UNSHIPPED"))).unwrap();
        assert!(!plain.details.is_business && !plain.details.is_premium && !plain.is_gift());
        assert_eq!(plain.details.scheduled_delivery_from, None);
        assert_eq!(plain.delivery_preference, None);
    }

    #[test]
    fn oversized_fields_are_refused_without_their_content() {
        let mut j = base("UNSHIPPED");
        j["recipient"]["deliveryAddress"]["addressLine1"] =
            serde_json::json!("東".repeat(MAX_FIELD_CHARS + 1));
        let err = to_amazon_order(&order(j)).unwrap_err();
        assert_eq!(
            err,
            ConvertError::FieldTooLong {
                field: "ship-to address",
                chars: MAX_FIELD_CHARS + 1 + " 101号".chars().count()
            }
        );
        assert!(
            !err.to_string().contains('東'),
            "the message must not carry the content"
        );
    }

    #[test]
    fn pending_orders_get_placeholders() {
        let a = to_amazon_order(&order(base("PENDING"))).unwrap();
        assert_eq!(a.payment_method, PaymentMethod::Placeholder);
        assert!(a.buyer.is_none() && a.ship_to.is_none());
        assert_eq!(a.lines[0].unit_price, None);
        assert_eq!(a.order_total, None);
        assert_eq!((a.shipping_total, a.cod_fee), (None, None));
    }

    #[test]
    fn broken_orders_are_refused() {
        let mut j = base("UNSHIPPED");
        j["orderItems"][0]["product"]["sellerSku"] = serde_json::json!("");
        assert!(matches!(
            to_amazon_order(&order(j)),
            Err(ConvertError::NoSku(_))
        ));
        let mut j = base("UNSHIPPED");
        j.as_object_mut().unwrap().remove("fulfillment");
        assert_eq!(to_amazon_order(&order(j)), Err(ConvertError::NoFulfillment));
    }
}
