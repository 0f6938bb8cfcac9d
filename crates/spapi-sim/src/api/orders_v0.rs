//! Orders API v0: getOrders, getOrder, getOrderItems (deprecated reads) and confirmShipment.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::http::{ApiError, Query, call, json_response, parse_json_body, parse_time};
use crate::model::{
    FulfilledBy, Order, OrderStatus, PaymentMethod, fmt_time, format_amount, is_order_id,
    marketplace,
};
use crate::ops::Op;
use crate::shipment::{ShipError, Shipment, apply_shipment, check_shipment, tracking_number_valid};
use crate::sim::Sim;
use crate::state::PageCursor;

fn money(amount: Decimal, currency: &str) -> Value {
    json!({"CurrencyCode": currency, "Amount": format_amount(amount, currency)})
}

/// Renders an order in the v0 `Order` shape. PII only with a restricted data token.
pub(crate) fn render_order(o: &Order, restricted: bool) -> Value {
    let mut v = Map::new();
    let m = marketplace(&o.marketplace_id);
    v.insert("AmazonOrderId".into(), json!(o.order_id));
    if let Some(s) = &o.seller_order_id {
        v.insert("SellerOrderId".into(), json!(s));
    }
    v.insert("PurchaseDate".into(), json!(fmt_time(o.created_time)));
    v.insert(
        "LastUpdateDate".into(),
        json!(fmt_time(o.last_updated_time)),
    );
    v.insert("OrderStatus".into(), json!(o.status.as_v0()));
    v.insert("FulfillmentChannel".into(), json!(o.fulfilled_by.as_v0()));
    v.insert(
        "SalesChannel".into(),
        json!(m.map(|m| m.name).unwrap_or("Amazon")),
    );
    let expedited = o.service_level == "EXPEDITED";
    v.insert(
        "ShipServiceLevel".into(),
        json!(if expedited {
            "Expedited"
        } else {
            "Std Domestic"
        }),
    );
    v.insert(
        "ShipmentServiceLevelCategory".into(),
        json!(if expedited { "Expedited" } else { "Standard" }),
    );
    v.insert("NumberOfItemsShipped".into(), json!(o.items_shipped()));
    v.insert("NumberOfItemsUnshipped".into(), json!(o.items_unshipped()));
    if o.status != OrderStatus::Pending {
        v.insert("OrderTotal".into(), money(o.grand_total(), &o.currency));
        v.insert("PaymentMethod".into(), json!(o.payment_method.as_v0()));
        v.insert(
            "PaymentMethodDetails".into(),
            json!([o.payment_method.v0_detail()]),
        );
        if o.payment_method == PaymentMethod::CashOnDelivery {
            v.insert(
                "PaymentExecutionDetail".into(),
                json!([{"Payment": money(o.grand_total(), &o.currency), "PaymentMethod": "COD"}]),
            );
        }
    }
    v.insert("MarketplaceId".into(), json!(o.marketplace_id));
    v.insert("OrderType".into(), json!("StandardOrder"));
    v.insert(
        "EarliestShipDate".into(),
        json!(fmt_time(o.earliest_ship_date)),
    );
    v.insert("LatestShipDate".into(), json!(fmt_time(o.latest_ship_date)));
    v.insert(
        "EarliestDeliveryDate".into(),
        json!(fmt_time(o.earliest_delivery_date)),
    );
    v.insert(
        "LatestDeliveryDate".into(),
        json!(fmt_time(o.latest_delivery_date)),
    );
    v.insert("IsBusinessOrder".into(), json!(o.business.is_some()));
    v.insert("IsPremiumOrder".into(), json!(o.premium));
    for k in [
        "IsGlobalExpressEnabled",
        "IsReplacementOrder",
        "IsSoldByAB",
        "IsISPU",
        "IsAccessPointOrder",
    ] {
        v.insert(k.into(), json!(false));
    }
    v.insert("IsPrime".into(), json!(o.prime));
    if o.status.pii_visible() {
        let a = &o.address;
        let mut addr = Map::new();
        if restricted {
            addr.insert("Name".into(), json!(a.name));
            addr.insert("AddressLine1".into(), json!(a.address_line1));
            if let Some(l2) = &a.address_line2 {
                addr.insert("AddressLine2".into(), json!(l2));
            }
            if let (Some(p), FulfilledBy::Merchant) = (&a.phone, o.fulfilled_by) {
                addr.insert("Phone".into(), json!(p));
            }
            addr.insert("AddressType".into(), json!("Residential"));
        }
        addr.insert("City".into(), json!(a.city));
        if !a.state_or_region.is_empty() {
            addr.insert("StateOrRegion".into(), json!(a.state_or_region));
        }
        addr.insert("PostalCode".into(), json!(a.postal_code));
        addr.insert("CountryCode".into(), json!(a.country_code));
        v.insert("ShippingAddress".into(), Value::Object(addr));
        if restricted {
            v.insert(
                "BuyerInfo".into(),
                json!({"BuyerEmail": o.buyer.email, "BuyerName": o.buyer.name}),
            );
        }
    }
    Value::Object(v)
}

fn render_items(o: &Order) -> Vec<Value> {
    let priced = o.status != OrderStatus::Pending;
    o.items
        .iter()
        .enumerate()
        .map(|(idx, it)| {
            let mut v = Map::new();
            v.insert("ASIN".into(), json!(it.asin));
            v.insert("SellerSKU".into(), json!(it.seller_sku));
            v.insert("OrderItemId".into(), json!(it.order_item_id));
            v.insert("Title".into(), json!(it.title));
            v.insert("QuantityOrdered".into(), json!(it.quantity_ordered));
            v.insert("QuantityShipped".into(), json!(it.quantity_shipped));
            v.insert("ProductInfo".into(), json!({"NumberOfItems": "1"}));
            if priced {
                let zero = Decimal::ZERO;
                let (shipping, cod_fee) = o.item_charges(idx);
                v.insert(
                    "ItemPrice".into(),
                    money(
                        it.unit_price * Decimal::from(it.quantity_ordered),
                        &o.currency,
                    ),
                );
                v.insert("ShippingPrice".into(), money(shipping, &o.currency));
                v.insert("ItemTax".into(), money(zero, &o.currency));
                v.insert("ShippingTax".into(), money(zero, &o.currency));
                v.insert("ShippingDiscount".into(), money(zero, &o.currency));
                v.insert("PromotionDiscount".into(), money(zero, &o.currency));
                if o.payment_method == PaymentMethod::CashOnDelivery {
                    v.insert("CODFee".into(), money(cod_fee, &o.currency));
                    v.insert("CODFeeDiscount".into(), money(zero, &o.currency));
                }
                v.insert("IsGift".into(), json!(it.is_gift().to_string()));
            }
            v.insert("ConditionId".into(), json!("New"));
            v.insert("ConditionSubtypeId".into(), json!("New"));
            v.insert("IsTransparency".into(), json!(false));
            v.insert("SerialNumberRequired".into(), json!(false));
            let mut cancel = Map::new();
            cancel.insert(
                "IsBuyerRequestedCancel".into(),
                json!(if it.buyer_requested_cancel {
                    "true"
                } else {
                    "false"
                }),
            );
            if let Some(r) = &it.buyer_cancel_reason {
                cancel.insert("BuyerCancelReason".into(), json!(r));
            }
            v.insert("BuyerRequestedCancel".into(), Value::Object(cancel));
            Value::Object(v)
        })
        .collect()
}

const V0_STATUSES: [&str; 8] = [
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "InvoiceUnconfirmed",
    "Canceled",
    "Unfulfillable",
];

/// `GET /orders/v0/orders`
pub(crate) async fn get_orders(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    call(&sim, Op::GetOrdersV0, &headers, |sim2, caller| async move {
        let q = Query::parse(raw.as_deref());
        let marketplaces = q.list("MarketplaceIds");
        if marketplaces.is_empty() {
            return Err(ApiError::invalid("MarketplaceIds is required."));
        }
        if marketplaces.len() > 50 {
            return Err(ApiError::invalid("MarketplaceIds may contain at most 50 values."));
        }
        let page_size = match q.one("MaxResultsPerPage") {
            None => 100,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(ApiError::invalid("MaxResultsPerPage must be an integer between 1 and 100.")),
            },
        };
        let mut st = sim2.lock();
        let now = st.now();
        let fingerprint = format!("v0|{}|{}", caller.seller_id, {
            let mut m = marketplaces.clone();
            m.sort();
            m.join(",")
        });
        let (ids, before, created_window) = if let Some(token) = q.one("NextToken") {
            let c = st
                .page_tokens
                .get(token)
                .filter(|c| c.expires_at > now && c.seller_id == caller.seller_id && c.fingerprint.starts_with(&fingerprint))
                .cloned()
                .ok_or_else(|| ApiError::invalid("Invalid NextToken."))?;
            let created = c.fingerprint.ends_with("|created");
            (c.remaining, c.before, created)
        } else {
            let ca = q.one("CreatedAfter");
            let cb = q.one("CreatedBefore");
            let la = q.one("LastUpdatedAfter");
            let lb = q.one("LastUpdatedBefore");
            let seller_order_id = q.one("SellerOrderId");
            let (created, after, before) = match (ca, la) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(ApiError::invalid("Exactly one of CreatedAfter and LastUpdatedAfter is required."));
                }
                (Some(a), None) => {
                    if lb.is_some() {
                        return Err(ApiError::invalid("LastUpdatedBefore cannot be set when CreatedAfter is set."));
                    }
                    (true, parse_time("CreatedAfter", a)?, cb.map(|b| parse_time("CreatedBefore", b)).transpose()?)
                }
                (None, Some(a)) => {
                    if cb.is_some() {
                        return Err(ApiError::invalid("CreatedBefore cannot be set when LastUpdatedAfter is set."));
                    }
                    if seller_order_id.is_some() {
                        return Err(ApiError::invalid("LastUpdatedAfter cannot be set when SellerOrderId is set."));
                    }
                    (false, parse_time("LastUpdatedAfter", a)?, lb.map(|b| parse_time("LastUpdatedBefore", b)).transpose()?)
                }
            };
            if after > now {
                return Err(ApiError::invalid("The after date must not be in the future."));
            }
            if let Some(b) = before {
                if b < after {
                    return Err(ApiError::invalid("The before date must be equal to or after the after date."));
                }
                if b > now - Duration::minutes(2) {
                    return Err(ApiError::invalid("The before date must be at least two minutes before the current time."));
                }
            }
            let statuses = q.list("OrderStatuses");
            if let Some(bad) = statuses.iter().find(|s| !V0_STATUSES.contains(&s.as_str())) {
                return Err(ApiError::invalid(format!("Invalid OrderStatuses value '{bad}'.")));
            }
            let channels = q.list("FulfillmentChannels");
            if let Some(bad) = channels.iter().find(|c| *c != "AFN" && *c != "MFN") {
                return Err(ApiError::invalid(format!("Invalid FulfillmentChannels value '{bad}'.")));
            }
            let payments = q.list("PaymentMethods");
            if let Some(bad) = payments.iter().find(|p| !["COD", "CVS", "Other"].contains(&p.as_str())) {
                return Err(ApiError::invalid(format!("Invalid PaymentMethods value '{bad}'.")));
            }
            let order_ids = q.list("AmazonOrderIds");
            if order_ids.len() > 50 {
                return Err(ApiError::invalid("AmazonOrderIds may contain at most 50 values."));
            }
            if let Some(bad) = order_ids.iter().find(|id| !is_order_id(id)) {
                return Err(ApiError::invalid(format!("Invalid AmazonOrderIds value '{bad}'.")));
            }
            if seller_order_id.is_some()
                && (!statuses.is_empty() || !channels.is_empty() || !payments.is_empty() || q.one("BuyerEmail").is_some())
            {
                return Err(ApiError::invalid(
                    "SellerOrderId cannot be combined with FulfillmentChannels, OrderStatuses, PaymentMethods, LastUpdatedAfter, LastUpdatedBefore or BuyerEmail.",
                ));
            }
            let buyer_email = q.one("BuyerEmail");
            let upper = before.unwrap_or(now);
            let mut matching: Vec<&Order> = st
                .orders
                .values()
                .filter(|o| o.seller_id == caller.seller_id && marketplaces.contains(&o.marketplace_id))
                .filter(|o| {
                    let t = if created { o.created_time } else { o.last_updated_time };
                    t >= after && t <= upper
                })
                .filter(|o| statuses.is_empty() || statuses.iter().any(|s| s == o.status.as_v0()))
                .filter(|o| channels.is_empty() || channels.iter().any(|c| c == o.fulfilled_by.as_v0()))
                .filter(|o| {
                    payments.is_empty()
                        || (o.status != OrderStatus::Pending && payments.iter().any(|p| p == o.payment_method.as_v0()))
                })
                .filter(|o| order_ids.is_empty() || order_ids.contains(&o.order_id))
                .filter(|o| seller_order_id.is_none_or(|s| o.seller_order_id.as_deref() == Some(s)))
                .filter(|o| buyer_email.is_none_or(|e| o.buyer.email == e))
                .collect();
            matching.sort_by(|a, b| {
                let (ta, tb) = if created { (a.created_time, b.created_time) } else { (a.last_updated_time, b.last_updated_time) };
                ta.cmp(&tb).then_with(|| a.order_id.cmp(&b.order_id))
            });
            (matching.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>(), upper, created)
        };
        let (page, rest) = ids.split_at(page_size.min(ids.len()));
        let orders: Vec<Value> = page
            .iter()
            .filter_map(|id| st.orders.get(id))
            .map(|o| render_order(o, caller.restricted))
            .collect();
        let mut payload = json!({"Orders": orders});
        if !rest.is_empty() {
            let token = st.random_token(64);
            st.page_tokens.insert(
                token.clone(),
                PageCursor {
                    seller_id: caller.seller_id.clone(),
                    fingerprint: format!("{fingerprint}|{}", if created_window { "created" } else { "updated" }),
                    remaining: rest.to_vec(),
                    expires_at: now + Duration::hours(24),
                    before,
                },
            );
            payload["NextToken"] = json!(token);
        }
        let key = if created_window { "CreatedBefore" } else { "LastUpdatedBefore" };
        payload[key] = json!(fmt_time(before));
        Ok(json_response(StatusCode::OK, &json!({"payload": payload})))
    })
    .await
}

fn find_order<'a>(
    st: &'a crate::state::State,
    order_id: &str,
    seller: &str,
) -> Result<&'a Order, ApiError> {
    if !is_order_id(order_id) {
        return Err(ApiError::invalid(format!(
            "Invalid orderId '{order_id}': it must be in 3-7-7 format."
        )));
    }
    st.orders
        .get(order_id)
        .filter(|o| o.seller_id == seller)
        .ok_or_else(|| ApiError::not_found(format!("Order {order_id} was not found.")))
}

/// `GET /orders/v0/orders/{orderId}`
pub(crate) async fn get_order(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Response {
    call(&sim, Op::GetOrderV0, &headers, |sim2, caller| async move {
        let st = sim2.lock();
        let o = find_order(&st, &order_id, &caller.seller_id)?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"payload": render_order(o, caller.restricted)}),
        ))
    })
    .await
}

/// `GET /orders/v0/orders/{orderId}/orderItems`
pub(crate) async fn get_order_items(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    call(
        &sim,
        Op::GetOrderItemsV0,
        &headers,
        |sim2, caller| async move {
            let q = Query::parse(raw.as_deref());
            if q.one("NextToken").is_some() {
                // Every simulated order fits on one page, so no NextToken is ever issued.
                return Err(ApiError::invalid("Invalid NextToken."));
            }
            let st = sim2.lock();
            let o = find_order(&st, &order_id, &caller.seller_id)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"payload": {"AmazonOrderId": o.order_id, "OrderItems": render_items(o)}}),
            ))
        },
    )
    .await
}

fn ship_date(v: &Value) -> Result<DateTime<Utc>, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| ApiError::invalid("packageDetail.shipDate is required."))?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::invalid(format!(
                "packageDetail.shipDate '{s}' is not an ISO 8601 date-time."
            ))
        })
}

/// `POST /orders/v0/orders/{orderId}/shipmentConfirmation`
pub(crate) async fn confirm_shipment(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Response {
    call(&sim, Op::ConfirmShipment, &headers, |sim2, caller| async move {
        if !is_order_id(&order_id) {
            return Err(ApiError::invalid(format!("Invalid orderId '{order_id}': it must be in 3-7-7 format.")));
        }
        let v = parse_json_body(&body)?;
        let marketplace_id = v
            .get("marketplaceId")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("marketplaceId is required."))?
            .to_string();
        match v.get("codCollectionMethod") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "DirectPayment" => {}
            Some(_) => return Err(ApiError::invalid("codCollectionMethod must be DirectPayment.")),
        }
        let pd = v
            .get("packageDetail")
            .and_then(Value::as_object)
            .ok_or_else(|| ApiError::invalid("packageDetail is required."))?;
        let str_field = |name: &str| pd.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let package_reference_id = str_field("packageReferenceId")
            .ok_or_else(|| ApiError::invalid("packageDetail.packageReferenceId is required."))?;
        if !package_reference_id.bytes().all(|b| b.is_ascii_digit()) || package_reference_id.parse::<u64>().map_or(true, |n| n == 0) {
            return Err(ApiError::invalid("packageDetail.packageReferenceId must be a positive numeric value."));
        }
        let carrier_code = str_field("carrierCode").ok_or_else(|| ApiError::invalid("packageDetail.carrierCode is required."))?;
        let carrier_name = str_field("carrierName").map(str::to_string);
        if carrier_code == "Other" && carrier_name.is_none() {
            return Err(ApiError::invalid("packageDetail.carrierName is required when carrierCode is Other."));
        }
        let tracking = str_field("trackingNumber").ok_or_else(|| ApiError::invalid("packageDetail.trackingNumber is required."))?;
        if !tracking_number_valid(carrier_code, carrier_name.as_deref(), tracking) {
            return Err(ApiError::invalid(format!(
                "The tracking ID {tracking} does not match the expected format for the carrier {carrier_code}."
            )));
        }
        let ship_time = ship_date(pd.get("shipDate").unwrap_or(&Value::Null))?;
        let items = match pd.get("orderItems") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Err(ApiError::invalid("packageDetail.orderItems must list at least one item.")),
        };
        let mut parsed = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let id = it
                .get("orderItemId")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid(format!("orderItems[{i}].orderItemId is required.")))?;
            let qty = it
                .get("quantity")
                .and_then(Value::as_i64)
                .filter(|q| *q >= 1 && *q <= i64::from(u32::MAX))
                .ok_or_else(|| ApiError::invalid(format!("orderItems[{i}].quantity must be a positive integer.")))?;
            parsed.push((id.to_string(), qty as u32));
        }
        let shipment = Shipment {
            package_reference_id: Some(package_reference_id.to_string()),
            carrier_code: carrier_code.to_string(),
            carrier_name,
            shipping_method: str_field("shippingMethod").map(str::to_string),
            tracking_number: tracking.to_string(),
            ship_time,
            items: parsed,
        };
        let mut st = sim2.lock();
        let now = st.now();
        let order = st
            .orders
            .get_mut(&order_id)
            .filter(|o| o.seller_id == caller.seller_id)
            .ok_or_else(|| ApiError::not_found(format!("Order {order_id} was not found.")))?;
        if order.marketplace_id != marketplace_id {
            return Err(ApiError::invalid(format!("marketplaceId {marketplace_id} does not match the order's marketplace.")));
        }
        if ship_time > now + Duration::days(2) {
            return Err(ApiError::invalid("packageDetail.shipDate cannot be more than two days in the future."));
        }
        check_shipment(order, &shipment, true).map_err(|e| match e {
            ShipError::Pending => ApiError::invalid(format!("Order {order_id} is pending and cannot be shipped yet.")),
            ShipError::Cancelled => ApiError::invalid(format!("Order {order_id} has been cancelled.")),
            ShipError::AlreadyShipped => ApiError::invalid(format!("Order {order_id} has already been shipped.")),
            ShipError::BeforeOrderDate => ApiError::invalid("packageDetail.shipDate is before the purchase date."),
            ShipError::UnknownItem(id) => ApiError::invalid(format!("orderItemId {id} is not part of order {order_id}.")),
            ShipError::TooMany(id) => ApiError::invalid(format!("The quantity for orderItemId {id} exceeds the unshipped quantity.")),
        })?;
        if order.status == OrderStatus::Shipped
            && !order.packages.iter().any(|p| Some(&p.package_reference_id) == shipment.package_reference_id.as_ref())
        {
            return Err(ApiError::invalid(format!("Order {order_id} has already been shipped.")));
        }
        let before = order.status;
        apply_shipment(order, &shipment, "confirmShipment", now);
        if order.status != before {
            st.notify_order_change(&order_id, "OrderStatusChange", "ShipmentConfirmed");
        }
        tracing::debug!(order_id = %order_id, "shipment confirmed");
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        Ok(resp)
    })
    .await
}
