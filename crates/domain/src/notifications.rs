//! The rules of working with Amazon's notifications (issue 19), in one place: with a shop
//! subscribed, events bring the work and polling is only the safety net.
//!
//! - ORDER_CHANGE: status-sync's `lastUpdatedAfter` poll becomes the sweep, at [`SWEEP_CRON`]
//!   unless the operator chose another cadence; a change the sweep applies that Amazon made more
//!   than [`ANNOUNCE_GRACE`] ago and no notification announced means notifications are not
//!   arriving (an attention entry).
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
