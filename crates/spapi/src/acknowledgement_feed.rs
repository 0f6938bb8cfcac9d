//! `POST_ORDER_ACKNOWLEDGEMENT_DATA`: the XML order acknowledgement feed, used to cancel a
//! seller-fulfilled order whose buyer asked to cancel (`StatusCode=Failure` with
//! `CancelReason=BuyerCanceled` on every item). Amazon removed the Orders API's own cancel
//! operation from the 2026 model; this feed is how a seller cancels (reference §6, sellers.md).
//!
//! Element order and types follow `spapi-models/xsd/OrderAcknowledgementSubset.xsd` (the
//! project's own schema of the subset used).

use quick_xml::escape::escape;

use crate::fulfillment_feed::{FeedMessage, FulfillmentFeed, RejectedMessage, envelope};

/// The feed type.
pub const POST_ORDER_ACKNOWLEDGEMENT_DATA: &str = "POST_ORDER_ACKNOWLEDGEMENT_DATA";

/// A seller-fulfilled order cancelled because its buyer asked to (one `<Message>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerCancellation {
    /// `AmazonOrderID` (3-7-7).
    pub amazon_order_id: String,
    /// `AmazonOrderItemCode` of every item (14 digits each), each cancelled with
    /// `CancelReason=BuyerCanceled`.
    pub order_item_ids: Vec<String>,
}

impl BuyerCancellation {
    /// The problems of this cancellation (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !domain::is_amazon_order_id(self.amazon_order_id.trim()) {
            out.push(format!(
                "AmazonOrderID {:?}: expected 3-7-7 digits",
                self.amazon_order_id
            ));
        }
        if self.order_item_ids.is_empty() {
            out.push("no order item to cancel".into());
        }
        for id in &self.order_item_ids {
            if id.len() != 14 || !id.bytes().all(|b| b.is_ascii_digit()) {
                out.push(format!("AmazonOrderItemCode {id:?}: expected 14 digits"));
            }
        }
        out
    }

    fn write(&self, message_id: u64, out: &mut String) {
        out.push_str(&format!(
            "  <Message>\n    <MessageID>{message_id}</MessageID>\n    <OrderAcknowledgement>\n      <AmazonOrderID>{}</AmazonOrderID>\n      <StatusCode>Failure</StatusCode>\n",
            escape(self.amazon_order_id.trim())
        ));
        for id in &self.order_item_ids {
            out.push_str(&format!(
                "      <Item>\n        <AmazonOrderItemCode>{}</AmazonOrderItemCode>\n        <CancelReason>BuyerCanceled</CancelReason>\n      </Item>\n",
                escape(id)
            ));
        }
        out.push_str("    </OrderAcknowledgement>\n  </Message>\n");
    }
}

/// Builds a `POST_ORDER_ACKNOWLEDGEMENT_DATA` document for `merchant_identifier` (the seller
/// id). Invalid cancellations are returned in `rejected` and left out.
pub fn build_cancellation_feed<K>(
    merchant_identifier: &str,
    cancellations: impl IntoIterator<Item = (K, BuyerCancellation)>,
) -> FulfillmentFeed<K> {
    let mut body = String::new();
    let mut messages = Vec::new();
    let mut rejected = Vec::new();
    for (key, c) in cancellations {
        let problems = c.problems();
        if !problems.is_empty() {
            rejected.push(RejectedMessage { key, problems });
            continue;
        }
        let message_id = messages.len() as u64 + 1;
        c.write(message_id, &mut body);
        messages.push(FeedMessage {
            message_id,
            key,
            amazon_order_id: c.amazon_order_id.trim().to_owned(),
        });
    }
    FulfillmentFeed {
        xml: (!messages.is_empty())
            .then(|| envelope(merchant_identifier, "OrderAcknowledgement", &body)),
        messages,
        rejected,
    }
}
