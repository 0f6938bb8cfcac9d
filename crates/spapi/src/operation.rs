//! The SP-API operations this client calls, with Amazon's documented default usage plans.

/// A token-bucket usage plan: `rate` requests per second refill, up to `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Requests per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: f64,
}

/// An SP-API operation (or an additional quota Amazon applies on top of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// Orders v2026-01-01 `searchOrders`.
    SearchOrders,
    /// Orders v2026-01-01 `getOrder`.
    GetOrder,
    /// Orders v0 `confirmShipment`.
    ConfirmShipment,
    /// Feeds 2021-06-30 `createFeedDocument`.
    CreateFeedDocument,
    /// Feeds 2021-06-30 `createFeed`.
    CreateFeed,
    /// Feeds 2021-06-30 `getFeed`.
    GetFeed,
    /// Feeds 2021-06-30 `getFeeds`.
    GetFeeds,
    /// Feeds 2021-06-30 `cancelFeed`.
    CancelFeed,
    /// Feeds 2021-06-30 `getFeedDocument`.
    GetFeedDocument,
    /// Listings Items 2021-08-01 `getListingsItem`.
    GetListingsItem,
    /// Listings Items 2021-08-01 `patchListingsItem`.
    PatchListingsItem,
    /// The extra quota on `createFeed` for `JSON_LISTINGS_FEED`: 5 submissions per 5 minutes.
    JsonListingsFeedSubmission,
    /// Notifications v1 `createDestination` (grantless).
    CreateDestination,
    /// Notifications v1 `getDestinations` (grantless).
    GetDestinations,
    /// Notifications v1 `createSubscription` (for the seller).
    CreateSubscription,
    /// Notifications v1 `getSubscription` (for the seller).
    GetSubscription,
    /// Notifications v1 `deleteSubscriptionById` (grantless).
    DeleteSubscriptionById,
}

impl Operation {
    /// Every operation (e.g. for dashboards).
    pub const ALL: [Operation; 17] = [
        Operation::SearchOrders,
        Operation::GetOrder,
        Operation::ConfirmShipment,
        Operation::CreateFeedDocument,
        Operation::CreateFeed,
        Operation::GetFeed,
        Operation::GetFeeds,
        Operation::CancelFeed,
        Operation::GetFeedDocument,
        Operation::GetListingsItem,
        Operation::PatchListingsItem,
        Operation::JsonListingsFeedSubmission,
        Operation::CreateDestination,
        Operation::GetDestinations,
        Operation::CreateSubscription,
        Operation::GetSubscription,
        Operation::DeleteSubscriptionById,
    ];

    /// Amazon's operation id (also the `rate_buckets.operation` key).
    pub fn name(self) -> &'static str {
        match self {
            Operation::SearchOrders => "searchOrders",
            Operation::GetOrder => "getOrder",
            Operation::ConfirmShipment => "confirmShipment",
            Operation::CreateFeedDocument => "createFeedDocument",
            Operation::CreateFeed => "createFeed",
            Operation::GetFeed => "getFeed",
            Operation::GetFeeds => "getFeeds",
            Operation::CancelFeed => "cancelFeed",
            Operation::GetFeedDocument => "getFeedDocument",
            Operation::GetListingsItem => "getListingsItem",
            Operation::PatchListingsItem => "patchListingsItem",
            Operation::JsonListingsFeedSubmission => "createFeed:JSON_LISTINGS_FEED",
            Operation::CreateDestination => "createDestination",
            Operation::GetDestinations => "getDestinations",
            Operation::CreateSubscription => "createSubscription",
            Operation::GetSubscription => "getSubscription",
            Operation::DeleteSubscriptionById => "deleteSubscriptionById",
        }
    }

    /// Looks an operation up by [`Operation::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Amazon's documented default usage plan (the model descriptions, November 2026).
    pub fn default_quota(self) -> Quota {
        let q = |rate, burst| Quota { rate, burst };
        match self {
            Operation::SearchOrders => q(0.0056, 20.0),
            Operation::GetOrder => q(0.5, 30.0),
            Operation::ConfirmShipment => q(2.0, 10.0),
            Operation::CreateFeedDocument => q(0.5, 15.0),
            Operation::CreateFeed => q(0.0083, 15.0),
            Operation::GetFeed => q(2.0, 15.0),
            Operation::GetFeeds => q(0.0222, 10.0),
            Operation::CancelFeed => q(2.0, 15.0),
            Operation::GetFeedDocument => q(0.0222, 10.0),
            Operation::GetListingsItem => q(5.0, 10.0),
            Operation::PatchListingsItem => q(5.0, 5.0),
            Operation::JsonListingsFeedSubmission => q(5.0 / 300.0, 5.0),
            // Every Notifications operation: 1 request per second, burst 5.
            Operation::CreateDestination
            | Operation::GetDestinations
            | Operation::CreateSubscription
            | Operation::GetSubscription
            | Operation::DeleteSubscriptionById => q(1.0, 5.0),
        }
    }

    /// Grantless: called with an application token (LWA `client_credentials` with the
    /// scope `sellingpartnerapi::notifications`), not for a seller. Its quota is the application's, so
    /// its rate bucket is keyed by the application (`app:{client_id}`), not by the seller.
    pub fn is_grantless(self) -> bool {
        matches!(
            self,
            Operation::CreateDestination
                | Operation::GetDestinations
                | Operation::DeleteSubscriptionById
        )
    }

    /// Whether re-sending after an unknown outcome is harmless. `createFeed` would create a
    /// second feed and `confirmShipment` a second confirmation: they are never re-sent blindly.
    /// Neither are `createDestination` and `createSubscription`: a second one is refused (409),
    /// so the caller looks up what exists instead (the notifications module's `ensure_*`).
    pub fn is_idempotent(self) -> bool {
        !matches!(
            self,
            Operation::CreateFeed
                | Operation::ConfirmShipment
                | Operation::JsonListingsFeedSubmission
                | Operation::CreateDestination
                | Operation::CreateSubscription
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default quotas are the ones written in the official models' descriptions.
    #[test]
    fn quotas_match_the_models() {
        let models = [
            "orders-api-model/orders_2026-01-01.json",
            "orders-api-model/ordersV0.json",
            "feeds-api-model/feeds_2021-06-30.json",
            "listings-items-api-model/listingsItems_2021-08-01.json",
            "notifications-api-model/notifications.json",
        ];
        let mut checked = 0;
        for file in models {
            let path = format!(
                "{}/../../spapi-models/models/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let model: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for methods in model["paths"].as_object().unwrap().values() {
                for op in methods.as_object().unwrap().values() {
                    let Some(id) = op.get("operationId").and_then(|v| v.as_str()) else {
                        continue;
                    };
                    if file.ends_with("ordersV0.json") && id != "confirmShipment" {
                        continue; // v0 reads are deprecated and not used
                    }
                    let Some(ours) = Operation::from_name(id) else {
                        continue;
                    };
                    let desc = op["description"].as_str().unwrap();
                    // "| Rate (requests per second) | Burst |\n| ---- | ---- |\n| 0.0056 | 20 |"
                    let row = desc
                        .lines()
                        .skip_while(|l| !l.contains("---- |"))
                        .nth(1)
                        .unwrap_or_else(|| panic!("no usage plan for {id}"));
                    let cells: Vec<f64> = row
                        .split('|')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| c.parse().unwrap())
                        .collect();
                    let quota = ours.default_quota();
                    assert_eq!(cells, vec![quota.rate, quota.burst], "{id}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 16);
    }

    #[test]
    fn names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert!(!Operation::CreateFeed.is_idempotent());
        assert!(!Operation::ConfirmShipment.is_idempotent());
        assert!(Operation::CreateFeedDocument.is_idempotent());
        assert!(!Operation::CreateSubscription.is_idempotent());
        assert!(Operation::GetDestinations.is_grantless());
        assert!(Operation::DeleteSubscriptionById.is_grantless());
        assert!(!Operation::CreateSubscription.is_grantless());
        assert!(!Operation::GetSubscription.is_grantless());
    }
}
