//! Notifications API v1: SQS destinations and subscriptions to `ORDER_CHANGE` and
//! `FEED_PROCESSING_FINISHED`.
//!
//! `createDestination`, `getDestinations` and `deleteSubscriptionById` are grantless: they act
//! for the application, with a token from LWA's `client_credentials` grant and [`SCOPE`]
//! (cached like the seller's token, see [`Operation::is_grantless`]). `createSubscription` and
//! `getSubscription` act for the seller, with the seller's token. Every operation's usage plan
//! is 1 request per second, burst 5.
//!
//! Setting a shop up: [`Shop::ensure_destination`] (the application's destination for an SQS
//! ARN: an existing one is reused), then [`Shop::ensure_subscription`] with
//! [`CreateSubscriptionRequest::order_change`] and
//! [`CreateSubscriptionRequest::feed_processing_finished`] (an existing subscription of the type
//! is reused). Amazon keeps one subscription per type, payload version, seller and application.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Expect, Shop, json, segment};
use crate::error::{Error, Result};
use crate::operation::Operation;
use crate::types::string_enum;

/// LWA scope of the grantless Notifications operations (Amazon's `SCOPE_NOTIFICATIONS_API`).
pub const SCOPE: &str = crate::auth::NOTIFICATIONS_SCOPE;

string_enum! {
    /// A notification type the connector subscribes to.
    pub enum NotificationType {
        /// An order's status changed, or the buyer asked for a change (cancellation).
        OrderChange = "ORDER_CHANGE",
        /// A feed finished processing (DONE, FATAL or CANCELLED).
        FeedProcessingFinished = "FEED_PROCESSING_FINISHED",
    }
}

impl NotificationType {
    /// The payload version the connector subscribes with (the notification schemas' version).
    pub fn payload_version(&self) -> &'static str {
        match self {
            Self::OrderChange => "1.0",
            Self::FeedProcessingFinished => "2020-09-04",
            Self::Other(_) => "1.0",
        }
    }
}

string_enum! {
    /// `OrderChangeTypeEnum`: which ORDER_CHANGE notifications a subscription receives.
    pub enum OrderChangeType {
        /// The buyer asked for a change (e.g. a cancellation request).
        BuyerRequestedChange = "BuyerRequestedChange",
        /// The delivery tip changed.
        DeliveryTipChange = "DeliveryTipChange",
        /// The order's status changed (e.g. Pending → Unshipped, Canceled).
        OrderStatusChange = "OrderStatusChange",
    }
}

/// `SqsResource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsResource {
    /// ARN of the queue (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
    pub arn: String,
}

/// `DestinationResource` (and `DestinationResourceSpecification`, its SQS part).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationResource {
    /// An SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs: Option<SqsResource>,
    /// An EventBridge destination (kept as sent; the connector uses SQS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bridge: Option<serde_json::Value>,
}

/// `Destination`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The developer-defined name.
    pub name: String,
    /// Amazon's id of the destination.
    pub destination_id: String,
    /// Where notifications go.
    pub resource: DestinationResource,
}

impl Destination {
    /// The SQS queue's ARN, for an SQS destination.
    pub fn sqs_arn(&self) -> Option<&str> {
        self.resource.sqs.as_ref().map(|s| s.arn.as_str())
    }
}

/// `CreateDestinationRequest` (SQS only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDestinationRequest {
    /// A developer-defined name (at most 256 characters).
    pub name: String,
    /// The resource.
    pub resource_specification: DestinationResource,
}

/// `EventFilter` (the parts the connector uses: order change types and marketplaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFilter {
    /// `ORDER_CHANGE`, `ANY_OFFER_CHANGED` or `SHIPMENT_TRACKING_MILESTONE_CHANGED`.
    pub event_filter_type: String,
    /// Only these order change types (ORDER_CHANGE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_change_types: Option<Vec<OrderChangeType>>,
    /// Only these marketplaces (Amazon's ids, e.g. `A1VC38T7YXB528`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace_ids: Option<Vec<String>>,
}

/// `ProcessingDirective`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingDirective {
    /// Which events of the type are delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_filter: Option<EventFilter>,
}

/// `CreateSubscriptionRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubscriptionRequest {
    /// The payload version ([`NotificationType::payload_version`]).
    pub payload_version: String,
    /// Where the notifications go.
    pub destination_id: String,
    /// Filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_directive: Option<ProcessingDirective>,
}

impl CreateSubscriptionRequest {
    /// ORDER_CHANGE for status changes and buyer-requested changes (cancellations) on
    /// `marketplace_ids` (Amazon's ids) only.
    pub fn order_change(destination_id: &str, marketplace_ids: Vec<String>) -> Self {
        Self {
            payload_version: NotificationType::OrderChange.payload_version().to_owned(),
            destination_id: destination_id.to_owned(),
            processing_directive: Some(ProcessingDirective {
                event_filter: Some(EventFilter {
                    event_filter_type: NotificationType::OrderChange.as_str().to_owned(),
                    order_change_types: Some(vec![
                        OrderChangeType::OrderStatusChange,
                        OrderChangeType::BuyerRequestedChange,
                    ]),
                    marketplace_ids: (!marketplace_ids.is_empty()).then_some(marketplace_ids),
                }),
            }),
        }
    }

    /// FEED_PROCESSING_FINISHED (takes no filter).
    pub fn feed_processing_finished(destination_id: &str) -> Self {
        Self {
            payload_version: NotificationType::FeedProcessingFinished
                .payload_version()
                .to_owned(),
            destination_id: destination_id.to_owned(),
            processing_directive: None,
        }
    }
}

/// `Subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Amazon's id of the subscription.
    pub subscription_id: String,
    /// The payload version.
    pub payload_version: String,
    /// Where the notifications go.
    pub destination_id: String,
    /// The filters it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_directive: Option<ProcessingDirective>,
}

/// What an `ensure_*` call found: the resource, and whether this call created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensured<T> {
    /// The destination or subscription.
    pub value: T,
    /// `true`: created now; `false`: it existed and is reused.
    pub created: bool,
}

/// The Notifications API's response wrapper (`{"payload": …}`).
#[derive(Deserialize)]
struct Payload<T> {
    payload: T,
}

fn payload<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    json::<Payload<T>>(body).map(|p| p.payload)
}

fn is_status(e: &Error, status: u16) -> bool {
    matches!(e, Error::Api { status: s, .. } if *s == status)
}

impl Shop {
    /// `createDestination` (grantless): an SQS destination of the application. Amazon refuses
    /// (409) a second destination for the same ARN; [`Shop::ensure_destination`] reuses it.
    pub async fn create_destination(&self, name: &str, sqs_arn: &str) -> Result<Destination> {
        if !sqs_arn.starts_with("arn:aws:sqs:") || sqs_arn.split(':').count() != 6 {
            return Err(Error::InvalidRequest(format!(
                "createDestination: {sqs_arn:?} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE)"
            )));
        }
        let req = ApiRequest::new(
            Operation::CreateDestination,
            Method::POST,
            "/notifications/v1/destinations".to_owned(),
        )
        .json(&CreateDestinationRequest {
            name: name.to_owned(),
            resource_specification: DestinationResource {
                sqs: Some(SqsResource {
                    arn: sqs_arn.to_owned(),
                }),
                event_bridge: None,
            },
        })?;
        self.execute(req, Expect::Json(payload::<Destination>))
            .await
    }

    /// `getDestinations` (grantless): every destination of the application.
    pub async fn get_destinations(&self) -> Result<Vec<Destination>> {
        let req = ApiRequest::new(
            Operation::GetDestinations,
            Method::GET,
            "/notifications/v1/destinations".to_owned(),
        );
        self.execute(req, Expect::Json(payload::<Vec<Destination>>))
            .await
    }

    /// The application's destination for `sqs_arn`: an existing one (looked up with
    /// `getDestinations` first), else a new one named `name`. A conflict or an unknown outcome
    /// of `createDestination` is settled by looking again.
    pub async fn ensure_destination(
        &self,
        name: &str,
        sqs_arn: &str,
    ) -> Result<Ensured<Destination>> {
        let find = |list: Vec<Destination>| list.into_iter().find(|d| d.sqs_arn() == Some(sqs_arn));
        if let Some(d) = find(self.get_destinations().await?) {
            return Ok(Ensured {
                value: d,
                created: false,
            });
        }
        match self.create_destination(name, sqs_arn).await {
            Ok(d) => Ok(Ensured {
                value: d,
                created: true,
            }),
            Err(e) if is_status(&e, 409) || matches!(e, Error::UnknownOutcome { .. }) => {
                match find(self.get_destinations().await?) {
                    Some(d) => Ok(Ensured {
                        value: d,
                        created: !is_status(&e, 409),
                    }),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `createSubscription` (for the seller). Amazon refuses (409) a second subscription to
    /// the same type and payload version; [`Shop::ensure_subscription`] reuses it.
    pub async fn create_subscription(
        &self,
        notification_type: &NotificationType,
        request: &CreateSubscriptionRequest,
    ) -> Result<Subscription> {
        let req = ApiRequest::new(
            Operation::CreateSubscription,
            Method::POST,
            format!(
                "/notifications/v1/subscriptions/{}",
                segment(notification_type.as_str())
            ),
        )
        .json(request)?;
        self.execute(req, Expect::Json(payload::<Subscription>))
            .await
    }

    /// `getSubscription` (for the seller): the seller's subscription to `notification_type`
    /// (of `payload_version` when given); `None` when there is none (Amazon answers 404).
    pub async fn get_subscription(
        &self,
        notification_type: &NotificationType,
        payload_version: Option<&str>,
    ) -> Result<Option<Subscription>> {
        let req = ApiRequest::new(
            Operation::GetSubscription,
            Method::GET,
            format!(
                "/notifications/v1/subscriptions/{}",
                segment(notification_type.as_str())
            ),
        )
        .query_opt("payloadVersion", payload_version);
        match self
            .execute(req, Expect::Json(payload::<Subscription>))
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The seller's subscription to `notification_type`: an existing one (looked up with
    /// `getSubscription` first), else a new one from `request`. A conflict or an unknown
    /// outcome of `createSubscription` is settled by looking again. An existing subscription
    /// is returned as it is, whatever its destination: compare
    /// [`Subscription::destination_id`].
    pub async fn ensure_subscription(
        &self,
        notification_type: &NotificationType,
        request: &CreateSubscriptionRequest,
    ) -> Result<Ensured<Subscription>> {
        let version = Some(request.payload_version.as_str());
        if let Some(s) = self.get_subscription(notification_type, version).await? {
            return Ok(Ensured {
                value: s,
                created: false,
            });
        }
        match self.create_subscription(notification_type, request).await {
            Ok(s) => Ok(Ensured {
                value: s,
                created: true,
            }),
            Err(e) if is_status(&e, 409) || matches!(e, Error::UnknownOutcome { .. }) => {
                match self.get_subscription(notification_type, version).await? {
                    Some(s) => Ok(Ensured {
                        value: s,
                        created: !is_status(&e, 409),
                    }),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `deleteSubscriptionById` (grantless). `Ok(false)` when Amazon has no such subscription
    /// (404): already deleted.
    pub async fn delete_subscription_by_id(
        &self,
        notification_type: &NotificationType,
        subscription_id: &str,
    ) -> Result<bool> {
        let req = ApiRequest::new(
            Operation::DeleteSubscriptionById,
            Method::DELETE,
            format!(
                "/notifications/v1/subscriptions/{}/{}",
                segment(notification_type.as_str()),
                segment(subscription_id)
            ),
        );
        match self.execute(req, Expect::Empty(|| ())).await {
            Ok(()) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/models/notifications-api-model/notifications.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn sandbox(m: &serde_json::Value, path: &str, method: &str) -> serde_json::Value {
        m["paths"][path][method]["responses"]["200"]["x-amzn-api-sandbox"]["static"][0]["response"]
            .clone()
    }

    /// Amazon's sandbox responses parse into the typed models.
    #[test]
    fn sandbox_responses_parse() {
        let m = model();
        let s: Subscription = payload(
            sandbox(
                &m,
                "/notifications/v1/subscriptions/{notificationType}",
                "post",
            )
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(s.subscription_id, "TEST_CASE_200_SUBSCRIPTION_ID");
        let s: Subscription = payload(
            sandbox(
                &m,
                "/notifications/v1/subscriptions/{notificationType}",
                "get",
            )
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert!(!s.destination_id.is_empty());
        let d: Vec<Destination> = payload(
            sandbox(&m, "/notifications/v1/destinations", "get")
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(!d.is_empty());
        let d: Destination = payload(
            sandbox(&m, "/notifications/v1/destinations", "post")
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(!d.destination_id.is_empty());
    }

    /// The requests match the model's field names and the tutorial's ORDER_CHANGE filter.
    #[test]
    fn request_bodies() {
        let r = CreateSubscriptionRequest::order_change("dest-1", vec!["A1VC38T7YXB528".into()]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"payloadVersion": "1.0", "destinationId": "dest-1",
                "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE",
                    "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
                    "marketplaceIds": ["A1VC38T7YXB528"]}}})
        );
        let r = CreateSubscriptionRequest::feed_processing_finished("dest-1");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"payloadVersion": "2020-09-04", "destinationId": "dest-1"})
        );
        let d = CreateDestinationRequest {
            name: "n".into(),
            resource_specification: DestinationResource {
                sqs: Some(SqsResource {
                    arn: "arn:aws:sqs:us-east-1:000000000000:q".into(),
                }),
                event_bridge: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"name": "n", "resourceSpecification": {"sqs": {"arn": "arn:aws:sqs:us-east-1:000000000000:q"}}})
        );
    }
}
