//! When a feed counts as stuck: one threshold for the service that flags it (feed-poller writes a
//! `feed_stuck` attention entry once) and for the pages that list it (the console's 要対応).
//!
//! A feed is stuck when it is still not final (pending, in flight or submitted) [`STUCK_AFTER`]
//! after it was submitted to Amazon, or after it was recorded when it never reached Amazon.
//!
//! Three hours, not two: Amazon processes a shipment-confirmation feed in minutes, but a large
//! `JSON_LISTINGS_FEED` (a full push of 100k SKUs) can stay `IN_QUEUE`/`IN_PROGRESS` for well
//! over an hour at busy times, and an alarm an operator learns to ignore is worse than a later
//! one. Three hours still leaves the shop's day to react (shipment feedback runs hourly), and it
//! is the value feed-poller has always flagged with (the stored `stuck_flagged_at` flags and
//! `feed_stuck` entries stay as they were).

use chrono::{DateTime, Duration, Utc};

/// How long a feed may stay unfinished before operators are asked to look at it.
pub const STUCK_AFTER: Duration = Duration::hours(3);

/// The instant a feed's clock starts: its submission to Amazon, else its creation.
pub fn stuck_since(
    created_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    submitted_at.unwrap_or(created_at)
}

/// Feeds unfinished since before this instant are stuck at `now`.
pub fn stuck_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - STUCK_AFTER
}

/// Whether an unfinished feed whose clock started at `since` is stuck at `now`.
pub fn is_stuck(since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    since < stuck_cutoff(now)
}

/// The threshold in whole hours, for operator wording ("no result after 3 hours").
pub fn stuck_after_hours() -> i64 {
    STUCK_AFTER.num_hours()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_three_hours() {
        assert_eq!(STUCK_AFTER, Duration::hours(3));
        assert_eq!(stuck_after_hours(), 3);
    }

    #[test]
    fn the_clock_starts_at_submission() {
        let now = Utc::now();
        let created = now - Duration::hours(5);
        assert!(is_stuck(stuck_since(created, None), now));
        // Created long ago but submitted 2.5 hours ago: not stuck yet.
        let submitted = Some(now - Duration::minutes(150));
        assert!(!is_stuck(stuck_since(created, submitted), now));
        assert!(is_stuck(
            stuck_since(created, Some(now - Duration::minutes(181))),
            now
        ));
        // Two hours (the console's former threshold) is not stuck.
        assert!(!is_stuck(now - Duration::hours(2), now));
    }
}
