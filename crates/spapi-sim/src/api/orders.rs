//! Orders API v2026-01-01: `searchOrders` and `getOrder`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::http::{ApiError, Query, call, json_response, parse_time};
use crate::model::{
    Order, OrderStatus, PaymentMethod, fmt_time, format_amount, is_order_id, marketplace,
};
use crate::ops::Op;
use crate::sim::Sim;
use crate::state::PageCursor;

const FULFILLMENT_STATUSES: [&str; 7] = [
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
];

const INCLUDED_DATA: [&str; 11] = [
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
];

/// Datasets requested through `includedData`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Included {
    pub buyer: bool,
    pub recipient: bool,
    pub proceeds: bool,
    pub cancellation: bool,
    pub fulfillment: bool,
    pub packages: bool,
    pub payment: bool,
}

impl Included {
    pub fn parse(q: &Query) -> Result<Included, ApiError> {
        let mut inc = Included::default();
        for v in q.list("includedData") {
            if !INCLUDED_DATA.contains(&v.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Invalid includedData value '{v}'. Valid values: {}.",
                    INCLUDED_DATA.join(", ")
                )));
            }
            match v.as_str() {
                "BUYER" => inc.buyer = true,
                "RECIPIENT" => inc.recipient = true,
                "PROCEEDS" => inc.proceeds = true,
                "CANCELLATION" => inc.cancellation = true,
                "FULFILLMENT" => inc.fulfillment = true,
                "PACKAGES" => inc.packages = true,
                "PAYMENT" => inc.payment = true,
                _ => {}
            }
        }
        Ok(inc)
    }
}

fn money(amount: Decimal, currency: &str) -> Value {
    json!({"amount": format_amount(amount, currency), "currencyCode": currency})
}

fn set_opt(obj: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(s) = v.as_ref().filter(|s| !s.is_empty()) {
        obj.insert(key.into(), json!(s));
    }
}

/// Renders an order in the v2026-01-01 `Order` shape.
pub(crate) fn render_order(o: &Order, inc: &Included) -> Value {
    let pii = o.status.pii_visible();
    let priced = o.status != OrderStatus::Pending;
    let cur = o.currency.as_str();
    let mname = marketplace(&o.marketplace_id)
        .map(|m| m.name)
        .unwrap_or("Amazon");
    let mut order = Map::new();
    order.insert("orderId".into(), json!(o.order_id));
    if let Some(alias) = &o.seller_order_id {
        order.insert(
            "orderAliases".into(),
            json!([{"aliasId": alias, "aliasType": "SELLER_ORDER_ID"}]),
        );
    }
    order.insert("createdTime".into(), json!(fmt_time(o.created_time)));
    order.insert(
        "lastUpdatedTime".into(),
        json!(fmt_time(o.last_updated_time)),
    );
    let mut programs = Vec::new();
    if o.prime {
        programs.push("PRIME");
    }
    if o.premium {
        programs.push("PREMIUM");
    }
    if o.business.is_some() {
        programs.push("AMAZON_BUSINESS");
    }
    order.insert("programs".into(), json!(programs));
    order.insert(
        "salesChannel".into(),
        json!({"channelName": "AMAZON", "marketplaceId": o.marketplace_id, "marketplaceName": mname}),
    );
    if inc.buyer && pii && !o.pii_withheld {
        let mut buyer = Map::new();
        buyer.insert("buyerName".into(), json!(o.buyer.name));
        buyer.insert("buyerEmail".into(), json!(o.buyer.email));
        if let Some(b) = &o.business {
            set_opt(&mut buyer, "buyerCompanyName", &b.company_name);
            set_opt(
                &mut buyer,
                "buyerPurchaseOrderNumber",
                &b.purchase_order_number,
            );
        }
        order.insert("buyer".into(), Value::Object(buyer));
    }
    if inc.recipient && pii && !o.pii_withheld {
        let a = &o.address;
        let mut addr = Map::new();
        addr.insert("name".into(), json!(a.name));
        addr.insert("addressLine1".into(), json!(a.address_line1));
        set_opt(&mut addr, "addressLine2", &a.address_line2);
        addr.insert("city".into(), json!(a.city));
        if !a.state_or_region.is_empty() {
            addr.insert("stateOrRegion".into(), json!(a.state_or_region));
        }
        addr.insert("postalCode".into(), json!(a.postal_code));
        addr.insert("countryCode".into(), json!(a.country_code));
        // Amazon suppresses the phone of FBA orders.
        if o.fulfilled_by == crate::model::FulfilledBy::Merchant {
            set_opt(&mut addr, "phone", &a.phone);
        }
        addr.insert("addressType".into(), json!("RESIDENTIAL"));
        let mut recipient = Map::new();
        recipient.insert("deliveryAddress".into(), Value::Object(addr));
        if let Some(p) = &o.delivery_preference {
            recipient.insert("deliveryPreference".into(), p.clone());
        }
        order.insert("recipient".into(), Value::Object(recipient));
    }
    if inc.proceeds && priced {
        let mut breakdowns = vec![json!({"type": "ITEM", "subtotal": money(o.items_total(), cur)})];
        if !o.shipping_price.is_zero() {
            breakdowns.push(json!({"type": "SHIPPING", "subtotal": money(o.shipping_price, cur)}));
        }
        if !o.cod_fee.is_zero() {
            breakdowns.push(json!({"type": "COD_FEE", "subtotal": money(o.cod_fee, cur)}));
        }
        order.insert(
            "proceeds".into(),
            json!({"grandTotal": money(o.grand_total(), cur), "breakdowns": breakdowns}),
        );
    }
    if inc.payment && priced {
        order.insert(
            "payment".into(),
            json!({"paymentExecutions": [{
                "paymentMethod": o.payment_method.as_2026(),
                "paymentAmount": money(o.grand_total(), cur),
            }]}),
        );
    }
    if inc.fulfillment {
        let mut f = Map::new();
        f.insert("fulfillmentStatus".into(), json!(o.status.as_2026()));
        f.insert("fulfilledBy".into(), json!(o.fulfilled_by.as_2026()));
        f.insert("fulfillmentServiceLevel".into(), json!(o.service_level));
        f.insert(
            "shipByWindow".into(),
            json!({"earliestDateTime": fmt_time(o.earliest_ship_date), "latestDateTime": fmt_time(o.latest_ship_date)}),
        );
        f.insert(
            "deliverByWindow".into(),
            json!({"earliestDateTime": fmt_time(o.earliest_delivery_date), "latestDateTime": fmt_time(o.latest_delivery_date)}),
        );
        order.insert("fulfillment".into(), Value::Object(f));
    }
    let items: Vec<Value> = o
        .items
        .iter()
        .enumerate()
        .map(|(idx, it)| {
            let mut item = Map::new();
            item.insert("orderItemId".into(), json!(it.order_item_id));
            item.insert("quantityOrdered".into(), json!(it.quantity_ordered));
            let mut product = Map::new();
            product.insert("asin".into(), json!(it.asin));
            product.insert("title".into(), json!(it.title));
            product.insert("sellerSku".into(), json!(it.seller_sku));
            product.insert(
                "condition".into(),
                json!({"conditionType": "NEW", "conditionSubtype": "NEW"}),
            );
            if priced {
                product.insert(
                    "price".into(),
                    json!({"unitPrice": money(it.unit_price, cur)}),
                );
            }
            item.insert("product".into(), Value::Object(product));
            if inc.proceeds && priced {
                let line = it.unit_price * Decimal::from(it.quantity_ordered);
                let (shipping, cod_fee) = o.item_charges(idx);
                let mut breakdowns = vec![json!({"type": "ITEM", "subtotal": money(line, cur)})];
                if !shipping.is_zero() {
                    breakdowns.push(json!({"type": "SHIPPING", "subtotal": money(shipping, cur)}));
                }
                if !cod_fee.is_zero() {
                    breakdowns.push(json!({"type": "COD_FEE", "subtotal": money(cod_fee, cur)}));
                }
                item.insert(
                    "proceeds".into(),
                    json!({"proceedsTotal": money(line + shipping + cod_fee, cur), "breakdowns": breakdowns}),
                );
            }
            if inc.cancellation {
                let mut c = Map::new();
                if it.buyer_requested_cancel {
                    let mut r = Map::new();
                    r.insert("requester".into(), json!("BUYER"));
                    set_opt(&mut r, "cancelReason", &it.buyer_cancel_reason);
                    c.insert("cancellationRequest".into(), Value::Object(r));
                }
                if let Some(cx) = &o.cancellation {
                    let mut e = Map::new();
                    e.insert("cancelledBy".into(), json!(cx.cancelled_by));
                    set_opt(&mut e, "cancelReason", &cx.reason);
                    c.insert("cancellationExecution".into(), Value::Object(e));
                }
                if !c.is_empty() {
                    item.insert("cancellation".into(), Value::Object(c));
                }
            }
            if inc.fulfillment {
                let mut f = Map::new();
                f.insert("quantityFulfilled".into(), json!(it.quantity_shipped));
                f.insert(
                    "quantityUnfulfilled".into(),
                    json!(it.quantity_ordered.saturating_sub(it.quantity_shipped)),
                );
                // Gift status shows once the order leaves Pending; the message is PII.
                if priced && it.is_gift() {
                    let mut g = Map::new();
                    if pii {
                        set_opt(&mut g, "giftMessage", &it.gift_message);
                    }
                    set_opt(&mut g, "giftWrapLevel", &it.gift_wrap_level);
                    f.insert("packing".into(), json!({"giftOption": g}));
                }
                let mut shipping = Map::new();
                if let Some(w) = &o.scheduled_delivery {
                    shipping.insert(
                        "scheduledDeliveryWindow".into(),
                        json!({"earliestDateTime": fmt_time(w.start), "latestDateTime": fmt_time(w.end)}),
                    );
                }
                if priced && o.payment_method == PaymentMethod::CashOnDelivery {
                    shipping.insert(
                        "shippingConstraints".into(),
                        json!({"cashOnDelivery": "MANDATORY"}),
                    );
                }
                if !shipping.is_empty() {
                    f.insert("shipping".into(), Value::Object(shipping));
                }
                item.insert("fulfillment".into(), Value::Object(f));
            }
            Value::Object(item)
        })
        .collect();
    order.insert("orderItems".into(), Value::Array(items));
    if inc.packages && o.fulfilled_by == crate::model::FulfilledBy::Merchant {
        let packages: Vec<Value> = o
            .packages
            .iter()
            .map(|p| {
                let carrier = match (&p.carrier_name, p.carrier_code.as_str()) {
                    (Some(name), "Other") => name.clone(),
                    _ => p.carrier_code.clone(),
                };
                let mut pk = Map::new();
                pk.insert("packageReferenceId".into(), json!(p.package_reference_id));
                pk.insert("createdTime".into(), json!(fmt_time(p.created_time)));
                pk.insert("packageStatus".into(), json!({"status": "SHIPPED"}));
                pk.insert("carrier".into(), json!(carrier));
                pk.insert("shipTime".into(), json!(fmt_time(p.ship_time)));
                set_opt(&mut pk, "shippingService", &p.shipping_method);
                pk.insert("trackingNumber".into(), json!(p.tracking_number));
                pk.insert(
                    "packageItems".into(),
                    json!(
                        p.items
                            .iter()
                            .map(
                                |i| json!({"orderItemId": i.order_item_id, "quantity": i.quantity})
                            )
                            .collect::<Vec<_>>()
                    ),
                );
                Value::Object(pk)
            })
            .collect();
        order.insert("packages".into(), Value::Array(packages));
    }
    Value::Object(order)
}

/// Which time the search filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Created,
    LastUpdated,
}

struct SearchFilter {
    window: Window,
    after: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
    statuses: Vec<String>,
    marketplaces: Vec<String>,
    fulfilled_by: Vec<String>,
    fingerprint: String,
}

fn parse_filter(q: &Query, seller: &str, now: DateTime<Utc>) -> Result<SearchFilter, ApiError> {
    let ca = q.one("createdAfter");
    let cb = q.one("createdBefore");
    let la = q.one("lastUpdatedAfter");
    let lb = q.one("lastUpdatedBefore");
    let (window, after_raw, before_raw) = match (ca, la) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Exactly one of createdAfter and lastUpdatedAfter must be provided, not both.",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "Exactly one of createdAfter and lastUpdatedAfter must be provided.",
            ));
        }
        (Some(a), None) => {
            if lb.is_some() {
                return Err(ApiError::invalid(
                    "lastUpdatedBefore cannot be provided together with createdAfter.",
                ));
            }
            (Window::Created, a, cb)
        }
        (None, Some(a)) => {
            if cb.is_some() {
                return Err(ApiError::invalid(
                    "createdBefore cannot be provided together with lastUpdatedAfter.",
                ));
            }
            (Window::LastUpdated, a, lb)
        }
    };
    let (after_name, before_name) = match window {
        Window::Created => ("createdAfter", "createdBefore"),
        Window::LastUpdated => ("lastUpdatedAfter", "lastUpdatedBefore"),
    };
    let after = parse_time(after_name, after_raw)?;
    if after > now {
        return Err(ApiError::invalid(format!(
            "{after_name} must not be in the future."
        )));
    }
    let before = match before_raw {
        Some(b) => {
            let b = parse_time(before_name, b)?;
            if b < after {
                return Err(ApiError::invalid(format!(
                    "{before_name} must be equal to or after {after_name}."
                )));
            }
            if b > now - Duration::minutes(2) {
                return Err(ApiError::invalid(format!(
                    "{before_name} must be at least two minutes before the time of the request."
                )));
            }
            Some(b)
        }
        None => None,
    };
    let mut statuses = q.list("fulfillmentStatuses");
    for s in &statuses {
        if !FULFILLMENT_STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid fulfillmentStatuses value '{s}'."
            )));
        }
    }
    statuses.sort();
    statuses.dedup();
    let mut marketplaces = q.list("marketplaceIds");
    if marketplaces.len() > 50 {
        return Err(ApiError::invalid(
            "marketplaceIds may contain at most 50 values.",
        ));
    }
    marketplaces.sort();
    marketplaces.dedup();
    let mut fulfilled_by = q.list("fulfilledBy");
    for f in &fulfilled_by {
        if f != "MERCHANT" && f != "AMAZON" {
            return Err(ApiError::invalid(format!(
                "Invalid fulfilledBy value '{f}'. Valid values: MERCHANT, AMAZON."
            )));
        }
    }
    fulfilled_by.sort();
    fulfilled_by.dedup();
    let fingerprint = format!(
        "{seller}|{window:?}|{after}|{before:?}|{}|{}|{}",
        statuses.join(","),
        marketplaces.join(","),
        fulfilled_by.join(",")
    );
    Ok(SearchFilter {
        window,
        after,
        before,
        statuses,
        marketplaces,
        fulfilled_by,
        fingerprint,
    })
}

fn max_results(q: &Query) -> Result<usize, ApiError> {
    match q.one("maxResultsPerPage") {
        None => Ok(100),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n as usize),
            _ => Err(ApiError::invalid(
                "maxResultsPerPage must be an integer between 1 and 100.",
            )),
        },
    }
}

/// `GET /orders/2026-01-01/orders`
pub(crate) async fn search_orders(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    call(&sim, Op::SearchOrders, &headers, |sim2, caller| async move {
        let q = Query::parse(raw.as_deref());
        let mut st = sim2.lock();
        let now = st.now();
        let filter = parse_filter(&q, &caller.seller_id, now)?;
        let page_size = max_results(&q)?;
        let included = Included::parse(&q)?;

        let (ids, before) = match q.one("paginationToken") {
            Some(tok) => {
                let cursor = st
                    .page_tokens
                    .get(tok)
                    .filter(|c| c.expires_at > now && c.seller_id == caller.seller_id)
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::invalid("Invalid or expired paginationToken.")
                    })?;
                if cursor.fingerprint != filter.fingerprint {
                    return Err(ApiError::invalid(
                        "All parameters other than maxResultsPerPage and includedData must have the same values as in the request that returned the paginationToken.",
                    ));
                }
                (cursor.remaining, cursor.before)
            }
            None => {
                let upper = filter.before.unwrap_or(now);
                let mut matching: Vec<&Order> = st
                    .orders
                    .values()
                    .filter(|o| o.seller_id == caller.seller_id)
                    .filter(|o| {
                        let t = match filter.window {
                            Window::Created => o.created_time,
                            Window::LastUpdated => o.last_updated_time,
                        };
                        t >= filter.after && t <= upper
                    })
                    .filter(|o| {
                        filter.statuses.is_empty()
                            || filter.statuses.iter().any(|s| s == o.status.as_2026())
                    })
                    .filter(|o| {
                        filter.marketplaces.is_empty()
                            || filter.marketplaces.contains(&o.marketplace_id)
                    })
                    .filter(|o| {
                        filter.fulfilled_by.is_empty()
                            || filter
                                .fulfilled_by
                                .iter()
                                .any(|f| f == o.fulfilled_by.as_2026())
                    })
                    .collect();
                matching.sort_by(|a, b| {
                    let (ta, tb) = match filter.window {
                        Window::Created => (a.created_time, b.created_time),
                        Window::LastUpdated => (a.last_updated_time, b.last_updated_time),
                    };
                    ta.cmp(&tb).then_with(|| a.order_id.cmp(&b.order_id))
                });
                (
                    matching.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>(),
                    upper,
                )
            }
        };

        let (page, rest) = ids.split_at(page_size.min(ids.len()));
        let orders: Vec<Value> = page
            .iter()
            .filter_map(|id| st.orders.get(id))
            .map(|o| render_order(o, &included))
            .collect();
        let mut body = json!({ "orders": orders });
        if !rest.is_empty() {
            let token = st.random_token(48);
            st.page_tokens.insert(
                token.clone(),
                PageCursor {
                    seller_id: caller.seller_id.clone(),
                    fingerprint: filter.fingerprint.clone(),
                    remaining: rest.to_vec(),
                    expires_at: now + Duration::hours(24),
                    before,
                },
            );
            body["pagination"] = json!({ "nextToken": token });
        }
        let key = match filter.window {
            Window::Created => "createdBefore",
            Window::LastUpdated => "lastUpdatedBefore",
        };
        body[key] = json!(fmt_time(before));
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `GET /orders/2026-01-01/orders/{orderId}`
pub(crate) async fn get_order(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    call(&sim, Op::GetOrder, &headers, |sim2, caller| async move {
        let q = Query::parse(raw.as_deref());
        let included = Included::parse(&q)?;
        if !is_order_id(&order_id) {
            return Err(ApiError::invalid(format!(
                "Invalid orderId '{order_id}'. The orderId must be in 3-7-7 format."
            )));
        }
        let st = sim2.lock();
        let order = st
            .orders
            .get(&order_id)
            .filter(|o| o.seller_id == caller.seller_id)
            .ok_or_else(|| ApiError::not_found(format!("Order {order_id} was not found.")))?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"order": render_order(order, &included)}),
        ))
    })
    .await
}
