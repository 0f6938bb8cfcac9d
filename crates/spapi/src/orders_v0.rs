//! Orders API v0 `confirmShipment` (not deprecated; v2026-01-01 has no ship confirmation).

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Expect, Shop, segment};
use crate::error::{Error, Result};
use crate::operation::Operation;
use domain::is_amazon_order_id;

/// `ConfirmShipmentRequest`: one call per package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmShipmentRequest {
    /// Marketplace of the order.
    pub marketplace_id: String,
    /// The package.
    pub package_detail: PackageDetail,
    /// `DirectPayment` (JP COD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cod_collection_method: Option<String>,
}

/// `PackageDetail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageDetail {
    /// Positive number identifying the package within the order; sending the same id again
    /// edits that shipment.
    pub package_reference_id: String,
    /// Carrier code as listed in Seller Central, or `Other`.
    pub carrier_code: String,
    /// Carrier name (required when `carrier_code` is `Other`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_name: Option<String>,
    /// Shipping method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<String>,
    /// Tracking number.
    pub tracking_number: String,
    /// Ship date (sent as ISO 8601 UTC).
    pub ship_date: DateTime<Utc>,
    /// Supply source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_from_supply_source_id: Option<String>,
    /// Items and quantities in the package.
    pub order_items: Vec<ConfirmShipmentOrderItem>,
}

/// `ConfirmShipmentOrderItem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmShipmentOrderItem {
    /// Order item id.
    pub order_item_id: String,
    /// Quantity shipped in this package.
    pub quantity: u32,
    /// Transparency codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transparency_codes: Vec<String>,
}

impl ConfirmShipmentRequest {
    /// Checks the documented rules before sending.
    pub fn validate(&self, order_id: &str) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidRequest(format!("confirmShipment: {m}")));
        let p = &self.package_detail;
        if !is_amazon_order_id(order_id) {
            return bad(format!("order id {order_id:?} is not in 3-7-7 format"));
        }
        if self.marketplace_id.is_empty() {
            return bad("marketplaceId is required".into());
        }
        if p.package_reference_id.is_empty()
            || !p.package_reference_id.bytes().all(|b| b.is_ascii_digit())
            || p.package_reference_id.bytes().all(|b| b == b'0')
        {
            return bad("packageReferenceId must be a positive number".into());
        }
        if p.carrier_code.trim().is_empty() {
            return bad("carrierCode is required".into());
        }
        if p.carrier_code == "Other"
            && p.carrier_name
                .as_deref()
                .is_none_or(|n| n.trim().is_empty())
        {
            return bad("carrierName is required when carrierCode is Other".into());
        }
        if p.tracking_number.trim().is_empty() {
            return bad("trackingNumber is required".into());
        }
        if p.order_items.is_empty() || p.order_items.iter().any(|i| i.quantity == 0) {
            return bad("orderItems must list at least one item with a positive quantity".into());
        }
        Ok(())
    }
}

impl Shop {
    /// `confirmShipment` (Orders v0): confirms one package of an order. Amazon answers 204.
    ///
    /// Never re-sent after an unknown outcome (timeout, 5xx, broken connection): that returns
    /// [`Error::UnknownOutcome`] and the caller checks the order's packages
    /// (`getOrder` with `PACKAGES`) before trying again. 429s and refused tokens, which Amazon
    /// did not apply, are retried.
    pub async fn confirm_shipment(
        &self,
        order_id: &str,
        request: &ConfirmShipmentRequest,
    ) -> Result<()> {
        request.validate(order_id)?;
        let req = ApiRequest::new(
            Operation::ConfirmShipment,
            Method::POST,
            format!(
                "/orders/v0/orders/{}/shipmentConfirmation",
                segment(order_id)
            ),
        )
        .json(request)?;
        self.execute(req, Expect::Empty(|| ())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_request() -> (String, serde_json::Value) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/models/orders-api-model/ordersV0.json"
        );
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = &model["paths"]["/orders/v0/orders/{orderId}/shipmentConfirmation"]["post"]["responses"]
            ["204"]["x-amzn-api-sandbox"]["static"][0]["request"]["parameters"];
        (
            case["orderId"]["value"].as_str().unwrap().to_owned(),
            case["body"]["value"].clone(),
        )
    }

    /// Amazon's own sandbox request deserializes, validates and serializes back unchanged.
    #[test]
    fn sandbox_request_round_trips() {
        let (order_id, body) = sandbox_request();
        let req: ConfirmShipmentRequest = serde_json::from_value(body.clone()).unwrap();
        req.validate(&order_id).unwrap();
        assert_eq!(req.package_detail.carrier_code, "FedEx");
        assert_eq!(
            req.package_detail.order_items[0].order_item_id,
            "79039765272157"
        );
        let back = serde_json::to_value(&req).unwrap();
        // Same fields; the date may be re-formatted but denotes the same instant.
        let date = |v: &serde_json::Value| {
            v["packageDetail"]["shipDate"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap()
        };
        assert_eq!(date(&back), date(&body));
        let strip = |mut v: serde_json::Value| {
            v["packageDetail"]["shipDate"] = serde_json::Value::Null;
            v
        };
        assert_eq!(strip(back), strip(body));
    }

    #[test]
    fn other_carrier_needs_a_name() {
        let (order_id, body) = sandbox_request();
        let mut req: ConfirmShipmentRequest = serde_json::from_value(body).unwrap();
        req.package_detail.carrier_code = "Other".into();
        req.package_detail.carrier_name = None;
        assert!(req.validate(&order_id).is_err());
        req.package_detail.carrier_name = Some("西濃運輸".into());
        req.validate(&order_id).unwrap();
        req.package_detail.package_reference_id = "0".into();
        assert!(req.validate(&order_id).is_err());
    }
}
