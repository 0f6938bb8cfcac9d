//! `spapi-sim`: a stand-in for the parts of Amazon's Selling Partner API that the
//! warehouse connector uses — LWA, Orders v2026-01-01 and v0, Feeds 2021-06-30 (with real
//! processing of `POST_ORDER_FULFILLMENT_DATA` and `JSON_LISTINGS_FEED`), Listings Items
//! 2021-08-01, Notifications v1 (ORDER_CHANGE and FEED_PROCESSING_FINISHED delivered to an
//! SQS-compatible server such as moto) — with Amazon's rate limits, error bodies and headers, plus a `/_sim/`
//! control API for tests.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = spapi_sim::spawn(spapi_sim::SimConfig { orders: 10, ..Default::default() }).await?;
//! let base = sim.base_url(); // SP-API, LWA (/auth/o2/token) and /_sim/ on one server
//! # let _ = base;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub(crate) mod api;
pub mod cli;
mod config;
mod delivery;
pub mod feeds;
mod generate;
mod listing_items;
pub mod model;
mod notify;
mod ops;
mod records;
mod server;
mod shipment;
mod sim;
mod state;

pub use config::{DEFAULT_SELLER_ID, DEFAULT_SQS_ENDPOINT, SimConfig, default_sqs_endpoint};
pub use feeds::{FeedInfo, FeedStatus};
pub use model::{
    Address, BusinessBuyer, Buyer, Cancellation, DeliveryWindow, FulfilledBy, ItemSpec, Listing,
    ListingSpec, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, MarketplaceMix, Order, OrderItem,
    OrderSpec, OrderStatus, Package, PackageItem, PaymentMethod, StatusChange, is_order_id,
};
pub use notify::{NotificationCount, NotificationCounter};
pub use ops::{ALL_OPS, Op};
pub use server::{RunningSim, spawn, spawn_on};
pub use sim::Sim;
pub use state::{CallCount, Fault, FaultTrigger, GzipPolicy, SimError, SimOptions};
