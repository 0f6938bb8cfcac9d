//! Amazon orders as shipping instructions, shared by order-ingest, status-sync and
//! `ctl import-order`:
//!
//! * [`convert`]: Amazon's `Order` (v2026-01-01) → the WMS's [`store::instructions::AmazonOrder`];
//! * [`included`]: the `includedData` sets of imports and status sync;
//! * [`pick_delivery`]: the delivery rule that sets an order's delivery method;
//! * [`upsert`]: one order into the WMS by `(shop, amazon_order_id)`;
//! * [`import_search`]: the `searchOrders` request of an import;
//! * [`apply_orders`]: one page of orders, each in its own savepoint;
//! * [`import_order`]: the single-order import (`ctl import-order`);
//! * [`ship_by`]: the attention entry before an order's ship-by time is missed;
//! * [`cancel_request`]: a buyer's request to cancel, held or flagged;
//! * [`mirror`]: the order mirror both order-ingest (differential) and status-sync (changes) step
//!   through, one `searchOrders` poll per shop.
//!
//! SQL stays in `store`; "to paid" and cancellation eligibility in `domain::eligibility`.

mod apply;
pub mod cancel_request;
pub mod convert;
mod counts;
mod delivery;
pub mod included;
pub mod mirror;
pub mod personal;
mod search;
pub mod ship_by;
mod single;
pub mod upsert;

pub use apply::{Error, apply_orders};
pub use convert::{ConvertError, to_amazon_order};
pub use counts::Counts;
pub use delivery::{RuleTrial, TrialError, pick_delivery, try_rules};
pub use personal::missing_personal_data;
pub use search::import_search;
pub use single::{SingleImport, import_order};
pub use upsert::Outcome;

/// Action and ledger name of order imports (the order-ingest service and the single-order
/// import write their runs and API-log entries under it).
pub const ACTION: &str = "order-ingest";
