//! Notifications API state: destinations (SQS), subscriptions, the notifications they produce
//! (ORDER_CHANGE, FEED_PROCESSING_FINISHED, shaped as Amazon's payload schemas in
//! `spapi-models/schemas/notifications/`) waiting in an outbox for the delivery task, and the
//! counter of what was sent. Plain data: the state holds it, `delivery` drains the outbox.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{Order, fmt_time_ms};
use crate::records::Feed;

pub(crate) const ORDER_CHANGE: &str = "ORDER_CHANGE";
pub(crate) const FEED_PROCESSING_FINISHED: &str = "FEED_PROCESSING_FINISHED";

/// The notification types the simulator delivers and their payload versions.
pub(crate) fn payload_version(notification_type: &str) -> Option<&'static str> {
    match notification_type {
        ORDER_CHANGE => Some("1.0"),
        FEED_PROCESSING_FINISHED => Some("2020-09-04"),
        _ => None,
    }
}

/// `OrderChangeType` values a subscription filter may name.
pub(crate) const ORDER_CHANGE_TYPES: [&str; 3] = [
    "BuyerRequestedChange",
    "DeliveryTipChange",
    "OrderStatusChange",
];

/// The `ApplicationId` Amazon puts in notification metadata, derived from the LWA client id.
pub(crate) fn application_id(client_id: &str) -> String {
    let mut h = std::hash::DefaultHasher::new();
    client_id.hash(&mut h);
    let a = h.finish();
    "salt".hash(&mut h);
    let b = h.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "amzn1.sellerapps.app.{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` → `(region, account, name)`.
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:sqs:")?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next()?;
    let account = parts.next()?;
    let name = parts.next()?;
    let ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_whitespace);
    (ok(region) && ok(account) && ok(name) && !name.contains(':'))
        .then_some((region, account, name))
}

/// The queue URL of an SQS ARN at an SQS-compatible endpoint (moto's form:
/// `{endpoint}/{account}/{name}`).
pub(crate) fn queue_url(endpoint: &str, arn: &str) -> Option<String> {
    let (_, account, name) = parse_arn(arn)?;
    Some(format!(
        "{}/{account}/{name}",
        endpoint.trim_end_matches('/')
    ))
}

/// A destination (an SQS queue) of an application.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub destination_id: String,
    pub name: String,
    pub arn: String,
    /// LWA client id of the application that created it.
    pub client_id: String,
}

impl Destination {
    /// The model's `Destination`.
    pub fn render(&self) -> Value {
        json!({
            "name": self.name,
            "destinationId": self.destination_id,
            "resource": {"sqs": {"arn": self.arn}},
        })
    }
}

/// A subscription of an application, for one seller, to one notification type.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub subscription_id: String,
    pub client_id: String,
    pub seller_id: String,
    pub notification_type: String,
    pub payload_version: String,
    pub destination_id: String,
    /// As the caller sent it (echoed back).
    pub processing_directive: Option<Value>,
    /// `eventFilter.orderChangeTypes` (None: every type).
    pub order_change_types: Option<Vec<String>>,
    /// `eventFilter.marketplaceIds` (None: every marketplace).
    pub marketplace_ids: Option<Vec<String>>,
}

impl Subscription {
    /// The model's `Subscription`.
    pub fn render(&self) -> Value {
        let mut v = json!({
            "subscriptionId": self.subscription_id,
            "payloadVersion": self.payload_version,
            "destinationId": self.destination_id,
        });
        if let Some(p) = &self.processing_directive {
            v["processingDirective"] = p.clone();
        }
        v
    }
}

/// One message for the delivery task.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub arn: String,
    pub notification_type: String,
    pub body: String,
}

/// What the simulator did with notifications of one type (`GET /_sim/notifications`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCount {
    /// Notifications produced (one per matching subscription and event).
    pub produced: u64,
    /// Messages the queue accepted (a duplicated notification counts twice).
    pub sent: u64,
    /// Notifications sent twice (`notificationDuplicateRate`).
    pub duplicated: u64,
    /// Notifications never sent (`notificationDropRate`).
    pub dropped: u64,
    /// Messages the queue refused or that could not reach it after retries.
    pub failed: u64,
}

impl NotificationCount {
    fn add(&mut self, o: &NotificationCount) {
        self.produced += o.produced;
        self.sent += o.sent;
        self.duplicated += o.duplicated;
        self.dropped += o.dropped;
        self.failed += o.failed;
    }
}

/// Counter of notifications, in total and by type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCounter {
    #[serde(flatten)]
    pub total: NotificationCount,
    /// Messages produced but not sent, dropped or failed yet (delayed, held for reordering).
    pub pending: u64,
    pub by_type: BTreeMap<String, NotificationCount>,
}

impl NotificationCounter {
    pub fn record(&mut self, notification_type: &str, f: impl Fn(&mut NotificationCount)) {
        let mut one = NotificationCount::default();
        f(&mut one);
        self.total.add(&one);
        self.by_type
            .entry(notification_type.to_string())
            .or_default()
            .add(&one);
    }
}

/// Destinations, subscriptions, the outbox and the counter.
#[derive(Debug)]
pub(crate) struct Notifications {
    pub destinations: Vec<Destination>,
    pub subscriptions: Vec<Subscription>,
    pub outbox: VecDeque<Outgoing>,
    pub counter: NotificationCounter,
    /// Ids and delivery faults: seeded, and apart from the main RNG so that subscribing does
    /// not change generated orders or ids.
    pub rng: StdRng,
}

impl Notifications {
    pub fn new(seed: u64) -> Notifications {
        Notifications {
            destinations: Vec::new(),
            subscriptions: Vec::new(),
            outbox: VecDeque::new(),
            counter: NotificationCounter::default(),
            rng: StdRng::seed_from_u64(seed ^ 0x6e6f_7469_6679),
        }
    }

    /// A random UUID (destination, subscription and notification ids).
    pub fn new_id(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    fn queue(&mut self, sub: &Subscription, body: Value) {
        let Some(dest) = self
            .destinations
            .iter()
            .find(|d| d.destination_id == sub.destination_id)
        else {
            return;
        };
        let arn = dest.arn.clone();
        self.counter
            .record(&sub.notification_type, |c| c.produced = 1);
        self.counter.pending += 1;
        self.outbox.push_back(Outgoing {
            arn,
            notification_type: sub.notification_type.clone(),
            body: body.to_string(),
        });
    }

    /// ORDER_CHANGE for every subscription of the order's seller whose filter matches.
    pub fn order_change(
        &mut self,
        order: &Order,
        change_type: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        let subs: Vec<Subscription> = self
            .subscriptions
            .iter()
            .filter(|s| s.notification_type == ORDER_CHANGE && s.seller_id == order.seller_id)
            .filter(|s| {
                s.order_change_types
                    .as_ref()
                    .is_none_or(|t| t.iter().any(|t| t == change_type))
            })
            .filter(|s| {
                s.marketplace_ids
                    .as_ref()
                    .is_none_or(|m| m.contains(&order.marketplace_id))
            })
            .cloned()
            .collect();
        for sub in subs {
            let id = self.new_id();
            let body = order_change_body(order, change_type, reason, now, &sub, &id);
            self.queue(&sub, body);
        }
    }

    /// FEED_PROCESSING_FINISHED for every subscription of the feed's seller.
    pub fn feed_finished(&mut self, feed: &Feed, now: DateTime<Utc>) {
        let subs: Vec<Subscription> = self
            .subscriptions
            .iter()
            .filter(|s| {
                s.notification_type == FEED_PROCESSING_FINISHED && s.seller_id == feed.seller_id
            })
            .cloned()
            .collect();
        for sub in subs {
            let id = self.new_id();
            let body = feed_finished_body(feed, now, &sub, &id);
            self.queue(&sub, body);
        }
    }
}

/// `OrderChangeNotification.json`, payload version 1.0.
fn order_change_body(
    order: &Order,
    change_type: &str,
    reason: &str,
    now: DateTime<Utc>,
    sub: &Subscription,
    notification_id: &str,
) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| {
            json!({
                "OrderItemId": i.order_item_id,
                "SellerSKU": i.seller_sku,
                "SupplySourceId": null,
                "OrderItemStatus": if i.quantity_shipped >= i.quantity_ordered { "Shipped" } else { "Unshipped" },
                "Quantity": i.quantity_ordered,
                "QuantityShipped": i.quantity_shipped,
                "IsBuyerRequestedCancel": i.buyer_requested_cancel,
                "ItemEarliestDeliveryDate": fmt_time_ms(order.earliest_delivery_date),
                "ItemLatestDeliveryDate": fmt_time_ms(order.latest_delivery_date),
            })
        })
        .collect();
    let shipped: u32 = order.items.iter().map(|i| i.quantity_shipped).sum();
    let t = fmt_time_ms(now);
    json!({
        "NotificationVersion": "1.0",
        "NotificationType": ORDER_CHANGE,
        "PayloadVersion": sub.payload_version,
        "EventTime": t,
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": order.seller_id,
            "AmazonOrderId": order.order_id,
            "OrderChangeType": change_type,
            "OrderChangeTrigger": {"TimeOfOrderChange": t, "ChangeReason": reason},
            "Summary": {
                "MarketplaceId": order.marketplace_id,
                "OrderStatus": order.status.as_v0(),
                "PurchaseDate": fmt_time_ms(order.created_time),
                "DestinationPostalCode": order.address.postal_code,
                "FulfillmentType": order.fulfilled_by.as_v0(),
                "OrderType": "StandardOrder",
                "NumberOfItemsShipped": shipped,
                "NumberOfItemsUnshipped": order.items_unshipped(),
                "EarliestDeliveryDate": fmt_time_ms(order.earliest_delivery_date),
                "LatestDeliveryDate": fmt_time_ms(order.latest_delivery_date),
                "EarliestShipDate": fmt_time_ms(order.earliest_ship_date),
                "LatestShipDate": fmt_time_ms(order.latest_ship_date),
                "OrderPrograms": if order.prime { vec!["Prime"] } else { vec![] },
                "ShippingPrograms": [],
                "OrderItems": items,
            },
        }},
        "NotificationMetadata": {
            "ApplicationId": application_id(&sub.client_id),
            "SubscriptionId": sub.subscription_id,
            "PublishTime": t,
            "NotificationId": notification_id,
        },
    })
}

/// `FeedProcessingFinishedNotification.json`, payload version 2020-09-04.
fn feed_finished_body(
    feed: &Feed,
    now: DateTime<Utc>,
    sub: &Subscription,
    notification_id: &str,
) -> Value {
    let t = fmt_time_ms(now);
    let mut inner = json!({
        "sellerId": feed.seller_id,
        "accountId": format!("amzn1.merchant.o.{}", feed.seller_id),
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "processingStatus": feed.status.as_str(),
    });
    if let Some(doc) = &feed.result_document_id {
        inner["resultFeedDocumentId"] = json!(doc);
    }
    json!({
        "notificationVersion": "2020-09-04",
        "notificationType": FEED_PROCESSING_FINISHED,
        "payloadVersion": sub.payload_version,
        "eventTime": t,
        "payload": {"feedProcessingFinishedNotification": inner},
        "notificationMetadata": {
            "applicationId": application_id(&sub.client_id),
            "subscriptionId": sub.subscription_id,
            "publishTime": t,
            "notificationId": notification_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_map_to_queue_urls() {
        assert_eq!(
            parse_arn("arn:aws:sqs:us-west-2:123456789012:q1"),
            Some(("us-west-2", "123456789012", "q1"))
        );
        assert_eq!(
            queue_url(
                "http://127.0.0.1:4566/",
                "arn:aws:sqs:us-west-2:123456789012:q1"
            )
            .as_deref(),
            Some("http://127.0.0.1:4566/123456789012/q1")
        );
        assert_eq!(parse_arn("arn:aws:sqs:us-west-2:123456789012"), None);
        assert_eq!(parse_arn("arn:aws:sns:us-west-2:1:q"), None);
        assert_eq!(parse_arn("arn:aws:sqs:us-west-2::q"), None);
    }

    #[test]
    fn application_ids_are_stable_and_distinct() {
        assert_eq!(application_id("a"), application_id("a"));
        assert_ne!(application_id("a"), application_id("b"));
        assert!(application_id("a").starts_with("amzn1.sellerapps.app."));
    }
}
