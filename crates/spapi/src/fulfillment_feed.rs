//! `POST_ORDER_FULFILLMENT_DATA`: the XML shipment-confirmation feed.
//!
//! Each [`ShipmentConfirmation`] becomes one `<Message>`. Messages are checked against the
//! documented rules (order id pattern, field lengths, carrier code/name, item codes) before
//! anything is sent: invalid ones are returned with their reasons and left out, valid ones get
//! sequential `MessageID`s, and the mapping `MessageID ↔ caller key` is returned so that the
//! processing report can be applied back to the caller's instructions.
//!
//! Element order and types follow `spapi-models/xsd/OrderFulfillmentSubset.xsd` (the project's
//! own schema of the subset used). Carrier: Amazon requires `CarrierCode` since 2022 (JP, AU,
//! SG) and `CarrierName` when the code is `Other`; both are sent in that case.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use quick_xml::escape::escape;

/// Longest value of Amazon's XSD `String` type (CarrierName, ShippingMethod,
/// ShipperTrackingNumber).
pub const MAX_STRING_LEN: usize = 50;
/// Transparency codes per item allowed by the XSD.
pub const MAX_TRANSPARENCY_CODES: usize = 10;

/// How the carrier is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// A carrier code as listed in Seller Central (e.g. `YamatoTransport`, `SagawaExpress`).
    Code(String),
    /// A carrier that has no code: sent as `CarrierCode=Other` plus `CarrierName`.
    Other {
        /// Carrier name (at most 50 characters).
        name: String,
    },
}

/// `CODCollectionMethod` (JP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodCollectionMethod {
    /// `DirectPayment`.
    DirectPayment,
}

/// One item of a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfillmentItem {
    /// `AmazonOrderItemCode` (14 digits).
    pub amazon_order_item_code: String,
    /// `MerchantFulfillmentItemID`.
    pub merchant_fulfillment_item_id: Option<u64>,
    /// Quantity shipped (≥ 1).
    pub quantity: u32,
    /// Transparency codes (at most 10).
    pub transparency_codes: Vec<String>,
}

/// One shipment confirmation (one `<Message>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentConfirmation {
    /// `AmazonOrderID` (3-7-7).
    pub amazon_order_id: String,
    /// `MerchantFulfillmentID` (optional numeric id of the shipment).
    pub merchant_fulfillment_id: Option<u64>,
    /// `FulfillmentDate` with the shop's offset (e.g. `+09:00`).
    pub fulfillment_date: DateTime<FixedOffset>,
    /// Carrier.
    pub carrier: Carrier,
    /// `ShippingMethod` (at most 50 characters).
    pub shipping_method: Option<String>,
    /// `ShipperTrackingNumber` (required by Amazon; at most 50 characters).
    pub tracking_number: String,
    /// `CODCollectionMethod`.
    pub cod_collection_method: Option<CodCollectionMethod>,
    /// Items; empty confirms the whole order.
    pub items: Vec<FulfillmentItem>,
}

/// Why a message was left out of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage<K> {
    /// The caller's key.
    pub key: K,
    /// Every problem found (field: problem).
    pub problems: Vec<String>,
}

/// A message in the built feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMessage<K> {
    /// `MessageID` in the document.
    pub message_id: u64,
    /// The caller's key.
    pub key: K,
    /// The order (for logs and reconciliation).
    pub amazon_order_id: String,
}

/// A built `POST_ORDER_FULFILLMENT_DATA` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfillmentFeed<K> {
    /// The XML (UTF-8), `None` when no message was valid.
    pub xml: Option<String>,
    /// `MessageID` ↔ caller key of every message in `xml`.
    pub messages: Vec<FeedMessage<K>>,
    /// Messages left out, with reasons.
    pub rejected: Vec<RejectedMessage<K>>,
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn check_string(problems: &mut Vec<String>, field: &str, value: &str, required: bool) {
    let len = value.chars().count();
    if value.trim().is_empty() {
        if required || len > 0 {
            problems.push(format!("{field}: must not be empty"));
        }
        return;
    }
    if len > MAX_STRING_LEN {
        problems.push(format!(
            "{field}: {len} characters, at most {MAX_STRING_LEN}"
        ));
    }
    if !value.chars().all(is_xml_char) {
        problems.push(format!("{field}: contains characters not allowed in XML"));
    }
}

impl ShipmentConfirmation {
    /// The problems of this confirmation (empty when valid). `now` bounds the fulfillment date
    /// (Amazon rejects future dates; ten minutes of clock skew are tolerated).
    pub fn problems(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut p = Vec::new();
        if !domain::is_amazon_order_id(&self.amazon_order_id) {
            p.push(format!(
                "AmazonOrderID: {:?} is not in 3-7-7 format",
                self.amazon_order_id
            ));
        }
        if self.fulfillment_date.with_timezone(&Utc) > now + chrono::Duration::minutes(10) {
            p.push("FulfillmentDate: in the future".into());
        }
        match &self.carrier {
            Carrier::Code(code) => {
                check_string(&mut p, "CarrierCode", code, true);
                if code == "Other" {
                    p.push("CarrierCode: use Carrier::Other with a CarrierName".into());
                }
            }
            Carrier::Other { name } => check_string(&mut p, "CarrierName", name, true),
        }
        if let Some(method) = &self.shipping_method {
            check_string(&mut p, "ShippingMethod", method, false);
        }
        check_string(&mut p, "ShipperTrackingNumber", &self.tracking_number, true);
        for (n, item) in self.items.iter().enumerate() {
            let code = &item.amazon_order_item_code;
            if code.len() != 14 || !code.bytes().all(|b| b.is_ascii_digit()) {
                p.push(format!(
                    "Item[{n}].AmazonOrderItemCode: {code:?} is not 14 digits"
                ));
            }
            if item.quantity == 0 {
                p.push(format!("Item[{n}].Quantity: must be positive"));
            }
            if item.transparency_codes.len() > MAX_TRANSPARENCY_CODES {
                p.push(format!(
                    "Item[{n}].TransparencyCode: at most {MAX_TRANSPARENCY_CODES}"
                ));
            }
            for tc in &item.transparency_codes {
                check_string(&mut p, &format!("Item[{n}].TransparencyCode"), tc, true);
            }
        }
        p
    }

    fn write(&self, message_id: u64, out: &mut String) {
        use std::fmt::Write;
        let e = |s: &str| escape(s.trim()).into_owned();
        let _ = write!(
            out,
            "  <Message>\n    <MessageID>{message_id}</MessageID>\n    <OrderFulfillment>\n"
        );
        let _ = writeln!(
            out,
            "      <AmazonOrderID>{}</AmazonOrderID>",
            e(&self.amazon_order_id)
        );
        if let Some(id) = self.merchant_fulfillment_id {
            let _ = writeln!(
                out,
                "      <MerchantFulfillmentID>{id}</MerchantFulfillmentID>"
            );
        }
        let _ = writeln!(
            out,
            "      <FulfillmentDate>{}</FulfillmentDate>",
            self.fulfillment_date
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        out.push_str("      <FulfillmentData>\n");
        match &self.carrier {
            Carrier::Code(code) => {
                let _ = writeln!(out, "        <CarrierCode>{}</CarrierCode>", e(code));
            }
            Carrier::Other { name } => {
                out.push_str("        <CarrierCode>Other</CarrierCode>\n");
                let _ = writeln!(out, "        <CarrierName>{}</CarrierName>", e(name));
            }
        }
        if let Some(method) = self
            .shipping_method
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            let _ = writeln!(
                out,
                "        <ShippingMethod>{}</ShippingMethod>",
                e(method)
            );
        }
        let _ = writeln!(
            out,
            "        <ShipperTrackingNumber>{}</ShipperTrackingNumber>",
            e(&self.tracking_number)
        );
        out.push_str("      </FulfillmentData>\n");
        if let Some(CodCollectionMethod::DirectPayment) = self.cod_collection_method {
            out.push_str("      <CODCollectionMethod>DirectPayment</CODCollectionMethod>\n");
        }
        for item in &self.items {
            out.push_str("      <Item>\n");
            let _ = writeln!(
                out,
                "        <AmazonOrderItemCode>{}</AmazonOrderItemCode>",
                e(&item.amazon_order_item_code)
            );
            if let Some(id) = item.merchant_fulfillment_item_id {
                let _ = writeln!(
                    out,
                    "        <MerchantFulfillmentItemID>{id}</MerchantFulfillmentItemID>"
                );
            }
            let _ = writeln!(out, "        <Quantity>{}</Quantity>", item.quantity);
            for tc in &item.transparency_codes {
                let _ = writeln!(
                    out,
                    "        <TransparencyCode>{}</TransparencyCode>",
                    e(tc)
                );
            }
            out.push_str("      </Item>\n");
        }
        out.push_str("    </OrderFulfillment>\n  </Message>\n");
    }
}

/// Builds a `POST_ORDER_FULFILLMENT_DATA` document for `merchant_identifier` (the seller id).
/// Invalid confirmations are returned in [`FulfillmentFeed::rejected`] and left out.
pub fn build_fulfillment_feed<K>(
    merchant_identifier: &str,
    confirmations: impl IntoIterator<Item = (K, ShipmentConfirmation)>,
    now: DateTime<Utc>,
) -> FulfillmentFeed<K> {
    let mut body = String::new();
    let mut messages = Vec::new();
    let mut rejected = Vec::new();
    for (key, confirmation) in confirmations {
        let problems = confirmation.problems(now);
        if !problems.is_empty() {
            rejected.push(RejectedMessage { key, problems });
            continue;
        }
        let message_id = messages.len() as u64 + 1;
        confirmation.write(message_id, &mut body);
        messages.push(FeedMessage {
            message_id,
            key,
            amazon_order_id: confirmation.amazon_order_id.trim().to_owned(),
        });
    }
    FulfillmentFeed {
        xml: (!messages.is_empty())
            .then(|| envelope(merchant_identifier, "OrderFulfillment", &body)),
        messages,
        rejected,
    }
}

/// An XML feed document: the envelope and header around `body` (its `<Message>`s).
pub(crate) fn envelope(merchant_identifier: &str, message_type: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <AmazonEnvelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"amzn-envelope.xsd\">\n\
         \x20 <Header>\n    <DocumentVersion>1.01</DocumentVersion>\n    <MerchantIdentifier>{}</MerchantIdentifier>\n  </Header>\n\
         \x20 <MessageType>{message_type}</MessageType>\n{body}</AmazonEnvelope>\n",
        escape(merchant_identifier)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-27T10:00:00+09:00").unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-28T00:00:00Z".parse().unwrap()
    }

    fn confirmation(order: &str) -> ShipmentConfirmation {
        ShipmentConfirmation {
            amazon_order_id: order.into(),
            merchant_fulfillment_id: None,
            fulfillment_date: date(),
            carrier: Carrier::Code("YamatoTransport".into()),
            shipping_method: Some("宅急便".into()),
            tracking_number: "123456789012".into(),
            cod_collection_method: None,
            items: vec![],
        }
    }

    #[test]
    fn builds_messages_with_mapping() {
        let feed = build_fulfillment_feed(
            "A1SELLER",
            vec![
                ("inst-1", confirmation("503-1234567-1234567")),
                ("inst-2", confirmation("bad-id")),
                (
                    "inst-3",
                    ShipmentConfirmation {
                        carrier: Carrier::Other {
                            name: "西濃運輸 <Seino> & Co".into(),
                        },
                        items: vec![FulfillmentItem {
                            amazon_order_item_code: "12345678901234".into(),
                            merchant_fulfillment_item_id: Some(1),
                            quantity: 2,
                            transparency_codes: vec![],
                        }],
                        ..confirmation("250-7654321-7654321")
                    },
                ),
            ],
            now(),
        );
        assert_eq!(feed.messages.len(), 2);
        assert_eq!(feed.messages[0].message_id, 1);
        assert_eq!(feed.messages[0].key, "inst-1");
        assert_eq!(feed.messages[1].message_id, 2);
        assert_eq!(feed.messages[1].key, "inst-3");
        assert_eq!(feed.rejected.len(), 1);
        assert_eq!(feed.rejected[0].key, "inst-2");
        let xml = feed.xml.unwrap();
        assert!(xml.contains("<CarrierCode>Other</CarrierCode>"));
        assert!(xml.contains("<CarrierName>西濃運輸 &lt;Seino&gt; &amp; Co</CarrierName>"));
        assert!(xml.contains("<FulfillmentDate>2026-11-27T10:00:00+09:00</FulfillmentDate>"));
        assert!(xml.contains("<MerchantIdentifier>A1SELLER</MerchantIdentifier>"));
    }

    #[test]
    fn field_rules() {
        let long = "x".repeat(51);
        let c = ShipmentConfirmation {
            carrier: Carrier::Other { name: long.clone() },
            shipping_method: Some(long.clone()),
            tracking_number: long,
            items: vec![FulfillmentItem {
                amazon_order_item_code: "123".into(),
                merchant_fulfillment_item_id: None,
                quantity: 0,
                transparency_codes: vec!["t".into(); 11],
            }],
            ..confirmation("503-1234567-1234567")
        };
        let problems = c.problems(now());
        assert_eq!(problems.len(), 6, "{problems:?}");
        // 50 characters of Japanese are fine (characters, not bytes).
        let ok = ShipmentConfirmation {
            shipping_method: Some("宅".repeat(50)),
            ..confirmation("503-1234567-1234567")
        };
        assert!(ok.problems(now()).is_empty());
        let empty_tracking = ShipmentConfirmation {
            tracking_number: " ".into(),
            ..confirmation("503-1234567-1234567")
        };
        assert_eq!(empty_tracking.problems(now()).len(), 1);
        let control = ShipmentConfirmation {
            tracking_number: "12\u{1}3".into(),
            ..confirmation("503-1234567-1234567")
        };
        assert_eq!(control.problems(now()).len(), 1);
        let future = ShipmentConfirmation {
            fulfillment_date: DateTime::parse_from_rfc3339("2026-11-29T10:00:00+09:00").unwrap(),
            ..confirmation("503-1234567-1234567")
        };
        assert_eq!(future.problems(now()).len(), 1);
        let all_bad = build_fulfillment_feed("A1", vec![(1, future)], now());
        assert!(all_bad.xml.is_none());
    }
}
