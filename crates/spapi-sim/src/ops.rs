//! The operations the simulator serves, their documented usage plans and token buckets.

use serde::{Deserialize, Serialize};

/// Every operation the simulator counts, throttles and can inject faults into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// `POST /auth/o2/token` (LWA; not throttled).
    LwaToken,
    SearchOrders,
    GetOrder,
    GetOrdersV0,
    GetOrderV0,
    GetOrderItemsV0,
    ConfirmShipment,
    CreateRestrictedDataToken,
    CreateFeedDocument,
    /// The `PUT` to the presigned upload URL (not throttled).
    UploadFeedDocument,
    CreateFeed,
    GetFeed,
    GetFeeds,
    CancelFeed,
    GetFeedDocument,
    /// The `GET` of a presigned document URL (not throttled).
    DownloadDocument,
    GetListingsItem,
    PatchListingsItem,
    /// Notifications API v1 (grantless).
    CreateDestination,
    GetDestinations,
    GetDestination,
    DeleteDestination,
    /// Notifications API v1 (for a seller).
    CreateSubscription,
    GetSubscription,
    /// Notifications API v1 (grantless).
    GetSubscriptionById,
    DeleteSubscriptionById,
}

/// All operations, in a stable order.
pub const ALL_OPS: [Op; 26] = [
    Op::LwaToken,
    Op::SearchOrders,
    Op::GetOrder,
    Op::GetOrdersV0,
    Op::GetOrderV0,
    Op::GetOrderItemsV0,
    Op::ConfirmShipment,
    Op::CreateRestrictedDataToken,
    Op::CreateFeedDocument,
    Op::UploadFeedDocument,
    Op::CreateFeed,
    Op::GetFeed,
    Op::GetFeeds,
    Op::CancelFeed,
    Op::GetFeedDocument,
    Op::DownloadDocument,
    Op::GetListingsItem,
    Op::PatchListingsItem,
    Op::CreateDestination,
    Op::GetDestinations,
    Op::GetDestination,
    Op::DeleteDestination,
    Op::CreateSubscription,
    Op::GetSubscription,
    Op::GetSubscriptionById,
    Op::DeleteSubscriptionById,
];

impl Op {
    /// Name used in call counters, fault injection and the control API.
    pub fn name(self) -> &'static str {
        match self {
            Op::LwaToken => "lwaToken",
            Op::SearchOrders => "searchOrders",
            Op::GetOrder => "getOrder",
            Op::GetOrdersV0 => "getOrders",
            Op::GetOrderV0 => "getOrderV0",
            Op::GetOrderItemsV0 => "getOrderItems",
            Op::ConfirmShipment => "confirmShipment",
            Op::CreateRestrictedDataToken => "createRestrictedDataToken",
            Op::CreateFeedDocument => "createFeedDocument",
            Op::UploadFeedDocument => "uploadFeedDocument",
            Op::CreateFeed => "createFeed",
            Op::GetFeed => "getFeed",
            Op::GetFeeds => "getFeeds",
            Op::CancelFeed => "cancelFeed",
            Op::GetFeedDocument => "getFeedDocument",
            Op::DownloadDocument => "downloadDocument",
            Op::GetListingsItem => "getListingsItem",
            Op::PatchListingsItem => "patchListingsItem",
            Op::CreateDestination => "createDestination",
            Op::GetDestinations => "getDestinations",
            Op::GetDestination => "getDestination",
            Op::DeleteDestination => "deleteDestination",
            Op::CreateSubscription => "createSubscription",
            Op::GetSubscription => "getSubscription",
            Op::GetSubscriptionById => "getSubscriptionById",
            Op::DeleteSubscriptionById => "deleteSubscriptionById",
        }
    }

    /// Parses a name returned by [`Op::name`].
    pub fn from_name(name: &str) -> Option<Op> {
        ALL_OPS.iter().copied().find(|o| o.name() == name)
    }

    /// Documented default usage plan: (rate in requests/second, burst).
    /// `None` for the operations Amazon does not throttle per usage plan.
    pub fn usage_plan(self) -> Option<(f64, f64)> {
        match self {
            Op::SearchOrders => Some((0.0056, 20.0)),
            Op::GetOrder => Some((0.5, 30.0)),
            Op::GetOrdersV0 => Some((0.0167, 20.0)),
            Op::GetOrderV0 => Some((0.5, 30.0)),
            Op::GetOrderItemsV0 => Some((0.5, 30.0)),
            Op::ConfirmShipment => Some((2.0, 10.0)),
            Op::CreateRestrictedDataToken => Some((1.0, 10.0)),
            Op::CreateFeedDocument => Some((0.5, 15.0)),
            Op::CreateFeed => Some((0.0083, 15.0)),
            Op::GetFeed => Some((2.0, 15.0)),
            Op::GetFeeds => Some((0.0222, 10.0)),
            Op::CancelFeed => Some((2.0, 15.0)),
            Op::GetFeedDocument => Some((0.0222, 10.0)),
            Op::GetListingsItem => Some((5.0, 10.0)),
            Op::PatchListingsItem => Some((5.0, 5.0)),
            Op::CreateDestination
            | Op::GetDestinations
            | Op::GetDestination
            | Op::DeleteDestination
            | Op::CreateSubscription
            | Op::GetSubscription
            | Op::GetSubscriptionById
            | Op::DeleteSubscriptionById => Some((1.0, 5.0)),
            Op::LwaToken | Op::UploadFeedDocument | Op::DownloadDocument => None,
        }
    }

    /// Grantless: called with a client-credentials token (scope
    /// `sellingpartnerapi::notifications`), not for a seller.
    pub fn grantless(self) -> bool {
        matches!(
            self,
            Op::CreateDestination
                | Op::GetDestinations
                | Op::GetDestination
                | Op::DeleteDestination
                | Op::GetSubscriptionById
                | Op::DeleteSubscriptionById
        )
    }

    /// Value of the `x-amzn-RateLimit-Limit` header.
    pub fn rate_limit_header(self) -> Option<String> {
        self.usage_plan().map(|(rate, _)| format!("{rate}"))
    }
}

/// JSON_LISTINGS_FEED's own throttle: 5 submissions per 5 minutes.
pub const LISTINGS_FEED_PLAN: (f64, f64) = (5.0 / 300.0, 5.0);

/// A token bucket measured in simulated seconds.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: f64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: f64, now: f64) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if available. `rate` is already scaled.
    pub fn try_take(&mut self, rate: f64, burst: f64, now: f64) -> bool {
        let elapsed = (now - self.last).max(0.0);
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in ALL_OPS {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut b = Bucket::new(3.0, 0.0);
        assert!(b.try_take(1.0, 3.0, 0.0));
        assert!(b.try_take(1.0, 3.0, 0.0));
        assert!(b.try_take(1.0, 3.0, 0.0));
        assert!(!b.try_take(1.0, 3.0, 0.0));
        assert!(b.try_take(1.0, 3.0, 1.0));
        assert!(!b.try_take(1.0, 3.0, 1.0));
    }

    #[test]
    fn header_uses_documented_rate() {
        assert_eq!(
            Op::SearchOrders.rate_limit_header().as_deref(),
            Some("0.0056")
        );
        assert_eq!(
            Op::ConfirmShipment.rate_limit_header().as_deref(),
            Some("2")
        );
    }
}
