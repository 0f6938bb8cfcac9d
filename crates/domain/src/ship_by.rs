//! Amazon's ship-by time (`LatestShipDate`, the end of `shipByWindow`): an order shipped later
//! counts as a late shipment against the seller. The warehouse is warned before, not after.

use chrono::{DateTime, Duration, Utc};

/// How long before the ship-by time an open instruction is flagged.
pub const WARN_HOURS: i64 = 6;

/// Whether the ship-by time is within [`WARN_HOURS`] from `now` and not past yet.
pub fn approaching(ship_by: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    ship_by > now && ship_by - now <= Duration::hours(WARN_HOURS)
}

/// Whether the ship-by time is past.
pub fn missed(ship_by: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    ship_by <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_within_the_window_only() {
        let now = Utc::now();
        assert!(approaching(now + Duration::hours(WARN_HOURS), now));
        assert!(approaching(now + Duration::minutes(1), now));
        assert!(!approaching(
            now + Duration::hours(WARN_HOURS) + Duration::minutes(1),
            now
        ));
        assert!(!approaching(now, now));
        assert!(missed(now, now) && !missed(now + Duration::seconds(1), now));
    }
}
