//! `POST_ORDER_ACKNOWLEDGEMENT_DATA`: the order acknowledgement feed (XSD
//! `OrderAcknowledgement`). `StatusCode=Failure` with a `CancelReason` on its items cancels the
//! order (this is how a seller accepts a buyer's cancellation request for a seller-fulfilled
//! order: `CancelReason=BuyerCanceled`); `Success` acknowledges it and changes nothing. The
//! processing report is the same `ProcessingReport` as the fulfillment feed's.

// A message result is the report line itself; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use super::fulfillment::{MessageResult, Outcome, codes, count, envelope, fail, message_id};
use super::xml::Element;
use crate::model::{OrderStatus, StatusChange};
use crate::state::State;

/// `CancelReason` values of the XSD.
pub const CANCEL_REASONS: [&str; 14] = [
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
    "BuyerCanceled",
    "GeneralAdjustment",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "CustomerReturn",
    "MerchandiseNotReceived",
    "CannotVerifyInformation",
    "PricingError",
    "RejectOrder",
    "WeatherDelay",
];

pub(crate) fn process(st: &mut State, seller_id: &str, input: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let root = match envelope(input, "OrderAcknowledgement") {
        Ok(root) => root,
        Err(refused) => return refused,
    };
    let mut seen = HashSet::new();
    for msg in root.children_named("Message") {
        out.processed += 1;
        let result = message_id(msg, &mut seen).and_then(|id| apply(st, seller_id, msg, &id));
        count(&mut out, result);
    }
    out
}

fn apply(
    st: &mut State,
    seller_id: &str,
    msg: &Element,
    message_id: &str,
) -> Result<Option<MessageResult>, MessageResult> {
    let schema = |en: &str, ja: &str| fail(message_id, codes::SCHEMA, en.into(), ja.into(), None);
    let ack = msg.child("OrderAcknowledgement").ok_or_else(|| {
        schema(
            "The message is invalid: OrderAcknowledgement is required.",
            "メッセージが無効です: OrderAcknowledgement が必要です。",
        )
    })?;
    let order_id = ack.text_of("AmazonOrderID").unwrap_or("").to_owned();
    if !super::fulfillment::amazon_order_id_pattern(&order_id) {
        return Err(schema(
            "AmazonOrderID must be a 3-7-7 digit order id.",
            "AmazonOrderID は 3-7-7 桁の注文番号である必要があります。",
        ));
    }
    let failure = match ack.text_of("StatusCode") {
        Some("Success") => false,
        Some("Failure") => true,
        _ => {
            return Err(schema(
                "StatusCode must be Success or Failure.",
                "StatusCode は Success または Failure である必要があります。",
            ));
        }
    };
    let err = |code: u32, en: String, ja: String| fail(message_id, code, en, ja, Some(&order_id));
    let mut reason = None;
    let items: Vec<&Element> = ack.children_named("Item").collect();
    for item in &items {
        let code = item.text_of("AmazonOrderItemCode").unwrap_or("");
        if code.len() != 14 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                codes::SCHEMA,
                format!("AmazonOrderItemCode '{code}' must be 14 digits."),
                format!("AmazonOrderItemCode「{code}」は 14 桁の数字である必要があります。"),
            ));
        }
        if let Some(r) = item.text_of("CancelReason") {
            if !CANCEL_REASONS.contains(&r) {
                return Err(err(
                    codes::SCHEMA,
                    format!(
                        "CancelReason '{r}' is not one of {}.",
                        CANCEL_REASONS.join(", ")
                    ),
                    format!("CancelReason「{r}」は使用できません。"),
                ));
            }
            reason.get_or_insert(r.to_owned());
        }
    }
    let order = st
        .orders
        .get(&order_id)
        .filter(|o| o.seller_id == seller_id)
        .ok_or_else(|| {
            err(
                codes::ORDER_NOT_FOUND,
                format!("The order ID {order_id} was not found for this seller."),
                format!("注文番号 {order_id} が見つかりません。"),
            )
        })?;
    for item in &items {
        let code = item.text_of("AmazonOrderItemCode").unwrap_or("");
        if !order.items.iter().any(|i| i.order_item_id == code) {
            let mut r = err(
                codes::ITEM_MISMATCH,
                format!("The AmazonOrderItemCode {code} is not part of order {order_id}."),
                format!("注文商品番号 {code} は注文 {order_id} に含まれていません。"),
            );
            r.item_code = Some(code.to_owned());
            return Err(r);
        }
    }
    if !failure {
        return Ok(None);
    }
    let Some(reason) = reason else {
        return Err(err(
            codes::MISSING_DATA,
            "A Failure acknowledgement needs a CancelReason on its items.".into(),
            "Failure の確認には商品ごとの CancelReason が必要です。".into(),
        ));
    };
    if matches!(
        order.status,
        OrderStatus::Shipped | OrderStatus::PartiallyShipped
    ) {
        return Err(err(
            codes::NOT_SHIPPABLE,
            format!("The order {order_id} has been shipped and cannot be cancelled."),
            format!("注文番号 {order_id} は出荷済みのためキャンセルできません。"),
        ));
    }
    if order.status == OrderStatus::Cancelled {
        return Ok(None);
    }
    st.set_order_status(
        &order_id,
        StatusChange::Cancelled {
            cancelled_by: Some("MERCHANT".into()),
            reason: Some(reason),
        },
    )
    .map_err(|e| err(codes::NOT_SHIPPABLE, e.to_string(), e.to_string()))?;
    Ok(None)
}
