//! Listings: JSON Patch semantics shared by `JSON_LISTINGS_FEED` and `patchListingsItem`,
//! the feed processor and its JSON processing report, and the Listings Items `Item` shape.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::generate::trunc_secs;
use crate::model::Listing;
use crate::model::fmt_time;
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

/// Simulator's own issue codes (Amazon's numbers are not documented).
pub mod codes {
    /// The message does not follow the listings feed schema.
    pub const SCHEMA: &str = "4000001";
    /// A value is out of range (e.g. lead_time_to_ship_max_days outside 0–30).
    pub const OUT_OF_RANGE: &str = "4000002";
    /// The SKU has no listing for this seller.
    pub const SKU_NOT_FOUND: &str = "4000003";
    /// The path or operation is not supported.
    pub const UNSUPPORTED: &str = "4000004";
    /// The feed header is invalid.
    pub const HEADER: &str = "4000005";
}

/// An issue found while validating a message or patch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    pub code: &'static str,
    pub message: String,
    pub attribute: Option<String>,
}

fn issue(
    code: &'static str,
    en: String,
    ja: String,
    japanese: bool,
    attribute: Option<&str>,
) -> Issue {
    Issue {
        code,
        message: if japanese { ja } else { en },
        attribute: attribute.map(str::to_string),
    }
}

/// Applies JSON Patch operations to a listing. Validates everything first: on any issue
/// nothing is changed.
pub(crate) fn apply_patches(
    listing: &mut Listing,
    patches: &[Value],
    japanese: bool,
    now: DateTime<Utc>,
) -> Result<(), Vec<Issue>> {
    let mut next = listing.clone();
    let mut issues = Vec::new();
    for (i, p) in patches.iter().enumerate() {
        let op = p.get("op").and_then(Value::as_str).unwrap_or("");
        let path = p.get("path").and_then(Value::as_str).unwrap_or("");
        let Some(attr) = path
            .strip_prefix("/attributes/")
            .filter(|a| !a.is_empty() && !a.contains('/'))
        else {
            issues.push(issue(
                codes::UNSUPPORTED,
                format!("patches[{i}].path '{path}' is not supported; only top-level attributes (/attributes/<name>) can be patched."),
                format!("patches[{i}].path「{path}」はサポートされていません。/attributes/<属性名> のみ指定できます。"),
                japanese,
                None,
            ));
            continue;
        };
        if !matches!(op, "add" | "replace" | "merge" | "delete") {
            issues.push(issue(
                codes::SCHEMA,
                format!("patches[{i}].op '{op}' is invalid; use add, replace, merge or delete."),
                format!("patches[{i}].op「{op}」は無効です。add、replace、merge、delete のいずれかを指定してください。"),
                japanese,
                Some(attr),
            ));
            continue;
        }
        let value = match p.get("value") {
            Some(Value::Array(v)) => v.clone(),
            None if op == "delete" => Vec::new(),
            _ => {
                issues.push(issue(
                    codes::SCHEMA,
                    format!("patches[{i}].value must be an array of objects."),
                    format!("patches[{i}].value はオブジェクトの配列である必要があります。"),
                    japanese,
                    Some(attr),
                ));
                continue;
            }
        };
        if attr == "fulfillment_availability" {
            if let Err(mut e) = apply_fulfillment(&mut next, op, &value, japanese) {
                issues.append(&mut e);
            }
        } else {
            apply_generic(&mut next, attr, op, value);
        }
    }
    if issues.is_empty() {
        next.last_updated_time = trunc_secs(now);
        *listing = next;
        Ok(())
    } else {
        Err(issues)
    }
}

fn apply_generic(l: &mut Listing, attr: &str, op: &str, value: Vec<Value>) {
    match op {
        "delete" => {
            l.attributes.remove(attr);
        }
        "merge" => {
            let merged = match l.attributes.get(attr) {
                Some(Value::Array(old)) => {
                    let mut out = old.clone();
                    for (idx, v) in value.into_iter().enumerate() {
                        match (out.get_mut(idx), v) {
                            (Some(Value::Object(o)), Value::Object(n)) => o.extend(n),
                            (Some(slot), v) => *slot = v,
                            (None, v) => out.push(v),
                        }
                    }
                    out
                }
                _ => value,
            };
            l.attributes.insert(attr.to_string(), Value::Array(merged));
        }
        _ => {
            if attr == "item_name"
                && let Some(name) = value
                    .first()
                    .and_then(|v| v.get("value"))
                    .and_then(Value::as_str)
            {
                l.item_name = name.to_string();
            }
            l.attributes.insert(attr.to_string(), Value::Array(value));
        }
    }
}

/// `fulfillment_availability` (the MFN quantity and handling time) for channel DEFAULT.
fn apply_fulfillment(
    l: &mut Listing,
    op: &str,
    value: &[Value],
    japanese: bool,
) -> Result<(), Vec<Issue>> {
    let attr = Some("fulfillment_availability");
    if op == "delete" {
        l.quantity = None;
        l.lead_time_to_ship_max_days = None;
        l.restock_date = None;
        return Ok(());
    }
    let mut issues = Vec::new();
    let mut found = false;
    for (i, entry) in value.iter().enumerate() {
        let Some(obj) = entry.as_object() else {
            issues.push(issue(
                codes::SCHEMA,
                format!("fulfillment_availability[{i}] must be an object."),
                format!("fulfillment_availability[{i}] はオブジェクトである必要があります。"),
                japanese,
                attr,
            ));
            continue;
        };
        let channel = obj.get("fulfillment_channel_code").and_then(Value::as_str);
        let Some(channel) = channel else {
            issues.push(issue(
                codes::SCHEMA,
                format!("fulfillment_availability[{i}].fulfillment_channel_code is required."),
                format!("fulfillment_availability[{i}].fulfillment_channel_code は必須です。"),
                japanese,
                attr,
            ));
            continue;
        };
        if channel != "DEFAULT" {
            // Amazon-fulfilled channels are managed by Amazon; nothing to apply here.
            continue;
        }
        found = true;
        let quantity = match obj.get("quantity") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(q) if (0..=i64::from(u32::MAX)).contains(&q) => Some(q as u32),
                _ => {
                    issues.push(issue(codes::OUT_OF_RANGE, format!("The value '{v}' for quantity is invalid: it must be a non-negative integer."), format!("quantity の値「{v}」は無効です。0 以上の整数を指定してください。"), japanese, attr));
                    continue;
                }
            },
        };
        let lead = match obj.get("lead_time_to_ship_max_days") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(d) if (0..=30).contains(&d) => Some(d as u32),
                _ => {
                    issues.push(issue(codes::OUT_OF_RANGE, format!("The value '{v}' for lead_time_to_ship_max_days is invalid: it must be an integer from 0 to 30."), format!("lead_time_to_ship_max_days の値「{v}」は無効です。0〜30 の整数を指定してください。"), japanese, attr));
                    continue;
                }
            },
        };
        let restock = obj
            .get("restock_date")
            .and_then(Value::as_str)
            .map(str::to_string);
        match op {
            "merge" => {
                // Keeps the fields that are not sent.
                if quantity.is_some() {
                    l.quantity = quantity;
                }
                if lead.is_some() {
                    l.lead_time_to_ship_max_days = lead;
                }
                if restock.is_some() {
                    l.restock_date = restock;
                }
            }
            _ => {
                // add / replace: the attribute is replaced as a whole, so a handling time
                // that is not sent falls back to the default.
                l.quantity = quantity;
                l.lead_time_to_ship_max_days = lead;
                l.restock_date = restock;
            }
        }
    }
    if !found && issues.is_empty() && value.is_empty() && op != "merge" {
        l.quantity = None;
        l.lead_time_to_ship_max_days = None;
        l.restock_date = None;
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// Attributes of a listing as the Listings Items API shows them.
pub(crate) fn attributes_json(l: &Listing) -> Map<String, Value> {
    let mut attrs = l.attributes.clone();
    let mut fa = Map::new();
    fa.insert("fulfillment_channel_code".into(), json!("DEFAULT"));
    if let Some(q) = l.quantity {
        fa.insert("quantity".into(), json!(q));
    }
    if let Some(d) = l.lead_time_to_ship_max_days {
        fa.insert("lead_time_to_ship_max_days".into(), json!(d));
    }
    if let Some(r) = &l.restock_date {
        fa.insert("restock_date".into(), json!(r));
    }
    attrs.insert("fulfillment_availability".into(), json!([fa]));
    if !attrs.contains_key("item_name") {
        attrs.insert("item_name".into(), json!([{"value": l.item_name}]));
    }
    attrs
}

/// The Listings Items API `Item` for the requested `includedData`.
pub(crate) fn render_item(l: &Listing, included: &[String], marketplaces: &[String]) -> Value {
    let mids: Vec<&String> = if marketplaces.is_empty() {
        l.marketplace_ids.iter().collect()
    } else {
        marketplaces
            .iter()
            .filter(|m| l.marketplace_ids.contains(m))
            .collect()
    };
    let mut item = Map::new();
    item.insert("sku".into(), json!(l.sku));
    for inc in included {
        match inc.as_str() {
            "summaries" => {
                let status: Vec<&str> = if l.quantity.unwrap_or(0) > 0 {
                    vec!["BUYABLE", "DISCOVERABLE"]
                } else {
                    vec!["DISCOVERABLE"]
                };
                item.insert(
                    "summaries".into(),
                    Value::Array(
                        mids.iter()
                            .map(|m| {
                                json!({
                                    "marketplaceId": m,
                                    "asin": l.asin,
                                    "productType": l.product_type,
                                    "conditionType": "new_new",
                                    "status": status,
                                    "itemName": l.item_name,
                                    "createdDate": fmt_time(l.created_time),
                                    "lastUpdatedDate": fmt_time(l.last_updated_time),
                                })
                            })
                            .collect(),
                    ),
                );
            }
            "attributes" => {
                item.insert("attributes".into(), Value::Object(attributes_json(l)));
            }
            "issues" => {
                item.insert("issues".into(), json!([]));
            }
            "offers" => {
                item.insert("offers".into(), json!([]));
            }
            "fulfillmentAvailability" => {
                let mut fa = Map::new();
                fa.insert("fulfillmentChannelCode".into(), json!("DEFAULT"));
                if let Some(q) = l.quantity {
                    fa.insert("quantity".into(), json!(q));
                }
                item.insert("fulfillmentAvailability".into(), json!([fa]));
            }
            "procurement" => {
                item.insert("procurement".into(), json!([]));
            }
            "relationships" => {
                item.insert(
                    "relationships".into(),
                    Value::Array(
                        mids.iter()
                            .map(|m| json!({"marketplaceId": m, "relationships": []}))
                            .collect(),
                    ),
                );
            }
            "productTypes" => {
                item.insert(
                    "productTypes".into(),
                    Value::Array(
                        mids.iter()
                            .map(|m| json!({"marketplaceId": m, "productType": l.product_type}))
                            .collect(),
                    ),
                );
            }
            _ => {}
        }
    }
    Value::Object(item)
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
