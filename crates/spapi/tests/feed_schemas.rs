//! Generated feeds validate against schemas: the fulfillment feed against the project's own
//! `spapi-models/xsd/OrderFulfillmentSubset.xsd` (with `xmllint`), the listings feed against
//! Amazon's official `listings-feed-schema-v2.json` (with the `jsonschema` crate).

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use spapi::fulfillment_feed::{
    Carrier, CodCollectionMethod, FulfillmentItem, ShipmentConfirmation, build_fulfillment_feed,
};
use spapi::listings_feed::{InventoryUpdate, ListingsFeedOptions, build_listings_feeds};

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spapi-models");

/// Runs `xmllint --noout --schema xsd -` on `xml`; returns (ok, stderr).
fn xmllint(xsd: &str, xml: &str) -> (bool, String) {
    let mut child = Command::new("xmllint")
        .args(["--noout", "--schema", xsd, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint is installed (Debian package libxml2-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn now() -> DateTime<Utc> {
    "2026-11-28T00:00:00Z".parse().unwrap()
}

fn confirmations() -> Vec<(u32, ShipmentConfirmation)> {
    let date = DateTime::parse_from_rfc3339("2026-11-27T18:30:00+09:00").unwrap();
    vec![
        (
            1,
            ShipmentConfirmation {
                amazon_order_id: "503-1234567-1234567".into(),
                merchant_fulfillment_id: Some(1),
                fulfillment_date: date,
                carrier: Carrier::Code("YamatoTransport".into()),
                shipping_method: Some("宅急便".into()),
                tracking_number: "123456789012".into(),
                cod_collection_method: Some(CodCollectionMethod::DirectPayment),
                items: vec![
                    FulfillmentItem {
                        amazon_order_item_code: "12345678901234".into(),
                        merchant_fulfillment_item_id: Some(1),
                        quantity: 2,
                        transparency_codes: vec!["AZ:ABCDEFGHIJKLMNOPQRSTUVWXY".into()],
                    },
                    FulfillmentItem {
                        amazon_order_item_code: "12345678901235".into(),
                        merchant_fulfillment_item_id: None,
                        quantity: 1,
                        transparency_codes: vec![],
                    },
                ],
            },
        ),
        (
            2,
            ShipmentConfirmation {
                amazon_order_id: "250-7654321-7654321".into(),
                merchant_fulfillment_id: None,
                fulfillment_date: date,
                carrier: Carrier::Other {
                    name: "西濃運輸 \"カンガルー便\" <&>".into(),
                },
                shipping_method: None,
                tracking_number: "9876-5432-1098".into(),
                cod_collection_method: None,
                items: vec![],
            },
        ),
        (
            3,
            ShipmentConfirmation {
                amazon_order_id: "not-an-order".into(),
                merchant_fulfillment_id: None,
                fulfillment_date: date,
                carrier: Carrier::Code("SagawaExpress".into()),
                shipping_method: None,
                tracking_number: "1".repeat(51),
                cod_collection_method: None,
                items: vec![],
            },
        ),
    ]
}

#[test]
fn fulfillment_feed_validates_against_the_subset_xsd() {
    let feed = build_fulfillment_feed("A1SIMSELLER0001", confirmations(), now());
    assert_eq!(feed.messages.len(), 2);
    assert_eq!(feed.rejected.len(), 1);
    assert_eq!(feed.rejected[0].problems.len(), 2, "{:?}", feed.rejected);
    let xml = feed.xml.expect("valid messages");
    let xsd = format!("{MODELS}/xsd/OrderFulfillmentSubset.xsd");
    let (ok, stderr) = xmllint(&xsd, &xml);
    assert!(ok, "{stderr}\n{xml}");

    // The simulator's independently written schema (if present) accepts it too.
    let other = format!("{MODELS}/xsd/OrderFulfillment.xsd");
    if std::path::Path::new(&other).exists() {
        let (ok, stderr) = xmllint(&other, &xml);
        assert!(ok, "{stderr}");
    }
}

/// The schema is not a rubber stamp: what the builder would reject, the XSD rejects too.
#[test]
fn subset_xsd_rejects_what_the_builder_rejects() {
    let xsd = format!("{MODELS}/xsd/OrderFulfillmentSubset.xsd");
    let good = build_fulfillment_feed("A1", confirmations().into_iter().take(1), now())
        .xml
        .unwrap();
    let cases = [
        good.replace("503-1234567-1234567", "503-123456-1234567"),
        good.replace("123456789012<", &format!("{}<", "1".repeat(51))),
        good.replace("12345678901234", "1234567890123"),
        good.replace("<Quantity>2</Quantity>", "<Quantity>0</Quantity>"),
        good.replace("<MessageID>1</MessageID>", "<MessageID>x</MessageID>"),
        good.replace("<CarrierCode>YamatoTransport</CarrierCode>", ""),
    ];
    for (n, bad) in cases.iter().enumerate() {
        assert_ne!(bad, &good, "case {n} changed nothing");
        let (ok, _) = xmllint(&xsd, bad);
        assert!(!ok, "case {n} should be invalid");
    }
}

#[test]
fn listings_feed_validates_against_amazons_json_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{MODELS}/schemas/feeds/listings-feed-schema-v2.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();

    // Amazon's own example validates (the validator works on this schema).
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{MODELS}/schemas/feeds/listings-feed-schema-v2.example.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(validator.is_valid(&example));

    let updates = (0..5u32).map(|i| {
        (
            i,
            InventoryUpdate {
                sku: format!("SKU-{i}-日本"),
                quantity: i * 3,
                handling_days: (i % 2 == 0).then_some(i),
                default_handling_time: i % 3 == 0,
                product_type: None,
            },
        )
    });
    let built = build_listings_feeds(
        "A1SIMSELLER0001",
        updates,
        &ListingsFeedOptions {
            issue_locale: Some("ja_JP".into()),
            max_messages_per_feed: 2,
            ..Default::default()
        },
    );
    assert_eq!(built.feeds.len(), 3);
    for feed in &built.feeds {
        let doc: serde_json::Value = serde_json::from_str(&feed.json).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{}", feed.json);
    }

    // And it catches a broken document.
    let mut broken: serde_json::Value = serde_json::from_str(&built.feeds[0].json).unwrap();
    broken["messages"][0]["operationType"] = "PATCH_ALL".into();
    assert!(!validator.is_valid(&broken));
    broken["messages"][0]["operationType"] = "PATCH".into();
    broken["messages"][0]["attributes"] = serde_json::json!({"x": 1});
    assert!(
        !validator.is_valid(&broken),
        "PATCH must not carry attributes"
    );
}

/// Issue 21 item 1: the buyer-cancellation acknowledgement validates against the project's
/// subset of OrderAcknowledgement.xsd, and the schema refuses what the builder refuses.
#[test]
fn cancellation_feed_validates_against_the_acknowledgement_subset_xsd() {
    use spapi::acknowledgement_feed::{BuyerCancellation, build_cancellation_feed};
    let feed = build_cancellation_feed(
        "A1SIMSELLER0001",
        [
            (
                1,
                BuyerCancellation {
                    amazon_order_id: "503-1234567-1234567".into(),
                    order_item_ids: vec!["11111111111111".into(), "22222222222222".into()],
                },
            ),
            (
                2,
                BuyerCancellation {
                    amazon_order_id: "503-1234567-123456".into(),
                    order_item_ids: vec!["1111".into()],
                },
            ),
        ],
    );
    assert_eq!(feed.messages.len(), 1);
    assert_eq!(feed.rejected[0].key, 2);
    assert_eq!(feed.rejected[0].problems.len(), 2, "{:?}", feed.rejected);
    let xml = feed.xml.expect("one valid message");
    assert_eq!(
        xml.matches("<CancelReason>BuyerCanceled</CancelReason>")
            .count(),
        2
    );
    let xsd = format!("{MODELS}/xsd/OrderAcknowledgementSubset.xsd");
    let (ok, stderr) = xmllint(&xsd, &xml);
    assert!(ok, "{stderr}\n{xml}");
    for broken in [
        xml.replace(
            "<StatusCode>Failure</StatusCode>",
            "<StatusCode>Cancel</StatusCode>",
        ),
        xml.replace("BuyerCanceled", "BuyerCancelled"),
        xml.replace("11111111111111", "1111"),
    ] {
        assert!(!xmllint(&xsd, &broken).0, "accepted: {broken}");
    }
}
