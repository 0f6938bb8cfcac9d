//! Orders API v2026-01-01: `searchOrders` and `getOrder` (with `includedData`).
//!
//! Here: the parameters and their rules, the response envelopes and the operations. The order
//! model ([`Order`], its parts and the API's enums) lives in `order_model` and is re-exported
//! here, so `spapi::orders::Order` and the rest keep their paths.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Expect, Shop, json, segment};
use crate::error::{Error, Result};
use crate::operation::Operation;

pub use crate::order_model::*;

/// Parameters of `searchOrders`. Exactly one of `created_after` / `last_updated_after` is
/// required; `*_before` only with its `*_after` and at least two minutes before now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchOrdersParams {
    /// Orders created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Orders created before this time (requires `created_after`).
    pub created_before: Option<DateTime<Utc>>,
    /// Orders updated at or after this time.
    pub last_updated_after: Option<DateTime<Utc>>,
    /// Orders updated before this time (requires `last_updated_after`).
    pub last_updated_before: Option<DateTime<Utc>>,
    /// Filter by fulfillment status.
    pub fulfillment_statuses: Vec<FulfillmentStatus>,
    /// Marketplaces (at most 50).
    pub marketplace_ids: Vec<String>,
    /// Filter by fulfiller.
    pub fulfilled_by: Vec<FulfilledBy>,
    /// Page size, 1–100 (Amazon's default is 100).
    pub max_results_per_page: Option<u32>,
    /// Token of the next page (valid 24 h; other filters must be repeated unchanged).
    pub pagination_token: Option<String>,
    /// Optional data sets.
    pub included_data: Vec<IncludedData>,
}

impl SearchOrdersParams {
    /// Orders created in `[after, before)`.
    pub fn created(after: DateTime<Utc>, before: Option<DateTime<Utc>>) -> Self {
        Self {
            created_after: Some(after),
            created_before: before,
            ..Self::default()
        }
    }

    /// Orders updated in `[after, before)`.
    pub fn last_updated(after: DateTime<Utc>, before: Option<DateTime<Utc>>) -> Self {
        Self {
            last_updated_after: Some(after),
            last_updated_before: before,
            ..Self::default()
        }
    }

    /// Parameters of the page after `response`, or `None` on the last page.
    pub fn next_page(&self, response: &SearchOrdersResponse) -> Option<Self> {
        let token = response.pagination.as_ref()?.next_token.clone()?;
        Some(Self {
            pagination_token: Some(token),
            ..self.clone()
        })
    }

    /// Checks the documented parameter rules (done before every call).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidRequest(format!("searchOrders: {m}")));
        match (self.created_after, self.last_updated_after) {
            (Some(_), Some(_)) => return bad("createdAfter and lastUpdatedAfter are exclusive"),
            (None, None) => return bad("createdAfter or lastUpdatedAfter is required"),
            _ => {}
        }
        if self.created_before.is_some() && self.created_after.is_none() {
            return bad("createdBefore requires createdAfter");
        }
        if self.last_updated_before.is_some() && self.last_updated_after.is_none() {
            return bad("lastUpdatedBefore requires lastUpdatedAfter");
        }
        let latest = now - chrono::Duration::minutes(2);
        for (after, before) in [
            (self.created_after, self.created_before),
            (self.last_updated_after, self.last_updated_before),
        ] {
            if let (Some(a), Some(b)) = (after, before) {
                if b < a {
                    return bad("*Before must not be earlier than *After");
                }
                if b > latest {
                    return bad("*Before must be at least two minutes before now");
                }
            }
        }
        if self.marketplace_ids.len() > 50 {
            return bad("at most 50 marketplaceIds");
        }
        if let Some(n) = self.max_results_per_page
            && !(1..=100).contains(&n)
        {
            return bad("maxResultsPerPage must be 1..=100");
        }
        Ok(())
    }

    fn to_request(&self) -> ApiRequest {
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let statuses: Vec<&str> = self
            .fulfillment_statuses
            .iter()
            .map(|s| s.as_str())
            .collect();
        let fulfilled: Vec<&str> = self.fulfilled_by.iter().map(|s| s.as_str()).collect();
        let included: Vec<&str> = self.included_data.iter().map(|s| s.as_str()).collect();
        ApiRequest::new(
            Operation::SearchOrders,
            Method::GET,
            "/orders/2026-01-01/orders".to_owned(),
        )
        .query_opt("createdAfter", ts(self.created_after))
        .query_opt("createdBefore", ts(self.created_before))
        .query_opt("lastUpdatedAfter", ts(self.last_updated_after))
        .query_opt("lastUpdatedBefore", ts(self.last_updated_before))
        .query_csv("fulfillmentStatuses", &statuses)
        .query_csv("marketplaceIds", &self.marketplace_ids)
        .query_csv("fulfilledBy", &fulfilled)
        .query_opt(
            "maxResultsPerPage",
            self.max_results_per_page.map(|n| n.to_string()),
        )
        .query_opt("paginationToken", self.pagination_token.clone())
        .query_csv("includedData", &included)
    }
}

/// `SearchOrdersResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchOrdersResponse {
    /// Orders of this page.
    #[serde(default)]
    pub orders: Vec<Order>,
    /// Present unless this is the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Upper bound Amazon applied to `lastUpdatedTime` (use as the next watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_before: Option<DateTime<Utc>>,
    /// Upper bound Amazon applied to `createdTime` (use as the next watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<DateTime<Utc>>,
}

/// Pagination of `searchOrders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Token of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `GetOrderResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetOrderResponse {
    /// The order.
    pub order: Order,
}

impl Shop {
    /// `searchOrders` (Orders v2026-01-01): one page of orders. Parameters are validated
    /// before sending ([`Error::InvalidRequest`]). Follow pages with
    /// [`SearchOrdersParams::next_page`].
    pub async fn search_orders(&self, params: &SearchOrdersParams) -> Result<SearchOrdersResponse> {
        params.validate(Utc::now())?;
        self.execute(
            params.to_request(),
            Expect::Json(json::<SearchOrdersResponse>),
        )
        .await
    }

    /// `getOrder` (Orders v2026-01-01) with the requested data sets.
    pub async fn get_order(&self, order_id: &str, included_data: &[IncludedData]) -> Result<Order> {
        let included: Vec<&str> = included_data.iter().map(|s| s.as_str()).collect();
        let req = ApiRequest::new(
            Operation::GetOrder,
            Method::GET,
            format!("/orders/2026-01-01/orders/{}", segment(order_id)),
        )
        .query_csv("includedData", &included);
        let response: GetOrderResponse = self
            .execute(req, Expect::Json(json::<GetOrderResponse>))
            .await?;
        Ok(response.order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn search_params_rules() {
        let now = t("2026-11-28T12:00:00Z");
        assert!(SearchOrdersParams::default().validate(now).is_err());
        let ok =
            SearchOrdersParams::created(t("2026-11-20T00:00:00Z"), Some(t("2026-11-28T11:58:00Z")));
        ok.validate(now).unwrap();
        let too_recent =
            SearchOrdersParams::created(t("2026-11-20T00:00:00Z"), Some(t("2026-11-28T11:59:00Z")));
        assert!(too_recent.validate(now).is_err());
        let mixed = SearchOrdersParams {
            last_updated_before: Some(t("2026-11-28T11:00:00Z")),
            ..SearchOrdersParams::created(t("2026-11-20T00:00:00Z"), None)
        };
        assert!(mixed.validate(now).is_err());
        let both = SearchOrdersParams {
            last_updated_after: Some(t("2026-11-20T00:00:00Z")),
            ..SearchOrdersParams::created(t("2026-11-20T00:00:00Z"), None)
        };
        assert!(both.validate(now).is_err());
        let page = SearchOrdersParams {
            max_results_per_page: Some(101),
            ..SearchOrdersParams::last_updated(t("2026-11-20T00:00:00Z"), None)
        };
        assert!(page.validate(now).is_err());
    }

    #[test]
    fn search_query_uses_csv_and_utc_z() {
        let p = SearchOrdersParams {
            fulfillment_statuses: vec![FulfillmentStatus::Pending, FulfillmentStatus::Unshipped],
            marketplace_ids: vec!["A1VC38T7YXB528".into()],
            included_data: vec![IncludedData::Buyer, IncludedData::Recipient],
            max_results_per_page: Some(100),
            ..SearchOrdersParams::created(t("2026-11-20T09:00:00+09:00"), None)
        };
        let q = p.to_request().query;
        assert_eq!(
            q,
            vec![
                ("createdAfter", "2026-11-20T00:00:00Z".to_owned()),
                ("fulfillmentStatuses", "PENDING,UNSHIPPED".to_owned()),
                ("marketplaceIds", "A1VC38T7YXB528".to_owned()),
                ("maxResultsPerPage", "100".to_owned()),
                ("includedData", "BUYER,RECIPIENT".to_owned()),
            ]
        );
    }

    fn model() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/models/orders-api-model/orders_2026-01-01.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn cases(model: &serde_json::Value, path: &str, status: &str) -> Vec<serde_json::Value> {
        model["paths"][path]["get"]["responses"][status]["x-amzn-api-sandbox"]["static"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Every `x-amzn-api-sandbox` response of searchOrders and getOrder parses, and the typed
    /// model keeps what matters (ids, statuses, exact money, Japanese text).
    #[test]
    fn sandbox_responses_parse() {
        let m = model();
        let search = cases(&m, "/orders/2026-01-01/orders", "200");
        assert_eq!(search.len(), 3);
        for case in &search {
            let r: SearchOrdersResponse = serde_json::from_value(case["response"].clone()).unwrap();
            let raw = case["response"]["orders"].as_array().unwrap();
            assert_eq!(r.orders.len(), raw.len());
            for (order, raw) in r.orders.iter().zip(raw) {
                assert_eq!(order.order_id, raw["orderId"].as_str().unwrap());
                assert_eq!(
                    order.order_items.len(),
                    raw["orderItems"].as_array().unwrap().len()
                );
                if let Some(status) = raw["fulfillment"]["fulfillmentStatus"].as_str() {
                    let parsed = order.fulfillment_status().unwrap();
                    assert_eq!(parsed.as_str(), status);
                    assert!(!matches!(parsed, FulfillmentStatus::Other(_)), "{status}");
                }
                // Amounts survive exactly (decimal strings, no float).
                if let Some(total) = &order.proceeds.as_ref().and_then(|p| p.grand_total.clone()) {
                    assert_eq!(
                        total.amount.to_string(),
                        raw["proceeds"]["grandTotal"]["amount"].as_str().unwrap()
                    );
                }
            }
        }
        let first: SearchOrdersResponse =
            serde_json::from_value(search[0]["response"].clone()).unwrap();
        assert_eq!(
            first
                .pagination
                .as_ref()
                .and_then(|p| p.next_token.as_deref()),
            Some("2YgYW55IGNhcm5hbCBwbGVhc3VyZS4")
        );
        assert_eq!(first.created_before, Some(t("2024-12-25T03:00:00Z")));
        let order = &first.orders[0];
        assert_eq!(order.marketplace_id(), Some("A1VC38T7YXB528"));
        assert!(
            order.order_items[0]
                .product
                .title
                .as_deref()
                .unwrap()
                .contains("スマートスピーカー")
        );
        let unit = order.order_items[0]
            .product
            .price
            .as_ref()
            .unwrap()
            .unit_price
            .as_ref()
            .unwrap();
        assert_eq!(
            (unit.amount, unit.currency_code.as_str()),
            (rust_decimal::Decimal::from(5980), "JPY")
        );
        let next = SearchOrdersParams::created(t("2024-12-25T00:00:00Z"), None)
            .next_page(&first)
            .unwrap();
        assert_eq!(
            next.pagination_token.as_deref(),
            Some("2YgYW55IGNhcm5hbCBwbGVhc3VyZS4")
        );

        for case in cases(&m, "/orders/2026-01-01/orders/{orderId}", "200") {
            let r: GetOrderResponse = serde_json::from_value(case["response"].clone()).unwrap();
            assert_eq!(
                r.order.order_id,
                case["request"]["parameters"]["orderId"]["value"]
                    .as_str()
                    .unwrap()
            );
            // Re-serializing and parsing again is stable.
            let again: GetOrderResponse =
                serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(again, r);
        }

        for (path, n) in [
            ("/orders/2026-01-01/orders", 1),
            ("/orders/2026-01-01/orders/{orderId}", 1),
        ] {
            let bad = cases(&m, path, "400");
            assert_eq!(bad.len(), n);
            let errors = crate::client::parse_error_body(bad[0]["response"].to_string().as_bytes());
            assert_eq!(errors[0].code, "InvalidInput");
            assert_eq!(errors[0].message, "Invalid Input");
        }
    }
}
