//! `JSON_LISTINGS_FEED` for inventory: one `PATCH` message per SKU with a JSON Patch `merge`
//! on `/attributes/fulfillment_availability`.
//!
//! `merge` updates `quantity` without resetting fields that are not sent, so
//! `lead_time_to_ship_max_days` (handling time) is only sent where the caller sets it. Where the
//! caller wants Amazon's default handling time back ([`InventoryUpdate::default_handling_time`]),
//! the attribute is sent with `replace`: replaced as a whole, a handling time not sent falls back
//! to Amazon's default. Feeds are split at 25,000 messages (Amazon's limit per feed); message ids
//! restart at 1 per feed.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Maximum messages per `JSON_LISTINGS_FEED` document.
pub const MAX_MESSAGES_PER_FEED: usize = 25_000;
/// Product type accepted for offer-only patches.
pub const DEFAULT_PRODUCT_TYPE: &str = "PRODUCT";
/// Largest handling time without Amazon's allow-listing.
pub const DEFAULT_MAX_HANDLING_DAYS: u32 = 30;
/// The JSON Patch path of the merchant-fulfilled quantity.
pub const FULFILLMENT_AVAILABILITY_PATH: &str = "/attributes/fulfillment_availability";

/// A quantity (and optionally handling time) to push for one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryUpdate {
    /// Seller SKU.
    pub sku: String,
    /// Quantity available to sell.
    pub quantity: u32,
    /// `lead_time_to_ship_max_days`; `None`: see `default_handling_time`.
    pub handling_days: Option<u32>,
    /// With no `handling_days`: `true` sets Amazon's handling time back to its default (the
    /// attribute is replaced), `false` leaves Amazon's value as it is (merged).
    pub default_handling_time: bool,
    /// Product type; `None` uses `PRODUCT`.
    pub product_type: Option<String>,
}

/// The `fulfillment_availability` value of one SKU (`fulfillment_channel_code: DEFAULT`).
pub fn fulfillment_availability_value(quantity: u32, handling_days: Option<u32>) -> Value {
    let mut v = Map::new();
    v.insert("fulfillment_channel_code".into(), json!("DEFAULT"));
    v.insert("quantity".into(), json!(quantity));
    if let Some(days) = handling_days {
        v.insert("lead_time_to_ship_max_days".into(), json!(days));
    }
    Value::Object(v)
}

/// Options of [`build_listings_feeds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingsFeedOptions {
    /// `header.issueLocale` (e.g. `ja_JP`), for localized issues.
    pub issue_locale: Option<String>,
    /// Messages per feed (at most 25,000).
    pub max_messages_per_feed: usize,
    /// Largest accepted handling time (30 unless the seller is allow-listed, up to 120).
    pub max_handling_days: u32,
}

impl Default for ListingsFeedOptions {
    fn default() -> Self {
        Self {
            issue_locale: None,
            max_messages_per_feed: MAX_MESSAGES_PER_FEED,
            max_handling_days: DEFAULT_MAX_HANDLING_DAYS,
        }
    }
}

/// A message in a built listings feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingsMessage<K> {
    /// `messageId` within its feed.
    pub message_id: u64,
    /// The caller's key.
    pub key: K,
    /// SKU.
    pub sku: String,
}

/// One `JSON_LISTINGS_FEED` document.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingsFeed<K> {
    /// The document (UTF-8 JSON).
    pub json: String,
    /// `messageId` ↔ caller key.
    pub messages: Vec<ListingsMessage<K>>,
}

/// A rejected update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedUpdate<K> {
    /// The caller's key.
    pub key: K,
    /// SKU.
    pub sku: String,
    /// Why.
    pub problem: String,
}

/// Feeds built from a batch of updates.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingsFeeds<K> {
    /// Documents, each at most `max_messages_per_feed` messages.
    pub feeds: Vec<ListingsFeed<K>>,
    /// Updates left out.
    pub rejected: Vec<RejectedUpdate<K>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    seller_id: &'a str,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    issue_locale: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    message_id: u64,
    sku: &'a str,
    operation_type: &'static str,
    product_type: &'a str,
    patches: [Patch; 1],
}

#[derive(Serialize)]
struct Patch {
    op: &'static str,
    path: &'static str,
    value: [Value; 1],
}

/// Builds `JSON_LISTINGS_FEED` documents for `seller_id`. Updates with an empty SKU or an
/// out-of-range handling time are rejected; when a SKU appears more than once, the last update
/// wins and the earlier ones are rejected as superseded.
pub fn build_listings_feeds<K>(
    seller_id: &str,
    updates: impl IntoIterator<Item = (K, InventoryUpdate)>,
    options: &ListingsFeedOptions,
) -> ListingsFeeds<K> {
    let per_feed = options
        .max_messages_per_feed
        .clamp(1, MAX_MESSAGES_PER_FEED);
    let updates: Vec<(K, InventoryUpdate)> = updates.into_iter().collect();
    let mut last_index = std::collections::HashMap::new();
    for (i, (_, u)) in updates.iter().enumerate() {
        last_index.insert(u.sku.clone(), i);
    }
    let mut rejected = Vec::new();
    let mut valid = Vec::new();
    for (i, (key, update)) in updates.into_iter().enumerate() {
        let problem = if update.sku.trim().is_empty() {
            Some("sku: must not be empty".to_owned())
        } else if update
            .handling_days
            .is_some_and(|d| d > options.max_handling_days)
        {
            Some(format!(
                "lead_time_to_ship_max_days: at most {}",
                options.max_handling_days
            ))
        } else if update
            .product_type
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            Some("productType: must not be empty".to_owned())
        } else if last_index.get(&update.sku) != Some(&i) {
            Some("superseded by a later update of the same SKU".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => rejected.push(RejectedUpdate {
                key,
                sku: update.sku,
                problem,
            }),
            None => valid.push((key, update)),
        }
    }

    let mut feeds = Vec::new();
    let mut iter = valid.into_iter().peekable();
    while iter.peek().is_some() {
        let chunk: Vec<(K, InventoryUpdate)> = iter.by_ref().take(per_feed).collect();
        let mut out = String::with_capacity(chunk.len() * 220 + 128);
        out.push_str("{\"header\":");
        out.push_str(
            &serde_json::to_string(&Header {
                seller_id,
                version: "2.0",
                issue_locale: options.issue_locale.as_deref(),
            })
            .expect("serializable"),
        );
        out.push_str(",\"messages\":[");
        let mut messages = Vec::with_capacity(chunk.len());
        for (n, (key, update)) in chunk.into_iter().enumerate() {
            let message_id = n as u64 + 1;
            if n > 0 {
                out.push(',');
            }
            let message = Message {
                message_id,
                sku: &update.sku,
                operation_type: "PATCH",
                product_type: update
                    .product_type
                    .as_deref()
                    .unwrap_or(DEFAULT_PRODUCT_TYPE),
                patches: [Patch {
                    op: if update.handling_days.is_none() && update.default_handling_time {
                        "replace"
                    } else {
                        "merge"
                    },
                    path: FULFILLMENT_AVAILABILITY_PATH,
                    value: [fulfillment_availability_value(
                        update.quantity,
                        update.handling_days,
                    )],
                }],
            };
            out.push_str(&serde_json::to_string(&message).expect("serializable"));
            messages.push(ListingsMessage {
                message_id,
                key,
                sku: update.sku,
            });
        }
        out.push_str("]}");
        feeds.push(ListingsFeed {
            json: out,
            messages,
        });
    }
    ListingsFeeds { feeds, rejected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(sku: &str, quantity: u32, handling_days: Option<u32>) -> InventoryUpdate {
        InventoryUpdate {
            sku: sku.into(),
            quantity,
            handling_days,
            default_handling_time: false,
            product_type: None,
        }
    }

    /// 「外部商品で出荷作業日数を設定していない商品はAmazonの商品設定から出荷作業日数の設定が
    /// デフォルトに設定されます」: an update without handling days that asks for Amazon's default
    /// replaces the attribute (no handling time in it); one that keeps Amazon's value merges.
    #[test]
    fn default_handling_time_replaces_the_attribute() {
        let reset = InventoryUpdate {
            default_handling_time: true,
            ..update("SKU-1", 4, None)
        };
        let set = InventoryUpdate {
            default_handling_time: true,
            ..update("SKU-2", 4, Some(2))
        };
        let keep = update("SKU-3", 4, None);
        let built = build_listings_feeds(
            "A1SELLER",
            vec![(1, reset), (2, set), (3, keep)],
            &ListingsFeedOptions::default(),
        );
        let doc: Value = serde_json::from_str(&built.feeds[0].json).unwrap();
        let m = &doc["messages"];
        assert_eq!(m[0]["patches"][0]["op"], "replace");
        assert_eq!(
            m[0]["patches"][0]["value"][0],
            json!({"fulfillment_channel_code":"DEFAULT","quantity":4})
        );
        assert_eq!(m[1]["patches"][0]["op"], "merge");
        assert_eq!(m[2]["patches"][0]["op"], "merge");
    }

    #[test]
    fn merge_patch_with_optional_handling_time() {
        let built = build_listings_feeds(
            "A1SELLER",
            vec![
                (1, update("SKU-1", 7, Some(3))),
                (2, update("SKU-2", 0, None)),
            ],
            &ListingsFeedOptions {
                issue_locale: Some("ja_JP".into()),
                ..Default::default()
            },
        );
        assert_eq!(built.feeds.len(), 1);
        let doc: Value = serde_json::from_str(&built.feeds[0].json).unwrap();
        assert_eq!(doc["header"]["sellerId"], "A1SELLER");
        assert_eq!(doc["header"]["version"], "2.0");
        assert_eq!(doc["header"]["issueLocale"], "ja_JP");
        let m = &doc["messages"];
        assert_eq!(m[0]["messageId"], 1);
        assert_eq!(m[0]["operationType"], "PATCH");
        assert_eq!(m[0]["productType"], "PRODUCT");
        assert_eq!(m[0]["patches"][0]["op"], "merge");
        assert_eq!(
            m[0]["patches"][0]["path"],
            "/attributes/fulfillment_availability"
        );
        assert_eq!(
            m[0]["patches"][0]["value"][0],
            json!({"fulfillment_channel_code":"DEFAULT","quantity":7,"lead_time_to_ship_max_days":3})
        );
        assert_eq!(
            m[1]["patches"][0]["value"][0],
            json!({"fulfillment_channel_code":"DEFAULT","quantity":0})
        );
    }

    #[test]
    fn splits_and_rejects() {
        let updates = (0..7)
            .map(|i| (i, update(&format!("SKU-{i}"), i, None)))
            .chain([
                (100, update("", 1, None)),
                (101, update("SKU-X", 1, Some(31))),
                (102, update("SKU-3", 9, None)), // supersedes key 3
            ]);
        let built = build_listings_feeds(
            "A1",
            updates,
            &ListingsFeedOptions {
                max_messages_per_feed: 3,
                ..Default::default()
            },
        );
        let sizes: Vec<usize> = built.feeds.iter().map(|f| f.messages.len()).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        assert!(built.feeds.iter().all(|f| f.messages[0].message_id == 1));
        let rejected: Vec<u32> = built.rejected.iter().map(|r| r.key).collect();
        assert_eq!(rejected, vec![3, 100, 101]);
        let last = &built.feeds[2].messages[0];
        assert_eq!((last.key, last.sku.as_str()), (102, "SKU-3"));
    }

    #[test]
    fn default_split_is_25000() {
        let updates = (0..25_001u32).map(|i| (i, update(&format!("S{i}"), 1, None)));
        let built = build_listings_feeds("A1", updates, &ListingsFeedOptions::default());
        assert_eq!(built.feeds.len(), 2);
        assert_eq!(built.feeds[0].messages.len(), 25_000);
        assert_eq!(built.feeds[1].messages.len(), 1);
    }
}
