//! The `searchOrders` request of an import.

use chrono::{DateTime, Utc};
use domain::shop::Shop;
use spapi::orders::{FulfilledBy, FulfillmentStatus, SearchOrdersParams};

use crate::included;

/// The first page of an import of `shop`'s orders created in `from .. to`: merchant-fulfilled
/// PENDING and UNSHIPPED orders of the shop's marketplaces, with [`included::IMPORT`]. Later
/// pages set `pagination_token`.
pub fn import_search(
    shop: &Shop,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page_size: u32,
) -> SearchOrdersParams {
    SearchOrdersParams {
        created_after: Some(from),
        created_before: Some(to),
        fulfillment_statuses: vec![FulfillmentStatus::Pending, FulfillmentStatus::Unshipped],
        included_data: included::IMPORT.to_vec(),
        ..merchant_orders(shop, page_size)
    }
}

/// What every `searchOrders` of the connector asks: the shop's marketplaces, merchant-fulfilled
/// orders, `page_size` per page.
pub(crate) fn merchant_orders(shop: &Shop, page_size: u32) -> SearchOrdersParams {
    SearchOrdersParams {
        marketplace_ids: shop
            .marketplaces
            .iter()
            .map(|m| m.id().to_owned())
            .collect(),
        fulfilled_by: vec![FulfilledBy::Merchant],
        max_results_per_page: Some(page_size),
        ..SearchOrdersParams::default()
    }
}
