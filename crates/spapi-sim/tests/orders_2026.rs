//! Behaviour of Orders API v2026-01-01 (searchOrders, getOrder) and the order control API.

mod common;

use std::collections::HashSet;

use common::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use spapi_sim::{
    ItemSpec, MarketplaceMix, OrderSpec, OrderStatus, PaymentMethod, SimConfig, StatusChange,
};

#[tokio::test]
async fn pagination_over_250_orders_returns_each_exactly_once() {
    let sim = start(fast_config()).await;
    let created = sim
        .sim()
        .generate_orders(250, 99, MarketplaceMix::default());
    assert_eq!(created.len(), 250);
    let tok = token(&sim).await;
    let after = ago(7 * 24 * 3600);
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!(
            "/orders/2026-01-01/orders?createdAfter={after}&maxResultsPerPage=40&includedData=FULFILLMENT"
        );
        if let Some(t) = &next {
            path.push_str(&format!("&paginationToken={t}"));
        }
        let (status, headers, body) = get(&sim, &tok, &path).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("x-amzn-RequestId"));
        assert_eq!(headers["x-amzn-RateLimit-Limit"], "0.0056");
        assert!(body["createdBefore"].is_string());
        for o in body["orders"].as_array().unwrap() {
            seen.push(o["orderId"].as_str().unwrap().to_string());
        }
        pages += 1;
        match body["pagination"]["nextToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => break,
        }
        // Orders changing between pages must not disturb the pagination.
        if pages == 2 {
            sim.sim().generate_orders(5, 7, MarketplaceMix::default());
        }
    }
    assert_eq!(pages, 7);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 250);
    assert_eq!(unique.len(), 250);
    let expected: HashSet<String> = created.iter().map(|o| o.order_id.clone()).collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<HashSet<_>>(),
        expected
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pagination_token_requires_the_same_parameters() {
    let sim = start(fast_config()).await;
    sim.sim().generate_orders(10, 1, MarketplaceMix::default());
    let tok = token(&sim).await;
    let after = ago(7 * 24 * 3600);
    let (_, _, body) = get(
        &sim,
        &tok,
        &format!("/orders/2026-01-01/orders?createdAfter={after}&maxResultsPerPage=3"),
    )
    .await;
    let next = body["pagination"]["nextToken"]
        .as_str()
        .unwrap()
        .to_string();
    // Changed filter → 400.
    let (status, _, err) = get(
        &sim,
        &tok,
        &format!(
            "/orders/2026-01-01/orders?createdAfter={}&paginationToken={next}",
            ago(3600)
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["errors"][0]["code"], "InvalidInput");
    // maxResultsPerPage and includedData may change.
    let (status, _, body) = get(&sim, &tok, &format!("/orders/2026-01-01/orders?createdAfter={after}&maxResultsPerPage=5&includedData=BUYER&paginationToken={next}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"].as_array().unwrap().len(), 5);
    // Unknown token → 400.
    let (status, _, _) = get(
        &sim,
        &tok,
        &format!("/orders/2026-01-01/orders?createdAfter={after}&paginationToken=nope"),
    )
    .await;
    assert_eq!(status, 400);
    // Tokens expire after 24 h.
    sim.sim()
        .advance_clock(std::time::Duration::from_secs(24 * 3600 + 1));
    let tok = token(&sim).await;
    let (status, _, _) = get(
        &sim,
        &tok,
        &format!("/orders/2026-01-01/orders?createdAfter={after}&paginationToken={next}"),
    )
    .await;
    assert_eq!(status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn parameter_rules_give_invalid_input() {
    let sim = start(fast_config()).await;
    let tok = token(&sim).await;
    let a = ago(3600);
    let cases = [
        "/orders/2026-01-01/orders".to_string(),
        format!("/orders/2026-01-01/orders?createdAfter={a}&lastUpdatedAfter={a}"),
        format!(
            "/orders/2026-01-01/orders?createdAfter={a}&lastUpdatedBefore={}",
            ago(600)
        ),
        format!(
            "/orders/2026-01-01/orders?lastUpdatedAfter={a}&createdBefore={}",
            ago(600)
        ),
        format!(
            "/orders/2026-01-01/orders?createdAfter={a}&createdBefore={}",
            ago(60)
        ),
        format!(
            "/orders/2026-01-01/orders?createdAfter={a}&createdBefore={}",
            ago(7200)
        ),
        format!("/orders/2026-01-01/orders?createdAfter={a}&maxResultsPerPage=0"),
        format!("/orders/2026-01-01/orders?createdAfter={a}&maxResultsPerPage=101"),
        format!("/orders/2026-01-01/orders?createdAfter={a}&fulfillmentStatuses=SHIPPING"),
        format!("/orders/2026-01-01/orders?createdAfter={a}&fulfilledBy=SELLER"),
        format!("/orders/2026-01-01/orders?createdAfter={a}&includedData=EVERYTHING"),
        "/orders/2026-01-01/orders?createdAfter=TEST_CASE_400".to_string(),
    ];
    for path in &cases {
        let (status, headers, body) = get(&sim, &tok, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "InvalidInput", "{path}");
        assert!(headers.contains_key("x-amzn-RateLimit-Limit"));
    }
    // Valid: *Before at least two minutes ago.
    let (status, _, body) = get(
        &sim,
        &tok,
        &format!(
            "/orders/2026-01-01/orders?createdAfter={a}&createdBefore={}",
            ago(180)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = get(&sim, &tok, &format!("/orders/2026-01-01/orders?lastUpdatedAfter={a}&lastUpdatedBefore={}&fulfillmentStatuses=PENDING,UNSHIPPED&marketplaceIds=A1VC38T7YXB528&fulfilledBy=MERCHANT", ago(180))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["lastUpdatedBefore"].is_string());
    assert!(body.get("createdBefore").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn pending_orders_carry_no_pii_and_no_prices() {
    let sim = start(fast_config()).await;
    let order = sim.sim().create_order(OrderSpec::default()).unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    let tok = token(&sim).await;
    let path = format!(
        "/orders/2026-01-01/orders/{}?includedData=BUYER,RECIPIENT,PROCEEDS,PAYMENT,FULFILLMENT,PACKAGES,CANCELLATION",
        order.order_id
    );
    let (status, _, body) = get(&sim, &tok, &path).await;
    assert_eq!(status, 200, "{body}");
    let o = &body["order"];
    assert_eq!(o["fulfillment"]["fulfillmentStatus"], "PENDING");
    for key in ["buyer", "recipient", "proceeds", "payment"] {
        assert!(
            o.get(key).is_none(),
            "{key} present on a pending order: {o}"
        );
    }
    for item in o["orderItems"].as_array().unwrap() {
        assert!(item["product"].get("price").is_none());
        assert!(item.get("proceeds").is_none());
        assert!(item["product"]["sellerSku"].is_string());
    }
    let text = body.to_string();
    assert!(!text.contains(&order.buyer.name));
    assert!(!text.contains(&order.address.postal_code));
    assert!(!text.contains(&order.buyer.email));

    // Payment → UNSHIPPED: PII and prices appear, lastUpdatedTime moves.
    sim.sim().advance_clock(std::time::Duration::from_secs(60));
    let updated = sim
        .sim()
        .set_order_status(&order.order_id, StatusChange::Unshipped)
        .unwrap();
    assert!(updated.last_updated_time > order.last_updated_time);
    let (_, _, body) = get(&sim, &tok, &path).await;
    let o = &body["order"];
    assert_eq!(o["fulfillment"]["fulfillmentStatus"], "UNSHIPPED");
    assert_eq!(o["buyer"]["buyerName"], json!(order.buyer.name));
    assert_eq!(
        o["recipient"]["deliveryAddress"]["postalCode"],
        json!(order.address.postal_code)
    );
    assert_eq!(
        o["recipient"]["deliveryAddress"]["stateOrRegion"],
        json!(order.address.state_or_region)
    );
    assert!(o["proceeds"]["grandTotal"]["amount"].is_string());
    assert_eq!(o["proceeds"]["grandTotal"]["currencyCode"], "JPY");
    assert!(o["payment"]["paymentExecutions"][0]["paymentMethod"].is_string());
    assert!(o["orderItems"][0]["product"]["price"]["unitPrice"]["amount"].is_string());
    assert_ne!(o["lastUpdatedTime"], o["createdTime"]);
    sim.shutdown().await;
}

/// Shipping charges and COD fees are their own proceeds categories, on the order and on the
/// item that carries them, so that item's `proceedsTotal` is more than its price × quantity.
/// Generated orders have them too (some, by seed).
#[tokio::test]
async fn proceeds_break_down_item_price_shipping_and_cod_fee() {
    let sim = start(fast_config()).await;
    let order = sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            payment_method: Some(PaymentMethod::CashOnDelivery),
            shipping_price: Some(Decimal::from(500)),
            items: vec![
                ItemSpec {
                    quantity: Some(2),
                    ..Default::default()
                },
                ItemSpec::default(),
            ],
            ..Default::default()
        })
        .unwrap();
    assert!(!order.cod_fee.is_zero(), "a JP COD order has a COD fee");
    let tok = token(&sim).await;
    let path = format!(
        "/orders/2026-01-01/orders/{}?includedData=PROCEEDS",
        order.order_id
    );
    let (status, _, body) = get(&sim, &tok, &path).await;
    assert_eq!(status, 200, "{body}");
    let o = &body["order"];
    let amount = |v: &Value| v["amount"].as_str().unwrap().parse::<Decimal>().unwrap();
    let category = |p: &Value, kind: &str| {
        p["breakdowns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == kind)
            .map(|b| amount(&b["subtotal"]))
    };
    let order_proceeds = &o["proceeds"];
    assert_eq!(category(order_proceeds, "ITEM"), Some(order.items_total()));
    assert_eq!(
        category(order_proceeds, "SHIPPING"),
        Some(order.shipping_price)
    );
    assert_eq!(category(order_proceeds, "COD_FEE"), Some(order.cod_fee));
    assert_eq!(amount(&order_proceeds["grandTotal"]), order.grand_total());
    let items = o["orderItems"].as_array().unwrap();
    for (idx, (item, it)) in items.iter().zip(&order.items).enumerate() {
        let p = &item["proceeds"];
        let line = it.unit_price * Decimal::from(it.quantity_ordered);
        let (shipping, cod_fee) = if idx == 0 {
            (order.shipping_price, order.cod_fee)
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        };
        assert_eq!(category(p, "ITEM"), Some(line));
        assert_eq!(category(p, "SHIPPING").unwrap_or_default(), shipping);
        assert_eq!(category(p, "COD_FEE").unwrap_or_default(), cod_fee);
        assert_eq!(amount(&p["proceedsTotal"]), line + shipping + cod_fee);
    }
    assert_ne!(
        amount(&items[0]["proceeds"]["proceedsTotal"]),
        order.items[0].unit_price * Decimal::from(order.items[0].quantity_ordered)
    );

    let generated = sim.sim().generate_orders(100, 5, MarketplaceMix::default());
    assert!(generated.iter().any(|o| !o.shipping_price.is_zero()));
    assert!(generated.iter().any(|o| o.shipping_price.is_zero()));
    assert!(generated.iter().any(|o| !o.cod_fee.is_zero()));
    for o in &generated {
        assert_eq!(
            o.cod_fee.is_zero(),
            o.payment_method != PaymentMethod::CashOnDelivery || o.currency != "JPY",
            "COD fee only on JP cash-on-delivery orders"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn included_data_gates_datasets() {
    let sim = start(fast_config()).await;
    let order = sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();
    let tok = token(&sim).await;
    let (_, _, body) = get(
        &sim,
        &tok,
        &format!("/orders/2026-01-01/orders/{}", order.order_id),
    )
    .await;
    let o = &body["order"];
    for key in [
        "buyer",
        "recipient",
        "proceeds",
        "payment",
        "fulfillment",
        "packages",
    ] {
        assert!(o.get(key).is_none(), "{key} without includedData");
    }
    assert!(o["salesChannel"]["marketplaceId"].is_string());
    assert!(o["orderItems"][0]["quantityOrdered"].is_number());
    sim.shutdown().await;
}

#[tokio::test]
async fn get_order_errors() {
    let sim = start(fast_config()).await;
    let tok = token(&sim).await;
    let (status, headers, body) =
        get(&sim, &tok, "/orders/2026-01-01/orders/503-0000000-0000000").await;
    assert_eq!(status, 404);
    assert!(headers.contains_key("x-amzn-RateLimit-Limit"));
    assert_eq!(body["errors"][0]["code"], "NotFound");
    let (status, _, body) = get(&sim, &tok, "/orders/2026-01-01/orders/TEST_CASE_400").await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "InvalidInput");
    // Another seller's order is not found.
    let other = sim
        .sim()
        .create_order(OrderSpec {
            seller_id: Some("A2OTHERSELLER".into()),
            ..Default::default()
        })
        .unwrap();
    let (status, _, _) = get(
        &sim,
        &tok,
        &format!("/orders/2026-01-01/orders/{}", other.order_id),
    )
    .await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn filters_by_status_marketplace_and_updates() {
    let sim = start(fast_config()).await;
    let orders = sim.sim().generate_orders(60, 5, MarketplaceMix::default());
    let tok = token(&sim).await;
    let after = ago(7 * 24 * 3600);
    let (_, _, body) = get(&sim, &tok, &format!("/orders/2026-01-01/orders?createdAfter={after}&fulfillmentStatuses=PENDING&marketplaceIds=A39IBJ37TRP1C6&includedData=FULFILLMENT")).await;
    let expected = orders
        .iter()
        .filter(|o| o.status == OrderStatus::Pending && o.marketplace_id == "A39IBJ37TRP1C6")
        .count();
    let got = body["orders"].as_array().unwrap();
    assert_eq!(got.len(), expected);
    assert!(
        got.iter()
            .all(|o| o["fulfillment"]["fulfillmentStatus"] == "PENDING"
                && o["salesChannel"]["marketplaceId"] == "A39IBJ37TRP1C6")
    );

    // lastUpdatedAfter sees a cancellation.
    let victim = orders
        .iter()
        .find(|o| o.status == OrderStatus::Pending)
        .unwrap();
    let mark = sim.sim().now();
    sim.sim()
        .set_order_status(
            &victim.order_id,
            StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: Some("changed mind".into()),
            },
        )
        .unwrap();
    sim.sim().advance_clock(std::time::Duration::from_secs(180));
    let since = (mark - chrono::Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (status, _, body) = get(&sim, &tok, &format!("/orders/2026-01-01/orders?lastUpdatedAfter={since}&includedData=FULFILLMENT,CANCELLATION")).await;
    assert_eq!(status, 200, "{body}");
    let got = body["orders"].as_array().unwrap();
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0]["fulfillment"]["fulfillmentStatus"], "CANCELLED");
    assert_eq!(
        got[0]["orderItems"][0]["cancellation"]["cancellationExecution"]["cancelledBy"],
        "BUYER"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn control_api_creates_and_changes_orders() {
    let sim = start(fast_config()).await;
    let c = client();
    let base = sim.base_url();
    let resp = c
        .post(format!("{base}/_sim/orders"))
        .json(&json!({
            "marketplaceId": "A39IBJ37TRP1C6",
            "paymentMethod": "CreditCard",
            "items": [{"sellerSku": "SKU-0003", "quantity": 2}, {"sellerSku": "SKU-0007"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let order: Value = resp.json().await.unwrap();
    let id = order["orderId"].as_str().unwrap().to_string();
    assert!(spapi_sim::is_order_id(&id));
    assert_eq!(order["currency"], "AUD");
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(order["status"], "PENDING");

    let resp = c
        .post(format!("{base}/_sim/orders/{id}/status"))
        .json(&json!({"status": "UNSHIPPED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .post(format!("{base}/_sim/orders/{id}/status"))
        .json(&json!({"status": "UNSHIPPED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = c
        .post(format!("{base}/_sim/orders/{id}/status"))
        .json(&json!({"status": "BUYER_CANCEL_REQUESTED", "reason": "found cheaper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got: Value = c
        .get(format!("{base}/_sim/orders/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["items"][0]["buyerRequestedCancel"], true);
    let resp = c
        .post(format!("{base}/_sim/orders/generate"))
        .json(&json!({"count": 12, "seed": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ids: Value = resp.json().await.unwrap();
    assert_eq!(ids["orderIds"].as_array().unwrap().len(), 12);
    assert_eq!(sim.sim().orders().len(), 13);
    let resp = c
        .get(format!("{base}/_sim/orders/503-0000000-0000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    c.post(format!("{base}/_sim/reset")).send().await.unwrap();
    assert!(sim.sim().orders().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_orders_are_deterministic_and_realistic() {
    let a = start(SimConfig {
        orders: 30,
        seed: 11,
        ..fast_config()
    })
    .await;
    let b = start(SimConfig {
        orders: 30,
        seed: 11,
        ..fast_config()
    })
    .await;
    let ids = |s: &spapi_sim::RunningSim| {
        s.sim()
            .orders()
            .into_iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    let orders = a.sim().orders();
    assert!(orders.iter().any(|o| o.status == OrderStatus::Pending));
    assert!(orders.iter().any(|o| o.status == OrderStatus::Unshipped));
    let jp: Vec<_> = orders
        .iter()
        .filter(|o| o.marketplace_id == "A1VC38T7YXB528")
        .collect();
    assert!(!jp.is_empty());
    for o in &jp {
        assert_eq!(o.currency, "JPY");
        assert!(o.address.postal_code.len() == 8 && o.address.postal_code.contains('-'));
        assert!(
            o.address
                .state_or_region
                .ends_with(['都', '道', '府', '県']),
            "{}",
            o.address.state_or_region
        );
        assert!(o.grand_total().fract().is_zero());
    }
    assert!(orders.iter().any(|o| o.items.len() > 1));
    a.shutdown().await;
    b.shutdown().await;
}

/// Issue 21 item 4: an order created through the control API with the details a warehouse packs
/// by comes back in Amazon's v2026 fields; gift status waits for payment, the gift message and
/// the business buyer's data are PII (not while Pending).
#[tokio::test]
async fn order_details_come_back_in_the_2026_fields() {
    let sim = start(fast_config()).await;
    let c = client();
    let base = sim.base_url();
    let resp = c
        .post(format!("{base}/_sim/orders"))
        .json(&json!({
            "prime": true,
            "premium": true,
            "business": {"companyName": "株式会社サンプル", "purchaseOrderNumber": "PO-9"},
            "scheduledDelivery": {"start": "2030-01-02T00:00:00Z", "end": "2030-01-02T03:00:00Z"},
            "deliveryPreference": {"dropOffLocation": "RECEPTION"},
            "latestShipDate": "2030-01-01T09:00:00Z",
            "items": [
                {"sellerSku": "SKU-0001", "giftMessage": "おめでとう", "giftWrapLevel": "PREMIUM"},
                {"sellerSku": "SKU-0002"}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = token(&sim).await;
    let path =
        format!("/orders/2026-01-01/orders/{id}?includedData=BUYER,RECIPIENT,FULFILLMENT,PROCEEDS");

    let (status, _, body) = get(&sim, &tok, &path).await;
    assert_eq!(status, 200, "{body}");
    let o = &body["order"];
    assert_eq!(
        o["programs"],
        json!(["PRIME", "PREMIUM", "AMAZON_BUSINESS"])
    );
    assert_eq!(o["fulfillment"]["fulfillmentServiceLevel"], "SCHEDULED");
    assert_eq!(
        o["fulfillment"]["shipByWindow"]["latestDateTime"],
        "2030-01-01T09:00:00Z"
    );
    let window = json!({"earliestDateTime": "2030-01-02T00:00:00Z", "latestDateTime": "2030-01-02T03:00:00Z"});
    assert_eq!(
        o["orderItems"][0]["fulfillment"]["shipping"]["scheduledDeliveryWindow"],
        window
    );
    // Pending: no gift status, no buyer.
    assert!(o["orderItems"][0]["fulfillment"]["packing"].is_null());
    assert!(o["buyer"].is_null() && o["recipient"].is_null());

    sim.sim()
        .set_order_status(&id, spapi_sim::StatusChange::Unshipped)
        .unwrap();
    let (_, _, body) = get(&sim, &tok, &path).await;
    let o = &body["order"];
    assert_eq!(o["buyer"]["buyerCompanyName"], "株式会社サンプル");
    assert_eq!(o["buyer"]["buyerPurchaseOrderNumber"], "PO-9");
    assert_eq!(
        o["recipient"]["deliveryPreference"],
        json!({"dropOffLocation": "RECEPTION"})
    );
    assert_eq!(
        o["orderItems"][0]["fulfillment"]["packing"],
        json!({"giftOption": {"giftMessage": "おめでとう", "giftWrapLevel": "PREMIUM"}})
    );
    assert!(o["orderItems"][1]["fulfillment"]["packing"].is_null());
    assert_eq!(
        o["orderItems"][1]["fulfillment"]["shipping"]["scheduledDeliveryWindow"],
        window
    );

    // A window that ends before it starts is refused.
    let resp = c
        .post(format!("{base}/_sim/orders"))
        .json(&json!({"scheduledDelivery": {"start": "2030-01-02T03:00:00Z", "end": "2030-01-02T00:00:00Z"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    sim.shutdown().await;
}
