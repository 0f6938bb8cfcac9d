//! order-ingest (出荷指示取得): imports Amazon orders (PENDING and UNSHIPPED, merchant-fulfilled)
//! as shipping instructions, through Orders v2026-01-01 `searchOrders`.
//!
//! A run: command in → window planned (`domain::window`) → pages fetched one by one, each page
//! applied (`orders::apply_orders`) in one transaction together with the run's cursor →
//! watermark = Amazon's `createdBefore` of the last page. When the shared limiter says the
//! next page is not due soon, the run stores its cursor, schedules a `Continue` command through
//! the outbox (`not_before`) and acknowledges the message: no handler ever sleeps on Amazon's
//! quota. The mapping of an order, delivery rules and the single-order import live in the
//! `orders` library.
//!
//! The handler ([`OrderIngest`]) is a plain async function of the message; the binary wires
//! it with `runtime::run`.

mod engine;

pub use engine::{ACTION, ImportError, IngestConfig, OrderIngest};
pub use orders::Counts;
