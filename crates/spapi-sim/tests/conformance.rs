//! Conformance: every response body the simulator produces validates against Amazon's official
//! models (JSON Schema validation with the `jsonschema` crate), the models' sandbox examples
//! parse and are answered consistently, and XML reports validate against the project's XSD.

mod common;

use common::*;
use serde_json::{Value, json};
use spapi_sim::{
    DEFAULT_SELLER_ID, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, OrderSpec, OrderStatus,
    PaymentMethod, StatusChange,
};

fn load(rel: &str) -> Value {
    let path = format!("{MODELS}/{rel}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

/// A validator for `#/definitions/{def}` of a Swagger 2.0 model (draft 4, formats checked).
struct Model {
    doc: Value,
}

impl Model {
    fn new(rel: &str) -> Model {
        Model { doc: load(rel) }
    }

    fn validator_for_schema(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "allOf": [schema],
            "definitions": self.doc["definitions"],
        });
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .expect("model schema compiles")
    }

    fn check_def(&self, def: &str, instance: &Value) {
        assert!(
            self.doc["definitions"].get(def).is_some(),
            "no definition {def}"
        );
        self.check_schema(
            &json!({"$ref": format!("#/definitions/{def}")}),
            instance,
            def,
        );
    }

    fn check_schema(&self, schema: &Value, instance: &Value, what: &str) {
        let v = self.validator_for_schema(schema);
        let errors: Vec<String> = v
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not validate:\n{}\n{}",
            errors.join("\n"),
            serde_json::to_string_pretty(instance).unwrap()
        );
    }

    /// The response schema of an operation for a status code.
    fn response_schema(&self, op_id: &str, code: &str) -> Option<Value> {
        for (_, methods) in self.doc["paths"].as_object().unwrap() {
            for (_, op) in methods.as_object().unwrap() {
                if op.get("operationId").and_then(Value::as_str) == Some(op_id) {
                    return op["responses"]
                        .get(code)
                        .and_then(|r| r.get("schema"))
                        .cloned();
                }
            }
        }
        None
    }

    fn check_response(&self, op_id: &str, status: u16, body: &Value) {
        let schema = self
            .response_schema(op_id, &status.to_string())
            .unwrap_or_else(|| panic!("{op_id} has no schema for {status}"));
        self.check_schema(&schema, body, &format!("{op_id} {status}"));
    }
}

fn json_schema_validator(rel: &str) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&load(rel))
        .expect("schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}:\n{}\n{instance}",
        errors.join("\n")
    );
}

/// Orders in every state the simulator produces.
fn seed_orders(sim: &spapi_sim::RunningSim) -> Vec<spapi_sim::Order> {
    let s = sim.sim();
    let mut out = Vec::new();
    for m in [MARKETPLACE_JP, MARKETPLACE_AU, MARKETPLACE_SG] {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Unshipped,
            OrderStatus::Shipped,
            OrderStatus::Cancelled,
        ] {
            out.push(
                s.create_order(OrderSpec {
                    marketplace_id: Some(m.into()),
                    status: Some(status),
                    seller_order_id: Some("SO-1".into()),
                    ..Default::default()
                })
                .unwrap(),
            );
        }
    }
    out.push(
        s.create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            payment_method: Some(PaymentMethod::CashOnDelivery),
            shipping_price: Some(rust_decimal::Decimal::from(500)),
            ..Default::default()
        })
        .unwrap(),
    );
    out.push(
        s.create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            payment_method: Some(PaymentMethod::ConvenienceStore),
            ..Default::default()
        })
        .unwrap(),
    );
    // The details a warehouse packs by: Prime, premium, business, time slot, gift, preference.
    let now = chrono::Utc::now();
    for status in [OrderStatus::Pending, OrderStatus::Unshipped] {
        out.push(
            s.create_order(OrderSpec {
                status: Some(status),
                prime: Some(true),
                premium: Some(true),
                business: Some(spapi_sim::model::BusinessBuyer {
                    company_name: Some("株式会社サンプル".into()),
                    purchase_order_number: Some("PO-1".into()),
                }),
                scheduled_delivery: Some(spapi_sim::model::DeliveryWindow {
                    start: now + chrono::Duration::days(2),
                    end: now + chrono::Duration::days(2) + chrono::Duration::hours(2),
                }),
                delivery_preference: Some(json!({
                    "dropOffLocation": "FRONT_DOOR",
                    "addressInstruction": "Ring twice",
                    "deliveryTime": {"businessHours": [{"dayOfWeek": "MON", "timeWindows": [
                        {"startTime": {"hour": 9, "minute": 0}, "endTime": {"hour": 12, "minute": 0}}]}]},
                    "deliveryCapabilities": ["HAS_ACCESS_POINT"]
                })),
                payment_method: Some(PaymentMethod::CashOnDelivery),
                items: vec![spapi_sim::ItemSpec {
                    gift_message: Some("Happy birthday".into()),
                    gift_wrap_level: Some("PREMIUM".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap(),
        );
    }
    let req = s
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();
    s.set_order_status(
        &req.order_id,
        StatusChange::BuyerCancelRequested {
            reason: Some("No longer needed".into()),
        },
    )
    .unwrap();
    out.push(req);
    out.extend(s.generate_orders(30, 17, Default::default()));
    out
}

#[tokio::test]
async fn orders_2026_responses_validate_against_the_model() {
    let model = Model::new("models/orders-api-model/orders_2026-01-01.json");
    let sim = start(fast_config()).await;
    let orders = seed_orders(&sim);
    let t = token(&sim).await;
    let all = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS";
    let after = ago(8 * 24 * 3600);
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let mut path = format!(
            "/orders/2026-01-01/orders?createdAfter={after}&includedData={all}&maxResultsPerPage=17"
        );
        if let Some(n) = &next {
            path.push_str(&format!("&paginationToken={n}"));
        }
        let (status, _, body) = get(&sim, &t, &path).await;
        assert_eq!(status, 200);
        model.check_def("SearchOrdersResponse", &body);
        model.check_response("searchOrders", status, &body);
        pages += 1;
        match body["pagination"]["nextToken"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert!(pages >= 3);
    let (status, _, body) = get(
        &sim,
        &t,
        &format!(
            "/orders/2026-01-01/orders?lastUpdatedAfter={after}&lastUpdatedBefore={}",
            ago(150)
        ),
    )
    .await;
    assert_eq!(status, 200);
    model.check_def("SearchOrdersResponse", &body);
    for o in &orders {
        for inc in [all, "", "FULFILLMENT"] {
            let (status, _, body) = get(
                &sim,
                &t,
                &format!(
                    "/orders/2026-01-01/orders/{}?includedData={inc}",
                    o.order_id
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            model.check_response("getOrder", status, &body);
        }
    }
    // Error bodies.
    for (path, code) in [
        ("/orders/2026-01-01/orders".to_string(), 400u16),
        (
            "/orders/2026-01-01/orders/503-0000000-0000000".to_string(),
            404,
        ),
        ("/orders/2026-01-01/orders/TEST_CASE_400".to_string(), 400),
    ] {
        let (status, _, body) = get(&sim, &t, &path).await;
        assert_eq!(status, code);
        model.check_def("ErrorList", &body);
        model.check_response("searchOrders", status, &body);
    }
    let (status, _, body) = get(&sim, "nope", "/orders/2026-01-01/orders").await;
    assert_eq!(status, 403);
    model.check_response("searchOrders", status, &body);
    sim.sim()
        .inject_fault(
            "getOrder",
            spapi_sim::Fault::Status { status: 503 },
            spapi_sim::FaultTrigger::Count(1),
        )
        .unwrap();
    let (status, _, body) = get(&sim, &t, "/orders/2026-01-01/orders/503-0000000-0000000").await;
    assert_eq!(status, 503);
    model.check_response("getOrder", status, &body);
    sim.shutdown().await;
}

#[tokio::test]
async fn orders_v0_responses_validate_against_the_model() {
    let model = Model::new("models/orders-api-model/ordersV0.json");
    let sim = start(fast_config()).await;
    let orders = seed_orders(&sim);
    let t = token(&sim).await;
    let after = ago(8 * 24 * 3600);
    let mut next: Option<String> = None;
    let mut seen = 0;
    loop {
        let path = match &next {
            Some(n) => format!(
                "/orders/v0/orders?MarketplaceIds={MARKETPLACE_JP},{MARKETPLACE_AU},{MARKETPLACE_SG}&NextToken={n}"
            ),
            None => format!(
                "/orders/v0/orders?MarketplaceIds={MARKETPLACE_JP},{MARKETPLACE_AU},{MARKETPLACE_SG}&CreatedAfter={after}&MaxResultsPerPage=20"
            ),
        };
        let (status, headers, body) = get(&sim, &t, &path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-amzn-RateLimit-Limit"], "0.0167");
        model.check_response("getOrders", status, &body);
        seen += body["payload"]["Orders"].as_array().unwrap().len();
        match body["payload"]["NextToken"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, orders.len());
    for o in &orders {
        let (status, _, body) = get(&sim, &t, &format!("/orders/v0/orders/{}", o.order_id)).await;
        assert_eq!(status, 200);
        model.check_response("getOrder", status, &body);
        let (status, _, body) = get(
            &sim,
            &t,
            &format!("/orders/v0/orders/{}/orderItems", o.order_id),
        )
        .await;
        assert_eq!(status, 200);
        model.check_response("getOrderItems", status, &body);
        if o.status == OrderStatus::Pending {
            assert!(body["payload"]["OrderItems"][0].get("ItemPrice").is_none());
        }
    }
    let (status, _, body) = get(&sim, &t, "/orders/v0/orders?CreatedAfter=TEST_CASE_400").await;
    assert_eq!(status, 400);
    model.check_response("getOrders", status, &body);
    let (status, _, body) = get(&sim, &t, "/orders/v0/orders/TEST_CASE_400").await;
    assert_eq!(status, 400);
    model.check_response("getOrder", status, &body);
    let (status, _, body) = get(&sim, &t, "/orders/v0/orders/503-0000000-0000000/orderItems").await;
    assert_eq!(status, 404);
    model.check_response("getOrderItems", status, &body);

    // confirmShipment: the request validates against the model, the sim ships the order.
    let o = orders
        .iter()
        .find(|o| o.status == OrderStatus::Unshipped && o.marketplace_id == MARKETPLACE_JP)
        .unwrap();
    let req = json!({
        "marketplaceId": MARKETPLACE_JP,
        "codCollectionMethod": "DirectPayment",
        "packageDetail": {
            "packageReferenceId": "1",
            "carrierCode": "YamatoTransport",
            "shippingMethod": "宅急便",
            "trackingNumber": "123456789012",
            "shipDate": (chrono::Utc::now()).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "orderItems": o.items.iter().map(|i| json!({"orderItemId": i.order_item_id, "quantity": i.quantity_ordered})).collect::<Vec<_>>(),
        }
    });
    model.check_def("ConfirmShipmentRequest", &req);
    let (status, headers, body) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        &format!("/orders/v0/orders/{}/shipmentConfirmation", o.order_id),
        &req,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(headers["x-amzn-RateLimit-Limit"], "2");
    let shipped = sim.sim().order(&o.order_id).unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(shipped.packages[0].tracking_number, "123456789012");
    // Same packageReferenceId again edits the package.
    let mut edit = req.clone();
    edit["packageDetail"]["trackingNumber"] = json!("210987654321");
    let (status, _, _) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        &format!("/orders/v0/orders/{}/shipmentConfirmation", o.order_id),
        &edit,
    )
    .await;
    assert_eq!(status, 204);
    let edited = sim.sim().order(&o.order_id).unwrap();
    assert_eq!(edited.packages.len(), 1);
    assert_eq!(edited.packages[0].tracking_number, "210987654321");
    // Bad requests.
    let pending = orders
        .iter()
        .find(|o| o.status == OrderStatus::Pending && o.marketplace_id == MARKETPLACE_JP)
        .unwrap();
    let mut bad_tracking = req.clone();
    bad_tracking["packageDetail"]["trackingNumber"] = json!("12");
    let mut other_no_name = req.clone();
    other_no_name["packageDetail"]["carrierCode"] = json!("Other");
    let mut no_carrier = req.clone();
    no_carrier["packageDetail"]
        .as_object_mut()
        .unwrap()
        .remove("carrierCode");
    for (order_id, body) in [
        (o.order_id.as_str(), bad_tracking),
        (o.order_id.as_str(), other_no_name),
        (o.order_id.as_str(), no_carrier),
        (pending.order_id.as_str(), req.clone()),
    ] {
        let (status, _, err) = send_json(
            &sim,
            reqwest::Method::POST,
            &t,
            &format!("/orders/v0/orders/{order_id}/shipmentConfirmation"),
            &body,
        )
        .await;
        assert_eq!(status, 400, "{err}");
        model.check_response("confirmShipment", status, &err);
    }
    let (status, _, err) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/orders/v0/orders/503-0000000-0000000/shipmentConfirmation",
        &req,
    )
    .await;
    assert_eq!(status, 404);
    model.check_response("confirmShipment", status, &err);

    // With a restricted data token the PII appears.
    let unshipped = orders
        .iter()
        .find(|o| o.status == OrderStatus::Unshipped)
        .unwrap();
    let (_, _, plain) = get(
        &sim,
        &t,
        &format!("/orders/v0/orders/{}", unshipped.order_id),
    )
    .await;
    assert!(plain["payload"]["ShippingAddress"].get("Name").is_none());
    assert!(plain["payload"]["ShippingAddress"]["PostalCode"].is_string());
    let tokens = Model::new("models/tokens-api-model/tokens_2021-03-01.json");
    let rdt_req = json!({"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo", "shippingAddress"]}]});
    tokens.check_def("CreateRestrictedDataTokenRequest", &rdt_req);
    let (status, _, rdt) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/tokens/2021-03-01/restrictedDataToken",
        &rdt_req,
    )
    .await;
    assert_eq!(status, 200);
    tokens.check_def("CreateRestrictedDataTokenResponse", &rdt);
    let (_, _, full) = get(
        &sim,
        rdt["restrictedDataToken"].as_str().unwrap(),
        &format!("/orders/v0/orders/{}", unshipped.order_id),
    )
    .await;
    assert_eq!(
        full["payload"]["ShippingAddress"]["Name"],
        json!(unshipped.address.name)
    );
    assert_eq!(
        full["payload"]["BuyerInfo"]["BuyerEmail"],
        json!(unshipped.buyer.email)
    );
    model.check_response("getOrder", 200, &full);
    sim.shutdown().await;
}

#[tokio::test]
async fn feeds_responses_validate_against_the_model() {
    let model = Model::new("models/feeds-api-model/feeds_2021-06-30.json");
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let o = sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();

    let doc_req = json!({"contentType": "text/xml; charset=UTF-8"});
    model.check_def("CreateFeedDocumentSpecification", &doc_req);
    let (status, _, doc) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/documents",
        &doc_req,
    )
    .await;
    assert_eq!(status, 201);
    model.check_response("createFeedDocument", status, &doc);
    let xml = fulfillment_feed(
        DEFAULT_SELLER_ID,
        &[(&o.order_id, "YamatoTransport", None, "123456789012")],
    );
    xmllint(
        &format!("{MODELS}/xsd/OrderFulfillment.xsd"),
        xml.as_bytes(),
    )
    .unwrap();
    let put = client()
        .put(doc["url"].as_str().unwrap())
        .header("content-type", "text/xml; charset=UTF-8")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let feed_req = json!({"feedType": "POST_ORDER_FULFILLMENT_DATA", "marketplaceIds": [MARKETPLACE_JP], "inputFeedDocumentId": doc["feedDocumentId"], "feedOptions": {}});
    model.check_def("CreateFeedSpecification", &feed_req);
    let (status, _, created) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/feeds",
        &feed_req,
    )
    .await;
    assert_eq!(status, 202);
    model.check_response("createFeed", status, &created);
    let feed_id = created["feedId"].as_str().unwrap();
    let (status, _, queued) = get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{feed_id}")).await;
    model.check_response("getFeed", status, &queued);
    let feed = wait_feed(&sim, &t, feed_id).await;
    model.check_def("Feed", &feed);
    let (status, _, list) = get(&sim, &t, "/feeds/2021-06-30/feeds?feedTypes=POST_ORDER_FULFILLMENT_DATA&pageSize=10&processingStatuses=DONE,CANCELLED").await;
    assert_eq!(status, 200);
    model.check_response("getFeeds", status, &list);
    assert_eq!(list["feeds"].as_array().unwrap().len(), 1);
    let (status, _, fd) = get(
        &sim,
        &t,
        &format!(
            "/feeds/2021-06-30/documents/{}",
            feed["resultFeedDocumentId"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200);
    model.check_response("getFeedDocument", status, &fd);
    let plain = result_of(&sim, &t, &feed).await;
    xmllint(&format!("{MODELS}/xsd/ProcessingReport.xsd"), &plain).unwrap();

    for (op, status, body) in [
        ("getFeed", get(&sim, &t, "/feeds/2021-06-30/feeds/badFeedId1").await),
        ("getFeed", get(&sim, &t, "/feeds/2021-06-30/feeds/123").await),
        ("getFeeds", get(&sim, &t, "/feeds/2021-06-30/feeds?feedTypes=POST_PRODUCT_DATA&processingStatuses=BAD_VALUE,DONE").await),
        ("getFeedDocument", get(&sim, &t, "/feeds/2021-06-30/documents/badDocumentId1").await),
        ("cancelFeed", send_json(&sim, reqwest::Method::DELETE, &t, "/feeds/2021-06-30/feeds/BADID1", &json!({})).await),
        ("cancelFeed", send_json(&sim, reqwest::Method::DELETE, &t, &format!("/feeds/2021-06-30/feeds/{feed_id}"), &json!({})).await),
        ("createFeedDocument", send_json(&sim, reqwest::Method::POST, &t, "/feeds/2021-06-30/documents", &json!({})).await),
        ("createFeed", send_json(&sim, reqwest::Method::POST, &t, "/feeds/2021-06-30/feeds", &json!({"marketplaceIds": ["ATVPDKIKX0DER"], "inputFeedDocumentId": "badDocumentId"})).await),
    ]
    .map(|(op, (s, _, b))| (op, s, b))
    {
        assert!(status == 400 || status == 404, "{op}: {status} {body}");
        model.check_response(op, status, &body);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn listings_items_responses_validate_against_the_model() {
    let model = Model::new("models/listings-items-api-model/listingsItems_2021-08-01.json");
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let all = "summaries,attributes,issues,offers,fulfillmentAvailability,procurement,relationships,productTypes";
    let (status, headers, item) = get(&sim, &t, &format!("/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/SKU-0001?marketplaceIds={MARKETPLACE_JP}&includedData={all}")).await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(headers["x-amzn-RateLimit-Limit"], "5");
    model.check_response("getListingsItem", status, &item);
    assert!(item["fulfillmentAvailability"][0]["quantity"].is_number());
    let (status, _, item) = get(&sim, &t, &format!("/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/SKU-0002?marketplaceIds={MARKETPLACE_AU}")).await;
    assert_eq!(status, 200);
    assert!(item["summaries"].is_array());
    model.check_response("getListingsItem", status, &item);

    sim.sim().put_listing("SKU-0005", 3, Some(2));
    let patch = json!({"productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 11}]}]});
    model.check_def("ListingsItemPatchRequest", &patch);
    let path = format!(
        "/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/SKU-0005?marketplaceIds={MARKETPLACE_JP}&includedData=identifiers,issues"
    );
    let (status, _, resp) = send_json(&sim, reqwest::Method::PATCH, &t, &path, &patch).await;
    assert_eq!(status, 200);
    model.check_response("patchListingsItem", status, &resp);
    assert_eq!(resp["status"], "ACCEPTED");
    let l = sim.sim().listing("SKU-0005").unwrap();
    assert_eq!(
        (l.quantity, l.lead_time_to_ship_max_days),
        (Some(11), Some(2))
    );
    // Preview does not apply; invalid values are INVALID with issues.
    let bad = json!({"productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1, "lead_time_to_ship_max_days": 45}]}]});
    let (status, _, resp) = send_json(
        &sim,
        reqwest::Method::PATCH,
        &t,
        &format!("{path}&issueLocale=ja_JP"),
        &bad,
    )
    .await;
    assert_eq!(status, 200);
    model.check_response("patchListingsItem", status, &resp);
    assert_eq!(resp["status"], "INVALID");
    assert!(
        resp["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0〜30")
    );
    let (_, _, resp) = send_json(
        &sim,
        reqwest::Method::PATCH,
        &t,
        &format!("{path}&mode=VALIDATION_PREVIEW"),
        &patch,
    )
    .await;
    assert_eq!(resp["status"], "VALID");
    let (_, _, resp) = send_json(
        &sim,
        reqwest::Method::PATCH,
        &t,
        &format!(
            "/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/NOPE?marketplaceIds={MARKETPLACE_JP}"
        ),
        &patch,
    )
    .await;
    assert_eq!(resp["status"], "INVALID");
    model.check_response("patchListingsItem", 200, &resp);
    for (op, (status, _, body)) in [
        ("getListingsItem", get(&sim, &t, &format!("/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/NOPE?marketplaceIds={MARKETPLACE_JP}")).await),
        ("getListingsItem", get(&sim, &t, &format!("/listings/2021-08-01/items/{DEFAULT_SELLER_ID}/SKU-0001")).await),
        ("getListingsItem", get(&sim, &t, &format!("/listings/2021-08-01/items/A2SOMEONEELSE/SKU-0001?marketplaceIds={MARKETPLACE_JP}")).await),
        ("patchListingsItem", send_json(&sim, reqwest::Method::PATCH, &t, &path, &json!({"patches": []})).await),
    ] {
        assert!(matches!(status, 400 | 403 | 404), "{op} {status}");
        model.check_response(op, status, &body);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn listings_feed_documents_and_reports_follow_the_json_schemas() {
    let feed_schema = json_schema_validator("schemas/feeds/listings-feed-schema-v2.json");
    let report_schema =
        json_schema_validator("schemas/feeds/listings-feed-processing-report-schema-v2.json");
    // The official examples are valid.
    let example = load("schemas/feeds/listings-feed-schema-v2.example.json");
    assert_valid(&feed_schema, &example, "feed example");
    assert_valid(
        &report_schema,
        &load("schemas/feeds/listings-feed-processing-report-schema-v2.example.json"),
        "report example",
    );

    // The official example feed, submitted by its seller, is answered consistently.
    let sim = start(fast_config()).await;
    let seller = example["header"]["sellerId"].as_str().unwrap();
    sim.sim()
        .register_seller("example-client", "example-secret", "Atzr|example", seller);
    for sku in ["My-SKU-A", "My-SKU-B", "My-SKU-D", "My-SKU-E"] {
        sim.sim().put_listing_spec(
            sku,
            spapi_sim::ListingSpec {
                seller_id: Some(seller.into()),
                quantity: Some(1),
                lead_time_to_ship_max_days: Some(5),
                ..Default::default()
            },
        );
    }
    let t = token_for(&sim, "example-client", "example-secret", "Atzr|example").await;
    let feed = submit_and_wait(
        &sim,
        &t,
        "JSON_LISTINGS_FEED",
        MARKETPLACE_JP,
        "application/json; charset=UTF-8",
        serde_json::to_vec(&example).unwrap(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "DONE");
    let plain = result_of(&sim, &t, &feed).await;
    let report: Value = serde_json::from_slice(&plain).unwrap();
    assert_valid(
        &report_schema,
        &report,
        "simulator report for the example feed",
    );
    assert_eq!(report["summary"]["messagesAccepted"], 5, "{report}");
    assert_eq!(report["summary"]["itemSummary"]["items"], 4);
    let of = |sku: &str| sim.sim().listing_of(seller, sku);
    assert!(of("My-SKU-A").is_none(), "DELETE removes the listing");
    assert_eq!(
        of("My-SKU-B").unwrap().lead_time_to_ship_max_days,
        None,
        "PARTIAL_UPDATE replaces the attribute"
    );
    assert!(of("My-SKU-C").is_some(), "UPDATE creates the listing");
    assert_eq!(
        of("My-SKU-D").unwrap().lead_time_to_ship_max_days,
        None,
        "replace resets handling time"
    );
    assert_eq!(
        of("My-SKU-E").unwrap().lead_time_to_ship_max_days,
        Some(5),
        "merge keeps handling time"
    );
    assert_eq!(of("My-SKU-E").unwrap().quantity, Some(10));

    // A feed with errors still produces a schema-valid report.
    let t0 = token(&sim).await;
    let bad = json!({"header": {"sellerId": DEFAULT_SELLER_ID, "version": "2.0"}, "messages": [
        {"messageId": 1, "sku": "NOPE", "operationType": "PATCH", "productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]}]},
        {"messageId": 2, "sku": "SKU-0001", "operationType": "PATCH"},
        {"messageId": 3, "sku": "SKU-0001", "operationType": "PATCH", "productType": "PRODUCT", "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "lead_time_to_ship_max_days": -1}]}]}
    ]});
    let feed = submit_and_wait(
        &sim,
        &t0,
        "JSON_LISTINGS_FEED",
        MARKETPLACE_JP,
        "application/json",
        serde_json::to_vec(&bad).unwrap(),
    )
    .await;
    let plain = result_of(&sim, &t0, &feed).await;
    let report: Value = serde_json::from_slice(&plain).unwrap();
    assert_valid(&report_schema, &report, "error report");
    assert_eq!(report["summary"]["messagesInvalid"], 3);
    // FATAL report too.
    let fatal = json!({"header": {"sellerId": "X", "version": "2.0"}, "messages": [{"messageId": 1, "sku": "A", "operationType": "DELETE"}]});
    let feed = submit_and_wait(
        &sim,
        &t0,
        "JSON_LISTINGS_FEED",
        MARKETPLACE_JP,
        "application/json",
        serde_json::to_vec(&fatal).unwrap(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "FATAL");
    let plain = result_of(&sim, &t0, &feed).await;
    assert_valid(
        &report_schema,
        &serde_json::from_slice(&plain).unwrap(),
        "fatal report",
    );
    sim.shutdown().await;
}

/// Notifications API v1: request and response bodies (2xx and errors) of every implemented
/// operation validate against the model, with the documented 1 rps usage plan in the header.
#[tokio::test]
async fn notifications_responses_validate_against_the_model() {
    let model = Model::new("models/notifications-api-model/notifications.json");
    let sim = start(fast_config()).await;
    let client_id = "amzn1.application-oa2-client.conformance";
    let resp = client()
        .post(format!("{}/auth/o2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "sellingpartnerapi::notifications"),
            ("client_id", client_id),
            ("client_secret", "s"),
        ])
        .send()
        .await
        .unwrap();
    let (_, _, g) = split(resp).await;
    let grantless = g["access_token"].as_str().unwrap().to_string();
    let seller = token_for(&sim, client_id, "s", "Atzr|conformance").await;
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;

    let req = json!({"name": "conformance", "resourceSpecification": {"sqs": {"arn": "arn:aws:sqs:us-west-2:123456789012:conformance"}}});
    model.check_def("CreateDestinationRequest", &req);
    let (status, headers, d) = send_json(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/destinations",
        &req,
    )
    .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(headers["x-amzn-RateLimit-Limit"], "1");
    model.check_response("createDestination", status, &d);
    let dest = d["payload"]["destinationId"].as_str().unwrap().to_string();
    let (status, _, body) = send_json(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/destinations",
        &req,
    )
    .await;
    assert_eq!(status, 409);
    model.check_response("createDestination", status, &body);
    let (status, _, body) = send_json(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/destinations",
        &req,
    )
    .await;
    assert_eq!(status, 403);
    model.check_response("createDestination", status, &body);
    let (status, _, body) = get(&sim, &grantless, "/notifications/v1/destinations").await;
    assert_eq!(status, 200);
    model.check_response("getDestinations", status, &body);
    let (status, _, body) = get(
        &sim,
        &grantless,
        &format!("/notifications/v1/destinations/{dest}"),
    )
    .await;
    assert_eq!(status, 200);
    model.check_response("getDestination", status, &body);
    let (status, _, body) = get(&sim, &grantless, "/notifications/v1/destinations/nope").await;
    assert_eq!(status, 404);
    model.check_response("getDestination", status, &body);

    let order_req = json!({"payloadVersion": "1.0", "destinationId": dest, "processingDirective": {"eventFilter": {
        "eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
        "marketplaceIds": [MARKETPLACE_JP], "aggregationSettings": {"aggregationTimePeriod": "FiveMinutes"}}}});
    model.check_def("CreateSubscriptionRequest", &order_req);
    let (status, headers, s) = send_json(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        &order_req,
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(headers["x-amzn-RateLimit-Limit"], "1");
    model.check_response("createSubscription", status, &s);
    let feed_req = json!({"payloadVersion": "2020-09-04", "destinationId": dest});
    model.check_def("CreateSubscriptionRequest", &feed_req);
    let (status, _, f) = send_json(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/subscriptions/FEED_PROCESSING_FINISHED",
        &feed_req,
    )
    .await;
    assert_eq!(status, 200, "{f}");
    model.check_response("createSubscription", status, &f);
    for (code, body) in [
        (409, order_req.clone()),
        (
            400,
            json!({"payloadVersion": "1.0", "destinationId": dest, "processingDirective": {"eventFilter": {}}}),
        ),
    ] {
        let (status, _, e) = send_json(
            &sim,
            post.clone(),
            &seller,
            "/notifications/v1/subscriptions/ORDER_CHANGE",
            &body,
        )
        .await;
        assert_eq!(status, code, "{e}");
        model.check_response("createSubscription", status, &e);
    }
    let (status, _, body) = get(
        &sim,
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE?payloadVersion=1.0",
    )
    .await;
    assert_eq!(status, 200);
    model.check_response("getSubscription", status, &body);
    let sub = s["payload"]["subscriptionId"].as_str().unwrap().to_string();
    let by_id = format!("/notifications/v1/subscriptions/ORDER_CHANGE/{sub}");
    let (status, _, body) = get(&sim, &grantless, &by_id).await;
    assert_eq!(status, 200);
    model.check_response("getSubscriptionById", status, &body);
    let (status, _, body) = send_json(
        &sim,
        delete.clone(),
        &grantless,
        &format!("/notifications/v1/destinations/{dest}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 409);
    model.check_response("deleteDestination", status, &body);
    let (status, _, body) = send_json(&sim, delete.clone(), &grantless, &by_id, &json!({})).await;
    assert_eq!(status, 200);
    model.check_response("deleteSubscriptionById", status, &body);
    let (status, _, body) = get(&sim, &grantless, &by_id).await;
    assert_eq!(status, 404);
    model.check_response("getSubscriptionById", status, &body);
    let feed_sub = f["payload"]["subscriptionId"].as_str().unwrap();
    let (status, _, _) = send_json(
        &sim,
        delete.clone(),
        &grantless,
        &format!("/notifications/v1/subscriptions/FEED_PROCESSING_FINISHED/{feed_sub}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = send_json(
        &sim,
        delete.clone(),
        &grantless,
        &format!("/notifications/v1/destinations/{dest}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    model.check_response("deleteDestination", status, &body);
    sim.shutdown().await;
}

/// Every sandbox example response of the implemented operations parses and validates against
/// its own operation's schema (so the validator set-up above is sound), and the sandbox's
/// error cases get the same status from the simulator.
#[tokio::test]
async fn sandbox_examples_parse_and_are_answered_consistently() {
    let implemented: &[(&str, &[&str])] = &[
        (
            "models/orders-api-model/orders_2026-01-01.json",
            &["searchOrders", "getOrder"],
        ),
        (
            "models/orders-api-model/ordersV0.json",
            &["getOrders", "getOrder", "getOrderItems", "confirmShipment"],
        ),
        (
            "models/feeds-api-model/feeds_2021-06-30.json",
            &[
                "createFeedDocument",
                "createFeed",
                "getFeed",
                "getFeeds",
                "cancelFeed",
                "getFeedDocument",
            ],
        ),
        (
            "models/listings-items-api-model/listingsItems_2021-08-01.json",
            &["getListingsItem", "patchListingsItem"],
        ),
        (
            "models/tokens-api-model/tokens_2021-03-01.json",
            &["createRestrictedDataToken"],
        ),
        (
            "models/notifications-api-model/notifications.json",
            &[
                "createDestination",
                "getDestinations",
                "getDestination",
                "deleteDestination",
                "createSubscription",
                "getSubscription",
                "getSubscriptionById",
                "deleteSubscriptionById",
            ],
        ),
    ];
    let mut checked = 0;
    for (file, ops) in implemented {
        let model = Model::new(file);
        for (_, methods) in model.doc["paths"].as_object().unwrap() {
            for (_, op) in methods.as_object().unwrap() {
                let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                if !ops.contains(&id) {
                    continue;
                }
                for (code, resp) in op["responses"].as_object().unwrap() {
                    let Some(cases) = resp
                        .pointer("/x-amzn-api-sandbox/static")
                        .and_then(Value::as_array)
                    else {
                        continue;
                    };
                    for case in cases {
                        if let (Some(body), Some(schema)) =
                            (case.get("response"), resp.get("schema"))
                        {
                            model.check_schema(
                                schema,
                                body,
                                &format!("{file} {id} {code} sandbox example"),
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} sandbox examples found");

    // The sandbox's 400 cases, replayed against the simulator.
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let v2026 = Model::new("models/orders-api-model/orders_2026-01-01.json");
    let v0 = Model::new("models/orders-api-model/ordersV0.json");
    let feeds = Model::new("models/feeds-api-model/feeds_2021-06-30.json");
    let cases: Vec<(&Model, &str, (u16, reqwest::header::HeaderMap, Value))> = vec![
        (
            &v2026,
            "searchOrders",
            get(
                &sim,
                &t,
                "/orders/2026-01-01/orders?createdAfter=TEST_CASE_400",
            )
            .await,
        ),
        (
            &v2026,
            "getOrder",
            get(&sim, &t, "/orders/2026-01-01/orders/TEST_CASE_400").await,
        ),
        (
            &v0,
            "getOrders",
            get(
                &sim,
                &t,
                &format!(
                    "/orders/v0/orders?CreatedAfter=TEST_CASE_400&MarketplaceIds={MARKETPLACE_JP}"
                ),
            )
            .await,
        ),
        (
            &v0,
            "getOrder",
            get(&sim, &t, "/orders/v0/orders/TEST_CASE_400").await,
        ),
        (
            &v0,
            "getOrderItems",
            get(&sim, &t, "/orders/v0/orders/TEST_CASE_400/orderItems").await,
        ),
        (
            &feeds,
            "getFeed",
            get(&sim, &t, "/feeds/2021-06-30/feeds/badFeedId1").await,
        ),
        (
            &feeds,
            "getFeedDocument",
            get(&sim, &t, "/feeds/2021-06-30/documents/badDocumentId1").await,
        ),
        (
            &feeds,
            "createFeedDocument",
            send_json(
                &sim,
                reqwest::Method::POST,
                &t,
                "/feeds/2021-06-30/documents",
                &json!({}),
            )
            .await,
        ),
    ];
    for (model, op, (status, _, body)) in cases {
        assert_eq!(status, 400, "{op}: {body}");
        model.check_response(op, status, &body);
    }
    // The sandbox's 2xx request shapes are accepted.
    let (status, _, body) = get(&sim, &t, "/orders/2026-01-01/orders?createdAfter=2024-12-25T00:00:00Z&marketplaceIds=A1VC38T7YXB528&includedData=BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES").await;
    assert_eq!(status, 200);
    v2026.check_response("searchOrders", status, &body);
    let (status, _, doc) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/documents",
        &json!({"contentType": "text/tab-separated-values; charset=UTF-8"}),
    )
    .await;
    assert_eq!(status, 201);
    feeds.check_response("createFeedDocument", status, &doc);
    let (status, _, body) = get(&sim, &t, "/feeds/2021-06-30/feeds?feedTypes=POST_PRODUCT_DATA&pageSize=10&processingStatuses=CANCELLED,DONE").await;
    assert_eq!(status, 200);
    feeds.check_response("getFeeds", status, &body);
    sim.shutdown().await;
}

/// The validators used above do reject wrong shapes (guards against a vacuous set-up).
#[test]
fn validators_reject_invalid_bodies() {
    let model = Model::new("models/orders-api-model/orders_2026-01-01.json");
    let schema = json!({"$ref": "#/definitions/SearchOrdersResponse"});
    let v = model.validator_for_schema(&schema);
    assert!(v.is_valid(&json!({"orders": []})));
    assert!(!v.is_valid(&json!({})));
    assert!(!v.is_valid(&json!({"orders": [{"orderId": 1}]})));
    assert!(
        !v.is_valid(&json!({"orders": [], "createdBefore": "yesterday"})),
        "date-time formats are checked"
    );
    assert!(!v.is_valid(&json!({"orders": [{"orderId": "1", "createdTime": "2026-01-01T00:00:00Z", "lastUpdatedTime": "2026-01-01T00:00:00Z", "salesChannel": {"channelName": "AMAZON"}, "orderItems": [], "fulfillment": {"fulfillmentStatus": "DONE"}}]})));
    let feeds = Model::new("models/feeds-api-model/feeds_2021-06-30.json");
    let v = feeds.validator_for_schema(&json!({"$ref": "#/definitions/FeedDocument"}));
    assert!(
        !v.is_valid(&json!({"feedDocumentId": "x", "url": "u", "compressionAlgorithm": "ZIP"}))
    );
}

/// A confirmation covering part of the items leaves the order partially shipped, as Amazon
/// does (v0 `PartiallyShipped`, Orders v2026 fulfillment status `PARTIALLY_SHIPPED`, one
/// package); more than remains of an item is refused; the rest confirmed as package 2 ships the
/// order (`Shipped` / `SHIPPED`, two packages with their items).
#[tokio::test]
async fn a_partial_confirmation_leaves_the_order_partially_shipped() {
    let v0 = Model::new("models/orders-api-model/ordersV0.json");
    let v2026 = Model::new("models/orders-api-model/orders_2026-01-01.json");
    let sim = start(fast_config()).await;
    let o = sim
        .sim()
        .create_order(OrderSpec {
            marketplace_id: Some(MARKETPLACE_JP.into()),
            status: Some(OrderStatus::Unshipped),
            created_time: Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
            items: vec![
                spapi_sim::ItemSpec {
                    quantity: Some(2),
                    order_item_id: Some("11111111111111".into()),
                    ..Default::default()
                },
                spapi_sim::ItemSpec {
                    quantity: Some(1),
                    order_item_id: Some("22222222222222".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .unwrap();
    let t = token(&sim).await;
    let confirm = |reference: &str, tracking: &str, items: &[(&str, u32)]| {
        json!({
            "marketplaceId": MARKETPLACE_JP,
            "packageDetail": {
                "packageReferenceId": reference,
                "carrierCode": "YamatoTransport",
                "trackingNumber": tracking,
                "shipDate": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "orderItems": items.iter().map(|(id, q)| json!({"orderItemId": id, "quantity": q})).collect::<Vec<_>>(),
            }
        })
    };
    let post = async |body: &Value| {
        send_json(
            &sim,
            reqwest::Method::POST,
            &t,
            &format!("/orders/v0/orders/{}/shipmentConfirmation", o.order_id),
            body,
        )
        .await
    };
    let statuses = async || {
        let (status, _, body) = get(&sim, &t, &format!("/orders/v0/orders/{}", o.order_id)).await;
        assert_eq!(status, 200, "{body}");
        v0.check_response("getOrder", status, &body);
        let v0_status = body["payload"]["OrderStatus"].as_str().unwrap().to_owned();
        let (status, _, body) = get(
            &sim,
            &t,
            &format!(
                "/orders/2026-01-01/orders/{}?includedData=FULFILLMENT,PACKAGES",
                o.order_id
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        v2026.check_response("getOrder", status, &body);
        let order = &body["order"];
        (
            v0_status,
            order["fulfillment"]["fulfillmentStatus"]
                .as_str()
                .unwrap()
                .to_owned(),
            order["packages"].as_array().map_or(0, Vec::len),
        )
    };

    let first = confirm("1", "123456789012", &[("11111111111111", 2)]);
    v0.check_def("ConfirmShipmentRequest", &first);
    let (status, _, body) = post(&first).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        statuses().await,
        (
            "PartiallyShipped".to_owned(),
            "PARTIALLY_SHIPPED".to_owned(),
            1
        )
    );

    // Item 1 has nothing left.
    let (status, _, err) = post(&confirm("2", "123456789013", &[("11111111111111", 1)])).await;
    assert_eq!(status, 400, "{err}");
    v0.check_response("confirmShipment", status, &err);

    let (status, _, body) = post(&confirm("2", "123456789014", &[("22222222222222", 1)])).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        statuses().await,
        ("Shipped".to_owned(), "SHIPPED".to_owned(), 2)
    );
    let packages = sim.sim().order(&o.order_id).unwrap().packages;
    let held: Vec<(String, String, u32)> = packages
        .iter()
        .flat_map(|p| {
            p.items.iter().map(|i| {
                (
                    p.package_reference_id.clone(),
                    i.order_item_id.clone(),
                    i.quantity,
                )
            })
        })
        .collect();
    assert_eq!(
        held,
        vec![
            ("1".to_owned(), "11111111111111".to_owned(), 2),
            ("2".to_owned(), "22222222222222".to_owned(), 1)
        ]
    );
    sim.shutdown().await;
}
