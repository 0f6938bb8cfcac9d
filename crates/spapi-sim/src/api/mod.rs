//! HTTP surface: SP-API routes, LWA, the presigned-URL store and the `/_sim/` control API.

use axum::Router;
use axum::routing::{get, post};

use crate::sim::Sim;

pub(crate) mod control;
pub(crate) mod feeds;
pub(crate) mod http;
pub(crate) mod listings;
pub(crate) mod lwa;
pub(crate) mod notifications;
pub(crate) mod orders;
pub(crate) mod orders_v0;
pub(crate) mod s3;

/// Builds the full router (SP-API, LWA, S3 stand-in and control API).
pub(crate) fn router(sim: Sim) -> Router {
    Router::new()
        .route("/auth/o2/token", post(lwa::token))
        .route("/orders/2026-01-01/orders", get(orders::search_orders))
        .route(
            "/orders/2026-01-01/orders/{order_id}",
            get(orders::get_order),
        )
        .route("/orders/v0/orders", get(orders_v0::get_orders))
        .route("/orders/v0/orders/{order_id}", get(orders_v0::get_order))
        .route(
            "/orders/v0/orders/{order_id}/orderItems",
            get(orders_v0::get_order_items),
        )
        .route(
            "/orders/v0/orders/{order_id}/shipmentConfirmation",
            post(orders_v0::confirm_shipment),
        )
        .route(
            "/tokens/2021-03-01/restrictedDataToken",
            post(lwa::create_restricted_data_token),
        )
        .route(
            "/feeds/2021-06-30/documents",
            post(feeds::create_feed_document),
        )
        .route(
            "/feeds/2021-06-30/documents/{document_id}",
            get(feeds::get_feed_document),
        )
        .route(
            "/feeds/2021-06-30/feeds",
            post(feeds::create_feed).get(feeds::get_feeds),
        )
        .route(
            "/feeds/2021-06-30/feeds/{feed_id}",
            get(feeds::get_feed).delete(feeds::cancel_feed),
        )
        .route(
            "/listings/2021-08-01/items/{seller_id}/{sku}",
            get(listings::get_listings_item).patch(listings::patch_listings_item),
        )
        .route(
            "/notifications/v1/destinations",
            post(notifications::create_destination).get(notifications::get_destinations),
        )
        .route(
            "/notifications/v1/destinations/{destination_id}",
            get(notifications::get_destination).delete(notifications::delete_destination),
        )
        .route(
            "/notifications/v1/subscriptions/{notification_type}",
            post(notifications::create_subscription).get(notifications::get_subscription),
        )
        .route(
            "/notifications/v1/subscriptions/{notification_type}/{subscription_id}",
            get(notifications::get_subscription_by_id)
                .delete(notifications::delete_subscription_by_id),
        )
        .route(
            "/s3/tortuga/{document_id}",
            // Feed documents reach several MiB (25,000 listings messages): above axum's 2 MiB default.
            get(s3::download)
                .put(s3::upload)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .nest("/_sim", control::router())
        .fallback(http::not_found)
        .with_state(sim)
}
