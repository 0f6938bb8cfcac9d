//! Listings Items API 2021-08-01: getListingsItem and patchListingsItem.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{ApiError, Query, call, json_response, parse_json_body};
use crate::listing_items::{apply_patches, codes, render_item};
use crate::ops::Op;
use crate::sim::Sim;

const GET_INCLUDED: [&str; 8] = [
    "summaries",
    "attributes",
    "issues",
    "offers",
    "fulfillmentAvailability",
    "procurement",
    "relationships",
    "productTypes",
];

fn marketplaces(q: &Query) -> Result<Vec<String>, ApiError> {
    let m = q.list("marketplaceIds");
    if m.is_empty() {
        return Err(ApiError::invalid("marketplaceIds is required."));
    }
    Ok(m)
}

/// `GET /listings/2021-08-01/items/{sellerId}/{sku}`
pub(crate) async fn get_listings_item(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path((seller_id, sku)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    call(
        &sim,
        Op::GetListingsItem,
        &headers,
        |sim2, caller| async move {
            if seller_id != caller.seller_id {
                return Err(ApiError::unauthorized());
            }
            let q = Query::parse(raw.as_deref());
            let mids = marketplaces(&q)?;
            let mut included = q.list("includedData");
            if let Some(bad) = included
                .iter()
                .find(|i| !GET_INCLUDED.contains(&i.as_str()))
            {
                return Err(ApiError::invalid(format!(
                    "Invalid includedData value '{bad}'."
                )));
            }
            if included.is_empty() {
                included.push("summaries".into());
            }
            let st = sim2.lock();
            let listing = st
                .listings
                .get(&(seller_id.clone(), sku.clone()))
                .filter(|l| l.marketplace_ids.iter().any(|m| mids.contains(m)))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "SKU '{sku}' not found in marketplace {}",
                        mids.join(",")
                    ))
                })?;
            Ok(json_response(
                StatusCode::OK,
                &render_item(listing, &included, &mids),
            ))
        },
    )
    .await
}

/// `PATCH /listings/2021-08-01/items/{sellerId}/{sku}`
pub(crate) async fn patch_listings_item(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path((seller_id, sku)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    call(&sim, Op::PatchListingsItem, &headers, |sim2, caller| async move {
        if seller_id != caller.seller_id {
            return Err(ApiError::unauthorized());
        }
        let q = Query::parse(raw.as_deref());
        let mids = marketplaces(&q)?;
        let mut included = q.list("includedData");
        if let Some(bad) = included.iter().find(|i| *i != "identifiers" && *i != "issues") {
            return Err(ApiError::invalid(format!("Invalid includedData value '{bad}'.")));
        }
        if included.is_empty() {
            included.push("issues".into());
        }
        let preview = match q.one("mode") {
            None => false,
            Some("VALIDATION_PREVIEW") => true,
            Some(other) => return Err(ApiError::invalid(format!("Invalid mode '{other}'."))),
        };
        let japanese = q.one("issueLocale").is_some_and(|l| l.starts_with("ja"));
        let v = parse_json_body(&body)?;
        if v.get("productType").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApiError::invalid("productType is required."));
        }
        let patches = match v.get("patches") {
            Some(Value::Array(p)) if !p.is_empty() => p.clone(),
            _ => return Err(ApiError::invalid("patches must contain at least one patch operation.")),
        };
        for (i, p) in patches.iter().enumerate() {
            if p.get("op").and_then(Value::as_str).is_none() || p.get("path").and_then(Value::as_str).is_none() {
                return Err(ApiError::invalid(format!("patches[{i}] needs op and path.")));
            }
        }
        let mut st = sim2.lock();
        let now = st.now();
        let key = (seller_id.clone(), sku.clone());
        let submission_id = st.random_token(32).to_lowercase();
        let mut resp = json!({"sku": sku, "submissionId": submission_id});
        let issues: Vec<Value> = match st.listings.get(&key).cloned() {
            None => vec![json!({
                "code": codes::SKU_NOT_FOUND,
                "message": if japanese { format!("SKU「{sku}」が見つかりません。") } else { format!("The SKU '{sku}' was not found for this seller.") },
                "severity": "ERROR",
                "categories": ["INVALID_ATTRIBUTE"],
            })],
            Some(mut listing) => match apply_patches(&mut listing, &patches, japanese, now) {
                Ok(()) => {
                    if !preview {
                        st.listings.insert(key.clone(), listing);
                    }
                    Vec::new()
                }
                Err(issues) => issues
                    .into_iter()
                    .map(|i| {
                        let mut o = json!({"code": i.code, "message": i.message, "severity": "ERROR", "categories": ["INVALID_ATTRIBUTE"]});
                        if let Some(a) = i.attribute {
                            o["attributeNames"] = json!([a]);
                        }
                        o
                    })
                    .collect(),
            },
        };
        resp["status"] = json!(match (issues.is_empty(), preview) {
            (false, _) => "INVALID",
            (true, true) => "VALID",
            (true, false) => "ACCEPTED",
        });
        if included.iter().any(|i| i == "issues") {
            resp["issues"] = Value::Array(issues);
        }
        if included.iter().any(|i| i == "identifiers") {
            let ids: Vec<Value> = st
                .listings
                .get(&key)
                .map(|l| {
                    mids.iter()
                        .filter(|m| l.marketplace_ids.contains(m))
                        .map(|m| json!({"marketplaceId": m, "asin": l.asin}))
                        .collect()
                })
                .unwrap_or_default();
            resp["identifiers"] = Value::Array(ids);
        }
        Ok(json_response(StatusCode::OK, &resp))
    })
    .await
}
