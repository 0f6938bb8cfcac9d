//! Notifications API v1: destinations (SQS only) and subscriptions to ORDER_CHANGE and
//! FEED_PROCESSING_FINISHED. Destination operations, `getSubscriptionById` and
//! `deleteSubscriptionById` are grantless; `createSubscription` and `getSubscription` act for
//! the seller.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{ApiError, Query, call, json_response, parse_json_body};
use crate::notify::{
    Destination, FEED_PROCESSING_FINISHED, ORDER_CHANGE, ORDER_CHANGE_TYPES, Subscription,
    payload_version,
};
use crate::ops::Op;
use crate::sim::Sim;

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "Conflict", message)
}

fn payload(v: Value) -> Response {
    json_response(StatusCode::OK, &json!({ "payload": v }))
}

/// Amazon's notification types that the simulator does not deliver get a 400 saying so.
fn check_type(notification_type: &str) -> Result<(), ApiError> {
    if payload_version(notification_type).is_some() {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "Invalid notificationType {notification_type}. The simulator supports {ORDER_CHANGE} and {FEED_PROCESSING_FINISHED}."
    )))
}

/// `POST /notifications/v1/destinations` (grantless)
pub(crate) async fn create_destination(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(
        &sim,
        Op::CreateDestination,
        &headers,
        |sim2, caller| async move {
            let v = parse_json_body(&body)?;
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::invalid("name is required."))?;
            if name.chars().count() > 256 {
                return Err(ApiError::invalid("name must be at most 256 characters."));
            }
            let spec = v
                .get("resourceSpecification")
                .and_then(Value::as_object)
                .ok_or_else(|| ApiError::invalid("resourceSpecification is required."))?;
            if spec.contains_key("eventBridge") && !spec.contains_key("sqs") {
                return Err(ApiError::invalid(
                    "EventBridge destinations are not simulated: use resourceSpecification.sqs.",
                ));
            }
            let arn = spec
                .get("sqs")
                .and_then(|s| s.get("arn"))
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid("resourceSpecification.sqs.arn is required."))?;
            if crate::notify::parse_arn(arn).is_none() || arn.len() > 1000 {
                return Err(ApiError::invalid(format!(
                    "Invalid SQS ARN {arn}: expected arn:aws:sqs:REGION:ACCOUNT:QUEUE."
                )));
            }
            let mut st = sim2.lock();
            let n = &mut st.notifications;
            if let Some(d) = n
                .destinations
                .iter()
                .find(|d| d.client_id == caller.client_id && d.arn == arn)
            {
                return Err(conflict(format!("A destination for {arn} already exists."))
                    .with_details(format!("destinationId: {}", d.destination_id)));
            }
            let dest = Destination {
                destination_id: n.new_id(),
                name: name.to_string(),
                arn: arn.to_string(),
                client_id: caller.client_id,
            };
            let out = dest.render();
            n.destinations.push(dest);
            Ok(payload(out))
        },
    )
    .await
}

/// `GET /notifications/v1/destinations` (grantless)
pub(crate) async fn get_destinations(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    call(
        &sim,
        Op::GetDestinations,
        &headers,
        |sim2, caller| async move {
            let st = sim2.lock();
            let list: Vec<Value> = st
                .notifications
                .destinations
                .iter()
                .filter(|d| d.client_id == caller.client_id)
                .map(Destination::render)
                .collect();
            Ok(payload(Value::Array(list)))
        },
    )
    .await
}

/// `GET /notifications/v1/destinations/{destinationId}` (grantless)
pub(crate) async fn get_destination(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(destination_id): Path<String>,
) -> Response {
    call(
        &sim,
        Op::GetDestination,
        &headers,
        |sim2, caller| async move {
            let st = sim2.lock();
            st.notifications
                .destinations
                .iter()
                .find(|d| d.client_id == caller.client_id && d.destination_id == destination_id)
                .map(|d| payload(d.render()))
                .ok_or_else(|| {
                    ApiError::not_found(format!("Destination {destination_id} was not found."))
                })
        },
    )
    .await
}

/// `DELETE /notifications/v1/destinations/{destinationId}` (grantless). A destination that
/// subscriptions still use is refused (409): delete them first.
pub(crate) async fn delete_destination(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(destination_id): Path<String>,
) -> Response {
    call(
        &sim,
        Op::DeleteDestination,
        &headers,
        |sim2, caller| async move {
            let mut st = sim2.lock();
            let n = &mut st.notifications;
            let Some(idx) = n.destinations.iter().position(|d| {
                d.client_id == caller.client_id && d.destination_id == destination_id
            }) else {
                return Err(ApiError::not_found(format!(
                    "Destination {destination_id} was not found."
                )));
            };
            if let Some(s) = n
                .subscriptions
                .iter()
                .find(|s| s.destination_id == destination_id)
            {
                return Err(conflict(format!(
                    "Destination {destination_id} has subscriptions; delete them first."
                ))
                .with_details(format!("subscriptionId: {}", s.subscription_id)));
            }
            n.destinations.remove(idx);
            Ok(json_response(StatusCode::OK, &json!({})))
        },
    )
    .await
}

/// The `eventFilter` of an ORDER_CHANGE subscription: `(orderChangeTypes, marketplaceIds)`.
type OrderFilter = (Option<Vec<String>>, Option<Vec<String>>);

fn order_change_filter(directive: Option<&Value>) -> Result<OrderFilter, ApiError> {
    let filter = directive
        .and_then(|d| d.get("eventFilter"))
        .and_then(Value::as_object)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::invalid("eventFilter must not be empty."))?;
    match filter.get("eventFilterType").and_then(Value::as_str) {
        Some("ORDER_CHANGE") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "eventFilterType {other} does not match notificationType ORDER_CHANGE."
            )));
        }
        None => {
            return Err(ApiError::invalid(
                "eventFilter.eventFilterType is required.",
            ));
        }
    }
    let strings = |key: &str| -> Result<Option<Vec<String>>, ApiError> {
        match filter.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::invalid(format!("{key} must be strings.")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid(format!("{key} must be an array."))),
        }
    };
    let types = strings("orderChangeTypes")?;
    if let Some(t) = &types
        && let Some(bad) = t.iter().find(|t| !ORDER_CHANGE_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "Invalid orderChangeTypes value {bad}."
        )));
    }
    let marketplaces = strings("marketplaceIds")?;
    Ok((
        types.filter(|t| !t.is_empty()),
        marketplaces.filter(|m| !m.is_empty()),
    ))
}

/// `POST /notifications/v1/subscriptions/{notificationType}` (for the seller)
pub(crate) async fn create_subscription(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(notification_type): Path<String>,
    body: Bytes,
) -> Response {
    call(&sim, Op::CreateSubscription, &headers, |sim2, caller| async move {
        check_type(&notification_type)?;
        let v = parse_json_body(&body)?;
        let version = v
            .get("payloadVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("payloadVersion is required."))?;
        let expected = payload_version(&notification_type).unwrap_or_default();
        if version != expected {
            return Err(ApiError::invalid(format!(
                "Invalid payloadVersion {version} for {notification_type}: use {expected}."
            )));
        }
        let destination_id = v
            .get("destinationId")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("destinationId is required."))?;
        let directive = v.get("processingDirective").filter(|d| !d.is_null());
        let (types, marketplaces) = if notification_type == ORDER_CHANGE {
            order_change_filter(directive)?
        } else {
            if directive.is_some_and(|d| d.get("eventFilter").is_some()) {
                return Err(ApiError::invalid(format!(
                    "{notification_type} takes no eventFilter."
                )));
            }
            (None, None)
        };
        let mut st = sim2.lock();
        let n = &mut st.notifications;
        if !n
            .destinations
            .iter()
            .any(|d| d.client_id == caller.client_id && d.destination_id == destination_id)
        {
            return Err(ApiError::invalid(format!(
                "Invalid destinationId {destination_id}: no such destination for this application."
            )));
        }
        if let Some(s) = n.subscriptions.iter().find(|s| {
            s.client_id == caller.client_id
                && s.seller_id == caller.seller_id
                && s.notification_type == notification_type
                && s.payload_version == version
        }) {
            return Err(conflict(format!(
                "A subscription to {notification_type} (payload version {version}) already exists."
            ))
            .with_details(format!("subscriptionId: {}", s.subscription_id)));
        }
        let sub = Subscription {
            subscription_id: n.new_id(),
            client_id: caller.client_id,
            seller_id: caller.seller_id,
            notification_type: notification_type.clone(),
            payload_version: version.to_string(),
            destination_id: destination_id.to_string(),
            processing_directive: directive.cloned(),
            order_change_types: types,
            marketplace_ids: marketplaces,
        };
        let out = sub.render();
        n.subscriptions.push(sub);
        Ok(payload(out))
    })
    .await
}

/// `GET /notifications/v1/subscriptions/{notificationType}` (for the seller)
pub(crate) async fn get_subscription(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(notification_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    call(
        &sim,
        Op::GetSubscription,
        &headers,
        |sim2, caller| async move {
            check_type(&notification_type)?;
            let q = Query::parse(raw.as_deref());
            let version = q.one("payloadVersion");
            let st = sim2.lock();
            st.notifications
                .subscriptions
                .iter()
                .find(|s| {
                    s.client_id == caller.client_id
                        && s.seller_id == caller.seller_id
                        && s.notification_type == notification_type
                        && version.is_none_or(|v| v == s.payload_version)
                })
                .map(|s| payload(s.render()))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "Subscription for {notification_type} was not found."
                    ))
                })
        },
    )
    .await
}

/// `GET /notifications/v1/subscriptions/{notificationType}/{subscriptionId}` (grantless)
pub(crate) async fn get_subscription_by_id(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path((notification_type, subscription_id)): Path<(String, String)>,
) -> Response {
    call(
        &sim,
        Op::GetSubscriptionById,
        &headers,
        |sim2, caller| async move {
            check_type(&notification_type)?;
            let st = sim2.lock();
            st.notifications
                .subscriptions
                .iter()
                .find(|s| {
                    s.client_id == caller.client_id
                        && s.notification_type == notification_type
                        && s.subscription_id == subscription_id
                })
                .map(|s| payload(s.render()))
                .ok_or_else(|| {
                    ApiError::not_found(format!("Subscription {subscription_id} was not found."))
                })
        },
    )
    .await
}

/// `DELETE /notifications/v1/subscriptions/{notificationType}/{subscriptionId}` (grantless)
pub(crate) async fn delete_subscription_by_id(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path((notification_type, subscription_id)): Path<(String, String)>,
) -> Response {
    call(
        &sim,
        Op::DeleteSubscriptionById,
        &headers,
        |sim2, caller| async move {
            check_type(&notification_type)?;
            let mut st = sim2.lock();
            let subs = &mut st.notifications.subscriptions;
            let Some(idx) = subs.iter().position(|s| {
                s.client_id == caller.client_id
                    && s.notification_type == notification_type
                    && s.subscription_id == subscription_id
            }) else {
                return Err(ApiError::not_found(format!(
                    "Subscription {subscription_id} was not found."
                )));
            };
            subs.remove(idx);
            Ok(json_response(StatusCode::OK, &json!({})))
        },
    )
    .await
}
