//! Amazon Selling Partner API client for the warehouse connector.
//!
//! * [`SpApi`]: one per process. Holds the HTTP connection pool, the [`RateLimiter`] whose
//!   token buckets live in Postgres (`rate_buckets`, shared by every replica and service), the
//!   per-shop LWA token caches and call statistics ([`SpApi::stats`]).
//! * [`Shop`]: a cheap handle per tenant ([`SpApi::shop`]); every SP-API operation is a method
//!   of it: [`Shop::search_orders`], [`Shop::get_order`], [`Shop::confirm_shipment`], the Feeds
//!   operations, [`Shop::get_listings_item`], [`Shop::patch_listings_item`], and the
//!   [`notifications`] operations (destinations and subscriptions; the grantless ones with the
//!   application's `client_credentials` token).
//! * Feed builders: [`fulfillment_feed::build_fulfillment_feed`] (`POST_ORDER_FULFILLMENT_DATA`)
//!   and [`listings_feed::build_listings_feeds`] (`JSON_LISTINGS_FEED`).
//! * Documents and reports: [`documents`] (gzip, UTF-8/CP932) and [`reports`] (XML and JSON
//!   processing reports into per-message results).
//!
//! Every call: shared-limiter acquire (short waits are slept, long ones become
//! [`Error::Throttled`]), access token (cached, refreshed before expiry, once more on 401/403),
//! request, bounded jittered retries for idempotent operations, typed errors. `createFeed` and
//! `confirmShipment` are never re-sent after an unknown outcome ([`Error::UnknownOutcome`]).
//! Each call runs in a `spapi.call` tracing span with the operation, status, attempts and
//! limiter wait; no tokens, secrets, URLs of documents or PII are logged.

#![warn(missing_docs)]

pub mod acknowledgement_feed;
mod auth;
pub mod client;
pub mod config;
pub mod documents;
pub mod error;
pub mod feeds;
pub mod fulfillment_feed;
pub mod limiter;
pub mod listings;
pub mod listings_feed;
pub mod notifications;
pub mod operation;
mod order_model;
pub mod orders;
pub mod orders_v0;
pub mod reports;
pub mod stats;
pub mod types;

pub use client::{Shop, SpApi, parse_error_body};
pub use config::{ClientConfig, Credentials, Endpoints, RetryPolicy, ShopConfig};
pub use documents::{DecodedText, Document};
pub use error::{ApiError, AuthorizationKind, Error, ErrorClass, Result, TransportKind};
pub use limiter::{BucketState, Permit, RateLimiter};
pub use operation::{Operation, Quota};
pub use reqwest::Url;
pub use stats::{CallStats, OperationStats, process_stats};
pub use types::Money;
