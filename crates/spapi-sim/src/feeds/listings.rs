//! `JSON_LISTINGS_FEED`: the feed processor and its JSON processing report. The patch
//! semantics and the `Item` shape it shares with `patchListingsItem` are in `listing_items`.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::generate::trunc_secs;
use crate::listing_items::{Issue, apply_patches, codes, issue, render_item};
use crate::model::Listing;
use crate::state::State;

/// The official listings feed message schema (v2), embedded.
const MESSAGE_SCHEMA: &str =
    include_str!("../../../../spapi-models/schemas/feeds/listings-feed-message-schema-v2.json");

fn message_validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(MESSAGE_SCHEMA).ok()?;
        jsonschema::validator_for(&schema).ok()
    })
    .as_ref()
}

fn report_issue(message_id: Option<i64>, sku: Option<&str>, severity: &str, is: &Issue) -> Value {
    let mut o = Map::new();
    if let Some(m) = message_id.filter(|m| *m >= 1) {
        o.insert("messageId".into(), json!(m));
    }
    if let Some(s) = sku.filter(|s| !s.is_empty()) {
        o.insert("sku".into(), json!(s));
    }
    o.insert("code".into(), json!(is.code));
    o.insert("severity".into(), json!(severity));
    o.insert("message".into(), json!(is.message));
    if let Some(a) = &is.attribute {
        o.insert("attributeName".into(), json!(a));
    }
    Value::Object(o)
}

/// Result of processing a listings feed: whether it was FATAL, and the report.
pub(crate) struct ListingsOutcome {
    pub fatal: bool,
    pub report: Value,
}

fn fatal(seller_id: &str, feed_id: &str, is: Issue) -> ListingsOutcome {
    ListingsOutcome {
        fatal: true,
        report: json!({
            "header": {"sellerId": seller_id, "version": "2.0", "feedId": feed_id},
            "issues": [report_issue(None, None, "ERROR", &is)],
            "summary": {"errors": 1, "warnings": 0, "messagesProcessed": 0, "messagesAccepted": 0, "messagesInvalid": 0},
        }),
    }
}

/// Processes a JSON_LISTINGS_FEED document.
pub(crate) fn process(
    st: &mut State,
    seller_id: &str,
    feed_id: &str,
    input: &[u8],
) -> ListingsOutcome {
    let doc: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => {
            return fatal(
                seller_id,
                feed_id,
                issue(
                    codes::SCHEMA,
                    format!("The feed document is not valid JSON: {e}"),
                    String::new(),
                    false,
                    None,
                ),
            );
        }
    };
    let header = doc.get("header").and_then(Value::as_object);
    let japanese = header
        .and_then(|h| h.get("issueLocale"))
        .and_then(Value::as_str)
        .is_some_and(|l| l.starts_with("ja"));
    let Some(header) = header else {
        return fatal(
            seller_id,
            feed_id,
            issue(
                codes::HEADER,
                "The feed header is missing.".into(),
                "フィードのヘッダーがありません。".into(),
                japanese,
                None,
            ),
        );
    };
    if header.get("version").and_then(Value::as_str) != Some("2.0") {
        return fatal(
            seller_id,
            feed_id,
            issue(
                codes::HEADER,
                "header.version must be \"2.0\".".into(),
                "header.version は \"2.0\" である必要があります。".into(),
                japanese,
                None,
            ),
        );
    }
    match header.get("sellerId").and_then(Value::as_str) {
        Some(s) if s == seller_id => {}
        Some(s) => {
            return fatal(
                seller_id,
                feed_id,
                issue(
                    codes::HEADER,
                    format!(
                        "header.sellerId {s} does not match the selling partner that submitted the feed."
                    ),
                    format!("header.sellerId {s} がフィードを送信した出品者と一致しません。"),
                    japanese,
                    None,
                ),
            );
        }
        None => {
            return fatal(
                seller_id,
                feed_id,
                issue(
                    codes::HEADER,
                    "header.sellerId is required.".into(),
                    "header.sellerId は必須です。".into(),
                    japanese,
                    None,
                ),
            );
        }
    }
    let report_spec = header.get("report").cloned();
    let included: Vec<String> = report_spec
        .as_ref()
        .and_then(|r| r.get("includedData"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let Some(messages) = doc.get("messages").and_then(Value::as_array) else {
        return fatal(
            seller_id,
            feed_id,
            issue(
                codes::SCHEMA,
                "messages must be an array of 1 to 25000 messages.".into(),
                "messages は 1〜25000 件のメッセージの配列である必要があります。".into(),
                japanese,
                None,
            ),
        );
    };
    if messages.is_empty() || messages.len() > 25_000 {
        return fatal(
            seller_id,
            feed_id,
            issue(
                codes::SCHEMA,
                "messages must be an array of 1 to 25000 messages.".into(),
                "messages は 1〜25000 件のメッセージの配列である必要があります。".into(),
                japanese,
                None,
            ),
        );
    }
    let now = st.now();
    let validator = message_validator();
    let mut issues_out = Vec::new();
    let mut accepted = 0u32;
    let mut invalid = 0u32;
    let mut touched: Vec<String> = Vec::new();
    for msg in messages {
        let message_id = msg.get("messageId").and_then(Value::as_i64);
        let sku = msg
            .get("sku")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut issues: Vec<Issue> = Vec::new();
        if let Some(v) = validator {
            for e in v.iter_errors(msg).take(5) {
                issues.push(Issue {
                    code: codes::SCHEMA,
                    message: format!("The message does not follow the listings feed schema: {e}"),
                    attribute: None,
                });
            }
        }
        if issues.is_empty() {
            let op_type = msg
                .get("operationType")
                .and_then(Value::as_str)
                .unwrap_or("");
            let key = (seller_id.to_string(), sku.clone());
            let requirements = msg
                .get("requirements")
                .and_then(Value::as_str)
                .unwrap_or("LISTING");
            let exists = st.listings.contains_key(&key);
            let creates = op_type == "UPDATE" && requirements != "LISTING_OFFER_ONLY";
            if !exists && !creates {
                issues.push(issue(
                    codes::SKU_NOT_FOUND,
                    format!("The SKU '{sku}' was not found for this seller."),
                    format!("SKU「{sku}」が見つかりません。"),
                    japanese,
                    None,
                ));
            } else {
                match op_type {
                    "DELETE" => {
                        st.listings.remove(&key);
                    }
                    "PATCH" => {
                        let patches = msg
                            .get("patches")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        if let Some(l) = st.listings.get_mut(&key)
                            && let Err(mut e) = apply_patches(l, &patches, japanese, now)
                        {
                            issues.append(&mut e);
                        }
                    }
                    _ => {
                        // UPDATE replaces all attributes; PARTIAL_UPDATE replaces the attributes
                        // sent (= PATCH with "replace").
                        let attrs = msg
                            .get("attributes")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        let product_type = msg
                            .get("productType")
                            .and_then(Value::as_str)
                            .unwrap_or("PRODUCT")
                            .to_string();
                        let mut l =
                            st.listings.get(&key).cloned().unwrap_or_else(|| {
                                new_listing(seller_id, &sku, &product_type, now)
                            });
                        if op_type == "UPDATE" {
                            l.attributes.clear();
                            l.quantity = None;
                            l.lead_time_to_ship_max_days = None;
                            l.restock_date = None;
                        }
                        l.product_type = product_type;
                        let patches: Vec<Value> = attrs
                            .into_iter()
                            .map(|(k, v)| json!({"op": "replace", "path": format!("/attributes/{k}"), "value": v}))
                            .collect();
                        match apply_patches(&mut l, &patches, japanese, now) {
                            Ok(()) => {
                                st.listings.insert(key, l);
                            }
                            Err(mut e) => issues.append(&mut e),
                        }
                    }
                }
            }
        }
        if issues.is_empty() {
            accepted += 1;
            touched.push(sku.clone());
        } else {
            invalid += 1;
            for is in &issues {
                issues_out.push(report_issue(message_id, Some(&sku), "ERROR", is));
            }
        }
    }
    let errors = issues_out.len();
    let mut header_out = json!({"sellerId": seller_id, "version": "2.0", "feedId": feed_id});
    if let Some(r) = report_spec {
        header_out["report"] = r;
    }
    let mut report = json!({
        "header": header_out,
        "issues": issues_out,
        "summary": {
            "errors": errors,
            "warnings": 0,
            "messagesProcessed": messages.len(),
            "messagesAccepted": accepted,
            "messagesInvalid": invalid,
        },
    });
    if !included.is_empty() {
        let items: Vec<Value> = touched
            .iter()
            .filter_map(|sku| st.listings.get(&(seller_id.to_string(), sku.clone())))
            .map(|l| render_item(l, &included, &[]))
            .collect();
        report["summary"]["itemSummary"] =
            json!({"items": items.len(), "errors": 0, "warnings": 0});
        report["items"] = Value::Array(items);
    }
    ListingsOutcome {
        fatal: false,
        report,
    }
}

fn new_listing(seller_id: &str, sku: &str, product_type: &str, now: DateTime<Utc>) -> Listing {
    Listing {
        seller_id: seller_id.to_string(),
        sku: sku.to_string(),
        asin: format!(
            "B0SIMN{:04}",
            sku.bytes().map(u32::from).sum::<u32>() % 10_000
        ),
        product_type: product_type.to_string(),
        item_name: sku.to_string(),
        marketplace_ids: crate::model::MARKETPLACES
            .iter()
            .map(|m| m.id.to_string())
            .collect(),
        quantity: None,
        lead_time_to_ship_max_days: None,
        restock_date: None,
        attributes: Map::new(),
        created_time: trunc_secs(now),
        last_updated_time: trunc_secs(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        let now = Utc::now();
        let mut l = new_listing("S", "SKU-1", "PRODUCT", now);
        l.quantity = Some(5);
        l.lead_time_to_ship_max_days = Some(3);
        l
    }

    #[test]
    fn merge_keeps_handling_time_replace_resets_it() {
        let now = Utc::now();
        let mut l = listing();
        let merge = json!([{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 9}]}]);
        apply_patches(&mut l, merge.as_array().unwrap(), false, now).unwrap();
        assert_eq!(
            (l.quantity, l.lead_time_to_ship_max_days),
            (Some(9), Some(3))
        );
        let replace = json!([{"op": "replace", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}]}]);
        apply_patches(&mut l, replace.as_array().unwrap(), false, now).unwrap();
        assert_eq!((l.quantity, l.lead_time_to_ship_max_days), (Some(4), None));
    }

    #[test]
    fn out_of_range_lead_time_changes_nothing() {
        let now = Utc::now();
        let mut l = listing();
        let p = json!([{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1, "lead_time_to_ship_max_days": 31}]}]);
        let issues = apply_patches(&mut l, p.as_array().unwrap(), true, now).unwrap_err();
        assert_eq!(issues[0].code, codes::OUT_OF_RANGE);
        assert!(issues[0].message.contains("0〜30"));
        assert_eq!(l.quantity, Some(5));
    }

    #[test]
    fn message_schema_is_embedded() {
        let v = message_validator().expect("schema compiles");
        assert!(v.is_valid(&json!({"messageId": 1, "sku": "A", "operationType": "DELETE"})));
        assert!(!v.is_valid(&json!({"messageId": 1, "sku": "A", "operationType": "PATCH"})));
    }
}
