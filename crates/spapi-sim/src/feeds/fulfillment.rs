//! `POST_ORDER_FULFILLMENT_DATA`: validation, application and the XML ProcessingReport.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::xml::{self, Element};
use crate::shipment::{ShipError, Shipment, apply_shipment, check_shipment};
use crate::state::State;

pub use crate::shipment::tracking_number_valid;

/// Simulator's own `ResultMessageCode` numbers (Amazon does not document its numbers).
pub mod codes {
    /// The document is not well-formed XML.
    pub const XML_PARSE: u32 = 5000;
    /// A required element is missing or malformed (schema violation).
    pub const SCHEMA: u32 = 5001;
    /// Required shipping data missing (CarrierCode, CarrierName with Other, tracking).
    pub const MISSING_DATA: u32 = 25;
    /// A value is invalid (tracking number format, ship date).
    pub const INVALID_VALUE: u32 = 18028;
    /// The order does not exist for this seller.
    pub const ORDER_NOT_FOUND: u32 = 18082;
    /// The order cannot be shipped (pending or cancelled).
    pub const NOT_SHIPPABLE: u32 = 18083;
    /// The order was already shipped (warning).
    pub const ALREADY_SHIPPED: u32 = 18084;
    /// An item or quantity does not match the order.
    pub const ITEM_MISMATCH: u32 = 18085;
}

/// Error or warning for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageResult {
    pub message_id: String,
    pub error: bool,
    pub code: u32,
    pub en: String,
    pub ja: String,
    pub order_id: Option<String>,
    pub item_code: Option<String>,
}

/// What processing a fulfillment feed produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub processed: u32,
    pub successful: u32,
    pub with_error: u32,
    pub with_warning: u32,
    pub results: Vec<MessageResult>,
}

pub(crate) fn fail(
    message_id: &str,
    code: u32,
    en: String,
    ja: String,
    order_id: Option<&str>,
) -> MessageResult {
    MessageResult {
        message_id: message_id.to_string(),
        error: true,
        code,
        en,
        ja,
        order_id: order_id.map(str::to_string),
        item_code: None,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `\w{3}-\w{7}-\w{7}` as in the XSD.
pub(crate) fn amazon_order_id_pattern(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && [3usize, 7, 7]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.chars().count() == *n && p.chars().all(is_word))
}

fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Validates one `<Message>` into a shipment (or the error to report).
// The error is the report line itself, built once per invalid message: boxing buys nothing.
#[allow(clippy::result_large_err)]
fn read_message(msg: &Element, message_id: &str) -> Result<(String, Shipment), MessageResult> {
    let schema = |en: &str, ja: &str| {
        fail(
            message_id,
            codes::SCHEMA,
            format!("The message is invalid: {en}"),
            format!("メッセージが無効です: {ja}"),
            None,
        )
    };
    let Some(of) = msg.child("OrderFulfillment") else {
        return Err(schema(
            "the OrderFulfillment element is missing.",
            "OrderFulfillment 要素がありません。",
        ));
    };
    let Some(order_id) = of.text_of("AmazonOrderID") else {
        return Err(schema(
            "the AmazonOrderID element is missing.",
            "AmazonOrderID 要素がありません。",
        ));
    };
    if !amazon_order_id_pattern(order_id) {
        let mut r = schema(
            &format!(
                "AmazonOrderID '{order_id}' does not match the pattern \\w{{3}}-\\w{{7}}-\\w{{7}}."
            ),
            &format!("AmazonOrderID「{order_id}」の形式が正しくありません。"),
        );
        r.order_id = Some(order_id.to_string());
        return Err(r);
    }
    let with_order = |mut r: MessageResult| {
        r.order_id = Some(order_id.to_string());
        r
    };
    let Some(date) = of.text_of("FulfillmentDate") else {
        return Err(with_order(schema(
            "the FulfillmentDate element is missing.",
            "FulfillmentDate 要素がありません。",
        )));
    };
    let Some(ship_time) = parse_datetime(date) else {
        return Err(with_order(schema(
            &format!("FulfillmentDate '{date}' is not a valid dateTime."),
            &format!("FulfillmentDate「{date}」は有効な日時ではありません。"),
        )));
    };
    let Some(fd) = of.child("FulfillmentData") else {
        return Err(with_order(fail(
            message_id,
            codes::MISSING_DATA,
            "FulfillmentData is required: CarrierCode and ShipperTrackingNumber must be provided."
                .into(),
            "FulfillmentData は必須です。CarrierCode と ShipperTrackingNumber を指定してください。"
                .into(),
            None,
        )));
    };
    let carrier_name = fd.text_of("CarrierName").map(str::to_string);
    let Some(carrier_code) = fd.text_of("CarrierCode") else {
        return Err(with_order(fail(
            message_id,
            codes::MISSING_DATA,
            "CarrierCode is required. Use CarrierCode 'Other' with CarrierName for carriers that are not listed.".into(),
            "CarrierCode は必須です。一覧にない配送業者は CarrierCode「Other」と CarrierName を指定してください。".into(),
            None,
        )));
    };
    if carrier_code == "Other" && carrier_name.is_none() {
        return Err(with_order(fail(
            message_id,
            codes::MISSING_DATA,
            "CarrierName is required when CarrierCode is 'Other'.".into(),
            "CarrierCode が「Other」の場合は CarrierName が必須です。".into(),
            None,
        )));
    }
    let Some(tracking) = fd.text_of("ShipperTrackingNumber") else {
        return Err(with_order(fail(
            message_id,
            codes::MISSING_DATA,
            "ShipperTrackingNumber is required.".into(),
            "ShipperTrackingNumber（追跡番号）は必須です。".into(),
            None,
        )));
    };
    for (field, value) in [
        ("CarrierName", carrier_name.as_deref()),
        ("ShippingMethod", fd.text_of("ShippingMethod")),
        ("ShipperTrackingNumber", Some(tracking)),
    ] {
        if value.is_some_and(|v| v.chars().count() > 50) {
            return Err(with_order(schema(
                &format!("{field} is longer than 50 characters."),
                &format!("{field} が 50 文字を超えています。"),
            )));
        }
    }
    if !tracking_number_valid(carrier_code, carrier_name.as_deref(), tracking) {
        let shown = carrier_name
            .as_deref()
            .filter(|_| carrier_code == "Other")
            .unwrap_or(carrier_code);
        return Err(with_order(fail(
            message_id,
            codes::INVALID_VALUE,
            format!(
                "The tracking ID {tracking} does not match the expected format for the carrier {shown}."
            ),
            format!("追跡番号 {tracking} は配送業者 {shown} の形式と一致しません。"),
            None,
        )));
    }
    let mut items = Vec::new();
    for item in of.children_named("Item") {
        let Some(code) = item.text_of("AmazonOrderItemCode") else {
            return Err(with_order(schema(
                "Item needs an AmazonOrderItemCode.",
                "Item に AmazonOrderItemCode がありません。",
            )));
        };
        if code.len() != 14 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(with_order(schema(
                &format!("AmazonOrderItemCode '{code}' must be 14 digits."),
                &format!("AmazonOrderItemCode「{code}」は 14 桁の数字である必要があります。"),
            )));
        }
        let qty = match item.text_of("Quantity") {
            None => None,
            Some(q) => match q.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(with_order(schema(
                        &format!("Quantity '{q}' must be a positive integer."),
                        &format!("Quantity「{q}」は正の整数である必要があります。"),
                    )));
                }
            },
        };
        items.push((code.to_string(), qty));
    }
    Ok((
        order_id.to_string(),
        Shipment {
            package_reference_id: of.text_of("MerchantFulfillmentID").map(str::to_string),
            carrier_code: carrier_code.to_string(),
            carrier_name,
            shipping_method: fd.text_of("ShippingMethod").map(str::to_string),
            tracking_number: tracking.to_string(),
            ship_time,
            // Quantity omitted = the whole line; resolved against the order below.
            items: items
                .into_iter()
                .map(|(c, q)| (c, q.unwrap_or(0)))
                .collect(),
        },
    ))
}

/// Processes a POST_ORDER_FULFILLMENT_DATA document for `seller_id`.
/// A document refused whole: one error result for message 0.
fn whole(code: u32, en: String, ja: String) -> Outcome {
    Outcome {
        processed: 0,
        successful: 0,
        with_error: 1,
        with_warning: 0,
        results: vec![fail("0", code, en, ja, None)],
    }
}

/// The root of a feed document of `message_type` with at least one `Message`, or the outcome of
/// a document refused whole (not XML, no envelope or header, another message type, no message).
pub(crate) fn envelope(input: &[u8], message_type: &str) -> Result<Element, Outcome> {
    let root = xml::decode(input)
        .and_then(|t| xml::parse(&t))
        .map_err(|e| {
            whole(
                codes::XML_PARSE,
                format!(
                    "XML Parsing Fatal Error at Line {}, Column {}: {}",
                    e.line, e.column, e.message
                ),
                format!(
                    "XML 解析エラー（{} 行 {} 列）: {}",
                    e.line, e.column, e.message
                ),
            )
        })?;
    if root.name != "AmazonEnvelope" {
        return Err(whole(
            codes::SCHEMA,
            format!(
                "The root element must be AmazonEnvelope, not {}.",
                root.name
            ),
            format!(
                "ルート要素は AmazonEnvelope である必要があります（{}）。",
                root.name
            ),
        ));
    }
    let header_ok = root.child("Header").is_some_and(|h| {
        h.text_of("DocumentVersion").is_some() && h.text_of("MerchantIdentifier").is_some()
    });
    if !header_ok {
        return Err(whole(
            codes::SCHEMA,
            "The Header element with DocumentVersion and MerchantIdentifier is required.".into(),
            "DocumentVersion と MerchantIdentifier を含む Header 要素が必要です。".into(),
        ));
    }
    let found = root.text_of("MessageType");
    if found != Some(message_type) {
        return Err(whole(
            codes::SCHEMA,
            format!(
                "MessageType must be {message_type} for this feed type, not {}.",
                found.unwrap_or("(missing)")
            ),
            format!(
                "このフィードタイプの MessageType は {message_type} である必要があります（{}）。",
                found.unwrap_or("なし")
            ),
        ));
    }
    if root.children_named("Message").next().is_none() {
        return Err(whole(
            codes::SCHEMA,
            "The envelope contains no Message element.".into(),
            "Message 要素がありません。".into(),
        ));
    }
    Ok(root)
}

/// The `MessageID` of `msg` when it is 1 to 20 digits and not used before in the document.
#[allow(clippy::result_large_err)]
pub(crate) fn message_id(
    msg: &Element,
    seen: &mut HashSet<String>,
) -> Result<String, MessageResult> {
    let message_id = msg.text_of("MessageID").unwrap_or("").to_string();
    if message_id.is_empty()
        || message_id.len() > 20
        || !message_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(fail(
            if message_id.is_empty() {
                "0"
            } else {
                &message_id
            },
            codes::SCHEMA,
            "The message is invalid: MessageID must be 1 to 20 digits.".into(),
            "メッセージが無効です: MessageID は 1〜20 桁の数字である必要があります。".into(),
            None,
        ));
    }
    if !seen.insert(message_id.clone()) {
        return Err(fail(
            &message_id,
            codes::SCHEMA,
            format!("The message is invalid: MessageID {message_id} is used more than once."),
            format!("メッセージが無効です: MessageID {message_id} が重複しています。"),
            None,
        ));
    }
    Ok(message_id)
}

/// Counts one message's result into `out`.
pub(crate) fn count(out: &mut Outcome, result: Result<Option<MessageResult>, MessageResult>) {
    match result {
        Ok(None) => out.successful += 1,
        Ok(Some(warning)) => {
            out.successful += 1;
            out.with_warning += 1;
            out.results.push(warning);
        }
        Err(e) => {
            out.with_error += 1;
            out.results.push(e);
        }
    }
}

pub(crate) fn process(st: &mut State, seller_id: &str, feed_id: &str, input: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let root = match envelope(input, "OrderFulfillment") {
        Ok(root) => root,
        Err(refused) => return refused,
    };
    let messages: Vec<&Element> = root.children_named("Message").collect();
    let now = st.now();
    let mut seen = HashSet::new();
    for msg in messages {
        out.processed += 1;
        #[allow(clippy::result_large_err)]
        let result = (|| -> Result<Option<MessageResult>, MessageResult> {
            let message_id = self::message_id(msg, &mut seen)?;
            let (order_id, mut shipment) = read_message(msg, &message_id)?;
            let err = |code: u32, en: String, ja: String| {
                fail(&message_id, code, en, ja, Some(&order_id))
            };
            let order = st
                .orders
                .get_mut(&order_id)
                .filter(|o| o.seller_id == seller_id)
                .ok_or_else(|| {
                    err(
                        codes::ORDER_NOT_FOUND,
                        format!("The order ID {order_id} was not found for this seller."),
                        format!("注文番号 {order_id} が見つかりません。"),
                    )
                })?;
            // Quantity omitted on an Item = the rest of that line.
            for (id, qty) in &mut shipment.items {
                if *qty == 0
                    && let Some(it) = order.items.iter().find(|i| &i.order_item_id == id)
                {
                    *qty = it.quantity_ordered.saturating_sub(it.quantity_shipped);
                }
            }
            match check_shipment(order, &shipment, false) {
                Ok(()) => {
                    let before = order.status;
                    apply_shipment(order, &shipment, &format!("feed:{feed_id}"), now);
                    if order.status != before {
                        st.notify_order_change(&order_id, "OrderStatusChange", "ShipmentConfirmed");
                    }
                    tracing::debug!(order_id = %order_id, "fulfillment feed shipped order");
                    Ok(None)
                }
                Err(ShipError::AlreadyShipped) => Ok(Some(MessageResult {
                    message_id: message_id.clone(),
                    error: false,
                    code: codes::ALREADY_SHIPPED,
                    en: format!(
                        "The order {order_id} has already been shipped; the shipment confirmation was not applied again."
                    ),
                    ja: format!(
                        "注文番号 {order_id} はすでに出荷済みのため、出荷通知は再適用されませんでした。"
                    ),
                    order_id: Some(order_id.clone()),
                    item_code: None,
                })),
                Err(ShipError::Cancelled) => Err(err(
                    codes::NOT_SHIPPABLE,
                    format!("The order {order_id} has been cancelled and cannot be shipped."),
                    format!("注文番号 {order_id} はキャンセルされているため出荷できません。"),
                )),
                Err(ShipError::Pending) => Err(err(
                    codes::NOT_SHIPPABLE,
                    format!("The order {order_id} is pending and cannot be shipped yet."),
                    format!("注文番号 {order_id} は保留中のため、まだ出荷できません。"),
                )),
                Err(ShipError::BeforeOrderDate) => Err(err(
                    codes::INVALID_VALUE,
                    format!(
                        "FulfillmentDate is earlier than the purchase date of order {order_id}."
                    ),
                    format!("FulfillmentDate が注文 {order_id} の購入日より前です。"),
                )),
                Err(ShipError::UnknownItem(code)) => {
                    let mut r = err(
                        codes::ITEM_MISMATCH,
                        format!("The AmazonOrderItemCode {code} is not part of order {order_id}."),
                        format!("注文商品番号 {code} は注文 {order_id} に含まれていません。"),
                    );
                    r.item_code = Some(code);
                    Err(r)
                }
                Err(ShipError::TooMany(code)) => {
                    let mut r = err(
                        codes::ITEM_MISMATCH,
                        format!(
                            "The quantity for AmazonOrderItemCode {code} exceeds the unshipped quantity of order {order_id}."
                        ),
                        format!(
                            "注文商品番号 {code} の数量が注文 {order_id} の未出荷数量を超えています。"
                        ),
                    );
                    r.item_code = Some(code);
                    Err(r)
                }
            }
        })();
        count(&mut out, result);
    }
    out
}

/// Renders the ProcessingReport (DocumentVersion 1.02). Japanese descriptions when `japanese`.
pub(crate) fn render_report(
    out: &Outcome,
    seller_id: &str,
    feed_id: &str,
    japanese: bool,
    encoding: &str,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n"
    ));
    s.push_str("<AmazonEnvelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"amzn-envelope.xsd\">\n");
    s.push_str("\t<Header>\n\t\t<DocumentVersion>1.02</DocumentVersion>\n");
    s.push_str(&format!(
        "\t\t<MerchantIdentifier>{}</MerchantIdentifier>\n\t</Header>\n",
        xml::escape(seller_id)
    ));
    s.push_str("\t<MessageType>ProcessingReport</MessageType>\n\t<Message>\n\t\t<MessageID>1</MessageID>\n\t\t<ProcessingReport>\n");
    s.push_str(&format!(
        "\t\t\t<DocumentTransactionID>{}</DocumentTransactionID>\n",
        xml::escape(feed_id)
    ));
    s.push_str("\t\t\t<StatusCode>Complete</StatusCode>\n\t\t\t<ProcessingSummary>\n");
    s.push_str(&format!(
        "\t\t\t\t<MessagesProcessed>{}</MessagesProcessed>\n\t\t\t\t<MessagesSuccessful>{}</MessagesSuccessful>\n\t\t\t\t<MessagesWithError>{}</MessagesWithError>\n\t\t\t\t<MessagesWithWarning>{}</MessagesWithWarning>\n",
        out.processed, out.successful, out.with_error, out.with_warning
    ));
    s.push_str("\t\t\t</ProcessingSummary>\n");
    for r in &out.results {
        s.push_str("\t\t\t<Result>\n");
        s.push_str(&format!(
            "\t\t\t\t<MessageID>{}</MessageID>\n",
            xml::escape(&r.message_id)
        ));
        s.push_str(&format!(
            "\t\t\t\t<ResultCode>{}</ResultCode>\n",
            if r.error { "Error" } else { "Warning" }
        ));
        s.push_str(&format!(
            "\t\t\t\t<ResultMessageCode>{}</ResultMessageCode>\n",
            r.code
        ));
        let desc = if japanese { &r.ja } else { &r.en };
        s.push_str(&format!(
            "\t\t\t\t<ResultDescription>{}</ResultDescription>\n",
            xml::escape(desc)
        ));
        if r.order_id.is_some() || r.item_code.is_some() {
            s.push_str("\t\t\t\t<AdditionalInfo>\n");
            if let Some(o) = &r.order_id {
                s.push_str(&format!(
                    "\t\t\t\t\t<AmazonOrderID>{}</AmazonOrderID>\n",
                    xml::escape(o)
                ));
            }
            if let Some(c) = &r.item_code {
                s.push_str(&format!(
                    "\t\t\t\t\t<AmazonOrderItemCode>{}</AmazonOrderItemCode>\n",
                    xml::escape(c)
                ));
            }
            s.push_str("\t\t\t\t</AdditionalInfo>\n");
        }
        s.push_str("\t\t\t</Result>\n");
    }
    s.push_str("\t\t</ProcessingReport>\n\t</Message>\n</AmazonEnvelope>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_formats_per_carrier() {
        assert!(tracking_number_valid(
            "YamatoTransport",
            None,
            "123456789012"
        ));
        assert!(tracking_number_valid(
            "YamatoTransport",
            None,
            "1234-5678-9012"
        ));
        assert!(!tracking_number_valid(
            "YamatoTransport",
            None,
            "12345678901"
        ));
        assert!(!tracking_number_valid(
            "SagawaExpress",
            None,
            "12345678901A"
        ));
        assert!(tracking_number_valid(
            "Other",
            Some("Japan Post"),
            "EJ123456789JP"
        ));
        assert!(!tracking_number_valid("Other", Some("日本郵便"), "EJ-123"));
        assert!(tracking_number_valid(
            "Australia Post",
            None,
            "33ABC1234567-01"
        ));
        assert!(!tracking_number_valid("DHL", None, "bad tracking!"));
        assert!(!tracking_number_valid("DHL", None, &"1".repeat(51)));
    }

    #[test]
    fn order_id_pattern() {
        assert!(amazon_order_id_pattern("503-1234567-1234567"));
        assert!(!amazon_order_id_pattern("503-1234567-123456"));
        assert!(!amazon_order_id_pattern("5031234567-1234567"));
    }
}
