//! Listings Items semantics shared by `JSON_LISTINGS_FEED` and `patchListingsItem`: JSON Patch
//! operations on a listing (validated first: on any issue nothing changes), the issue codes,
//! and the Listings Items `Item` shape.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::generate::trunc_secs;
use crate::model::{Listing, fmt_time};

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

/// An issue with the message in English or Japanese (`issueLocale` `ja_JP`).
pub(crate) fn issue(
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
