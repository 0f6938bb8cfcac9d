//! Listings Items API 2021-08-01: `getListingsItem` and `patchListingsItem`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Expect, Shop, json, segment};
use crate::error::{Error, Result};
use crate::listings_feed::{
    DEFAULT_PRODUCT_TYPE, FULFILLMENT_AVAILABILITY_PATH, fulfillment_availability_value,
};
use crate::operation::Operation;
use crate::types::{Money, string_enum};

string_enum! {
    /// Data sets of `getListingsItem`.
    pub enum ListingsIncludedData {
        /// Summaries.
        Summaries = "summaries",
        /// Attributes.
        Attributes = "attributes",
        /// Issues.
        Issues = "issues",
        /// Offers.
        Offers = "offers",
        /// Fulfillment availability.
        FulfillmentAvailability = "fulfillmentAvailability",
        /// Procurement.
        Procurement = "procurement",
        /// Relationships.
        Relationships = "relationships",
        /// Product types.
        ProductTypes = "productTypes",
        /// Identifiers (patch responses).
        Identifiers = "identifiers",
    }
}

string_enum! {
    /// Severity of a listings issue.
    pub enum IssueSeverity {
        /// Error.
        Error = "ERROR",
        /// Warning.
        Warning = "WARNING",
        /// Information.
        Info = "INFO",
    }
}

string_enum! {
    /// Status of a listings submission.
    pub enum SubmissionStatus {
        /// Accepted for processing.
        Accepted = "ACCEPTED",
        /// Rejected.
        Invalid = "INVALID",
        /// Valid (validation preview).
        Valid = "VALID",
    }
}

string_enum! {
    /// JSON Patch operation.
    pub enum PatchOp {
        /// add
        Add = "add",
        /// replace
        Replace = "replace",
        /// merge (added 2025-06-16)
        Merge = "merge",
        /// delete
        Delete = "delete",
    }
}

/// A listings issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// Code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Severity.
    pub severity: IssueSeverity,
    /// Attributes concerned.
    #[serde(default)]
    pub attribute_names: Vec<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Enforcements, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcements: Option<serde_json::Value>,
}

/// Summary of a listings item in one marketplace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSummary {
    /// Marketplace.
    pub marketplace_id: String,
    /// ASIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asin: Option<String>,
    /// Product type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
    /// Condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_type: Option<String>,
    /// `BUYABLE`, `DISCOVERABLE`.
    #[serde(default)]
    pub status: Vec<String>,
    /// Item name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
}

/// An offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemOffer {
    /// Marketplace.
    pub marketplace_id: String,
    /// `B2C` or `B2B`.
    pub offer_type: String,
    /// Price.
    pub price: Money,
}

/// Fulfillment availability of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentAvailability {
    /// `DEFAULT` for merchant-fulfilled.
    pub fulfillment_channel_code: String,
    /// Quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
}

/// `Item` returned by `getListingsItem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsItem {
    /// SKU.
    pub sku: String,
    /// Summaries.
    #[serde(default)]
    pub summaries: Vec<ItemSummary>,
    /// Attributes, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Issues.
    #[serde(default)]
    pub issues: Vec<Issue>,
    /// Offers.
    #[serde(default)]
    pub offers: Vec<ItemOffer>,
    /// Fulfillment availability.
    #[serde(default)]
    pub fulfillment_availability: Vec<FulfillmentAvailability>,
}

impl ListingsItem {
    /// The merchant-fulfilled (`DEFAULT`) quantity.
    pub fn merchant_quantity(&self) -> Option<u32> {
        self.fulfillment_availability
            .iter()
            .find(|f| f.fulfillment_channel_code == "DEFAULT")
            .and_then(|f| f.quantity)
    }
}

/// One JSON Patch operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// Operation.
    pub op: PatchOp,
    /// JSON Pointer of a top-level attribute.
    pub path: String,
    /// Values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Vec<serde_json::Value>>,
}

/// `ListingsItemPatchRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsItemPatchRequest {
    /// Product type (`PRODUCT` works for offer-only patches).
    pub product_type: String,
    /// Patches.
    pub patches: Vec<PatchOperation>,
}

impl ListingsItemPatchRequest {
    /// `merge` of `fulfillment_availability` (handling time only when given).
    pub fn fulfillment_availability(quantity: u32, handling_days: Option<u32>) -> Self {
        Self {
            product_type: DEFAULT_PRODUCT_TYPE.to_owned(),
            patches: vec![PatchOperation {
                op: PatchOp::Merge,
                path: FULFILLMENT_AVAILABILITY_PATH.to_owned(),
                value: Some(vec![fulfillment_availability_value(
                    quantity,
                    handling_days,
                )]),
            }],
        }
    }
}

/// `ListingsItemSubmissionResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsItemSubmissionResponse {
    /// SKU.
    pub sku: String,
    /// Status.
    pub status: SubmissionStatus,
    /// Submission id.
    pub submission_id: String,
    /// Issues.
    #[serde(default)]
    pub issues: Vec<Issue>,
}

/// Options of `patchListingsItem`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchOptions {
    /// `identifiers`, `issues`.
    pub included_data: Vec<ListingsIncludedData>,
    /// Validate without applying (`VALIDATION_PREVIEW`).
    pub validation_preview: bool,
    /// Locale of issue messages (e.g. `ja_JP`).
    pub issue_locale: Option<String>,
}

fn check_marketplaces(op: &str, marketplace_ids: &[String]) -> Result<()> {
    if marketplace_ids.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "{op}: marketplaceIds is required"
        )));
    }
    Ok(())
}

impl Shop {
    /// `getListingsItem` for this shop's seller.
    pub async fn get_listings_item(
        &self,
        sku: &str,
        marketplace_ids: &[String],
        included_data: &[ListingsIncludedData],
        issue_locale: Option<&str>,
    ) -> Result<ListingsItem> {
        check_marketplaces("getListingsItem", marketplace_ids)?;
        let included: Vec<&str> = included_data.iter().map(|s| s.as_str()).collect();
        let req = ApiRequest::new(
            Operation::GetListingsItem,
            Method::GET,
            format!(
                "/listings/2021-08-01/items/{}/{}",
                segment(self.seller_id()),
                segment(sku)
            ),
        )
        .query_csv("marketplaceIds", marketplace_ids)
        .query_csv("includedData", &included)
        .query_opt("issueLocale", issue_locale);
        self.execute(req, Expect::Json(json::<ListingsItem>)).await
    }

    /// `patchListingsItem` for this shop's seller. A PATCH with the same body is idempotent
    /// and retried on transient failures.
    pub async fn patch_listings_item(
        &self,
        sku: &str,
        marketplace_ids: &[String],
        body: &ListingsItemPatchRequest,
        options: &PatchOptions,
    ) -> Result<ListingsItemSubmissionResponse> {
        check_marketplaces("patchListingsItem", marketplace_ids)?;
        if body.patches.is_empty() {
            return Err(Error::InvalidRequest(
                "patchListingsItem: at least one patch".into(),
            ));
        }
        let included: Vec<&str> = options.included_data.iter().map(|s| s.as_str()).collect();
        let req = ApiRequest::new(
            Operation::PatchListingsItem,
            Method::PATCH,
            format!(
                "/listings/2021-08-01/items/{}/{}",
                segment(self.seller_id()),
                segment(sku)
            ),
        )
        .query_csv("marketplaceIds", marketplace_ids)
        .query_csv("includedData", &included)
        .query_opt(
            "mode",
            options.validation_preview.then_some("VALIDATION_PREVIEW"),
        )
        .query_opt("issueLocale", options.issue_locale.clone())
        .json(body)?;
        self.execute(req, Expect::Json(json::<ListingsItemSubmissionResponse>))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/models/listings-items-api-model/listingsItems_2021-08-01.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Amazon's sandbox responses parse.
    #[test]
    fn sandbox_responses_parse() {
        let m = model();
        let op = &m["paths"]["/listings/2021-08-01/items/{sellerId}/{sku}"];
        for case in op["get"]["responses"]["200"]["x-amzn-api-sandbox"]["static"]
            .as_array()
            .unwrap()
        {
            let item: ListingsItem = serde_json::from_value(case["response"].clone()).unwrap();
            assert_eq!(item.sku, "GM-ZDPI-9B4E");
            assert!(!item.summaries.is_empty());
        }
        for case in op["patch"]["responses"]["200"]["x-amzn-api-sandbox"]["static"]
            .as_array()
            .unwrap()
        {
            let r: ListingsItemSubmissionResponse =
                serde_json::from_value(case["response"].clone()).unwrap();
            assert_eq!(
                r.status.as_str(),
                case["response"]["status"].as_str().unwrap()
            );
            assert!(!matches!(r.status, SubmissionStatus::Other(_)));
        }
        let errors = crate::client::parse_error_body(
            op["patch"]["responses"]["400"]["x-amzn-api-sandbox"]["static"][0]["response"]
                .to_string()
                .as_bytes(),
        );
        assert_eq!(errors[0].code, "BAD_REQUEST");
    }

    /// The listings feed report example's items parse as Listings Items.
    #[test]
    fn report_items_parse_as_listings_items() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/schemas/feeds/listings-feed-processing-report-schema-v2.example.json"
        ))
        .unwrap();
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        let item: ListingsItem = serde_json::from_value(report["items"][0].clone()).unwrap();
        assert_eq!(item.merchant_quantity(), Some(10));
        assert_eq!(item.offers[0].price.amount.to_string(), "30.0");
    }

    #[test]
    fn patch_body() {
        let body = ListingsItemPatchRequest::fulfillment_availability(5, None);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"productType":"PRODUCT","patches":[{"op":"merge","path":"/attributes/fulfillment_availability","value":[{"fulfillment_channel_code":"DEFAULT","quantity":5}]}]})
        );
    }
}
