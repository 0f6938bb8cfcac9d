//! The rules of working with Amazon's notifications (issue 19), in one place: with a shop
//! subscribed, events bring the work and polling is only the safety net.
//!
//! - ORDER_CHANGE: status-sync's `lastUpdatedAfter` poll becomes the sweep, at [`SWEEP_CRON`]
//!   unless the operator chose another cadence; a change the sweep applies that Amazon made more
//!   than [`ANNOUNCE_GRACE`] ago and no notification announced means notifications are not
//!   arriving (an attention entry).
//! - New orders: Amazon does not reliably announce a brand-new order, so order-ingest keeps
//!   polling for them, but only for them: while the shop is subscribed its differential import
//!   asks `searchOrders` for orders *created* since its last run (PENDING and UNSHIPPED, an
//!   overlap of [`NEW_ORDERS_OVERLAP`]) every [`NEW_ORDERS_CRON`], instead of reading every
//!   change through the order mirror, and the sweep reads only cancellations from the mirror
//!   (plus `getOrder` for instructions still unpaid): a page of 100 new orders per call, with
//!   no quota spent on changes the notifications bring (issue 20, `bench day`).
//!   Should Amazon announce a new order, the listener leaves it to that poll
//!   ([`NEW_ORDER_NOTICE`]).
//! - FEED_PROCESSING_FINISHED: a feed's result is fetched when Amazon announces it; the first
//!   scheduled poll, the safety net, waits [`FEED_SAFETY_POLL`].

use chrono::Duration;

/// status-sync's default cadence while the shop's order changes are announced: hourly.
pub const SWEEP_CRON: &str = "0 * * * *";

/// How long an order change may go unannounced before the sweep calls it missed: Amazon
/// delivers most notifications within a minute.
pub const ANNOUNCE_GRACE: Duration = Duration::minutes(5);

/// The first poll of a feed whose result Amazon announces: a shipment-confirmation feed is
/// processed in minutes, so a poll ten minutes after submission finds what a lost notification
/// would have brought, and costs one `getFeed` instead of one every few seconds.
pub const FEED_SAFETY_POLL: Duration = Duration::minutes(10);

/// order-ingest's cadence while the shop's order changes are announced (unless the operator
/// had chosen another): new orders are found within about 7 minutes (5 + Amazon's 2-minute
/// `createdBefore` rule), against about 15 through the mirror's full poll.
pub const NEW_ORDERS_CRON: &str = "*/5 * * * *";

/// The overlap of the new-orders poll with the one before (against `domain::window::OVERLAP`
/// for the full differential import): the window already ends 2 minutes before now (Amazon's
/// rule, `domain::window::AMAZON_LAG`), and 2 more minutes re-read cost about one page in
/// five at a 5-minute cadence, where 5 would cost about one in two.
pub const NEW_ORDERS_OVERLAP: Duration = Duration::minutes(2);

/// Unpaid instructions the sweep checks with `getOrder` at most (longest unchecked first): a
/// payment whose notification was lost is found within a few sweeps, and the sweep holds the
/// shop's status-sync lease (announced orders wait for it) about a minute at most: `getOrder`'s
/// burst is 30 calls, then one every 2 s.
pub const SWEEP_UNPAID_CHECKS: u32 = 30;

/// An ORDER_CHANGE for an order with no instruction yet, PENDING or UNSHIPPED and placed at
/// most this long before the change, is a new order (if Amazon announces it at all): the
/// listener leaves it to order-ingest's new-orders poll, which imports it within about 7
/// minutes, instead of spending a `getOrder` on it. At a sale-day peak those calls would be
/// taken from the payments and cancellations, which have no other fast path (`bench day
/// --notify-new-orders`). An older unknown order (an import that failed, say) still goes to
/// status-sync, which imports it.
pub const NEW_ORDER_NOTICE: Duration = Duration::hours(1);
