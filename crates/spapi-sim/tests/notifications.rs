//! Notifications API v1 against a real SQS-compatible server (moto's server mode, started by
//! `scripts/local-services` on 127.0.0.1:4566; `SQS_ENDPOINT` overrides): destinations and
//! subscriptions, grantless and seller tokens, quotas, ORDER_CHANGE and FEED_PROCESSING_FINISHED
//! messages received from the queue and validated against Amazon's schemas, and the delivery
//! faults (duplicates, drops, delay, reordering) matching the simulator's counter.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use spapi_sim::{
    DEFAULT_SELLER_ID, MARKETPLACE_AU, MARKETPLACE_JP, OrderSpec, OrderStatus, RunningSim,
    SimConfig, StatusChange,
};

const CLIENT_ID: &str = "amzn1.application-oa2-client.notif";
const NOTIFICATIONS_SCOPE: &str = "sellingpartnerapi::notifications";

fn endpoint() -> String {
    spapi_sim::default_sqs_endpoint()
}

/// One SQS call (JSON protocol) to moto; moto routes by the credential scope's service and
/// region and does not check the signature.
async fn sqs(region: &str, action: &str, body: Value) -> (u16, Value) {
    let ep = endpoint();
    let resp = client()
        .post(format!("{ep}/"))
        .header("X-Amz-Target", format!("AmazonSQS.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/{region}/sqs/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no SQS-compatible server at {ep} ({e}).\n  These tests need moto's server mode: scripts/local-services starts it \
                 (scripts/test and .ci/run call it), or start it by hand:\n    pip install 'moto[server]' && moto_server -H 127.0.0.1 -p 4566 &\n  \
                 or point SQS_ENDPOINT at another SQS-compatible server."
            )
        });
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A fresh queue: (queue URL, ARN).
async fn create_queue(region: &str) -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "spapi-sim-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    let (status, v) = sqs(region, "CreateQueue", json!({"QueueName": name})).await;
    assert_eq!(status, 200, "CreateQueue: {v}");
    let url = v["QueueUrl"].as_str().unwrap().to_string();
    let (status, v) = sqs(
        region,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
    )
    .await;
    assert_eq!(status, 200, "GetQueueAttributes: {v}");
    let arn = v["Attributes"]["QueueArn"].as_str().unwrap().to_string();
    assert_eq!(
        url,
        format!("{}/{}", endpoint().trim_end_matches('/'), {
            let p: Vec<&str> = arn.split(':').collect();
            format!("{}/{}", p[4], p[5])
        }),
        "moto's queue URL is {{endpoint}}/{{account}}/{{name}}, as the simulator assumes"
    );
    (url, arn)
}

/// Receives (long poll) until `n` messages arrived or `within` passed; then one more short
/// poll to catch extras. Returns the parsed bodies in arrival order.
async fn receive(region: &str, url: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    loop {
        let wait = if out.len() >= n { 1 } else { 2 };
        let (status, v) = sqs(
            region,
            "ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": wait, "VisibilityTimeout": 300}),
        )
        .await;
        assert_eq!(status, 200, "ReceiveMessage: {v}");
        let msgs = v["Messages"].as_array().cloned().unwrap_or_default();
        let got = msgs.len();
        for m in msgs {
            out.push(serde_json::from_str(m["Body"].as_str().unwrap()).expect("JSON body"));
        }
        if (out.len() >= n && got == 0) || Instant::now() > deadline {
            return out;
        }
    }
}

async fn lwa(sim: &RunningSim, fields: &[(&str, &str)]) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/auth/o2/token", sim.base_url()))
        .form(fields)
        .send()
        .await
        .unwrap();
    let (status, _, v) = split(resp).await;
    (status, v)
}

async fn grantless_token(sim: &RunningSim) -> String {
    let resp = client()
        .post(format!("{}/auth/o2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", NOTIFICATIONS_SCOPE),
            ("client_id", CLIENT_ID),
            ("client_secret", "secret"),
        ])
        .send()
        .await
        .unwrap();
    let (status, _, v) = split(resp).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none());
    v["access_token"].as_str().unwrap().to_string()
}

async fn seller_token(sim: &RunningSim) -> String {
    token_for(sim, CLIENT_ID, "secret", "Atzr|notif-seller").await
}

async fn call(
    sim: &RunningSim,
    m: reqwest::Method,
    t: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(m, format!("{}{path}", sim.base_url()))
        .header("x-amz-access-token", t);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let (status, _, v) = split(req.send().await.unwrap()).await;
    (status, v)
}

struct Setup {
    grantless: String,
    seller: String,
    destination_id: String,
    order_sub: String,
    feed_sub: String,
}

/// createDestination for the queue, then ORDER_CHANGE (with `filter`) and FEED_PROCESSING_FINISHED.
async fn subscribe(sim: &RunningSim, arn: &str, filter: Value) -> Setup {
    let grantless = grantless_token(sim).await;
    let seller = seller_token(sim).await;
    let (status, d) = call(
        sim,
        reqwest::Method::POST,
        &grantless,
        "/notifications/v1/destinations",
        Some(json!({"name": "warehouse", "resourceSpecification": {"sqs": {"arn": arn}}})),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["payload"]["resource"]["sqs"]["arn"], arn);
    let destination_id = d["payload"]["destinationId"].as_str().unwrap().to_string();
    let (status, s) = call(
        sim,
        reqwest::Method::POST,
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        Some(
            json!({"payloadVersion": "1.0", "destinationId": destination_id,
            "processingDirective": {"eventFilter": filter}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    let order_sub = s["payload"]["subscriptionId"].as_str().unwrap().to_string();
    let (status, s) = call(
        sim,
        reqwest::Method::POST,
        &seller,
        "/notifications/v1/subscriptions/FEED_PROCESSING_FINISHED",
        Some(json!({"payloadVersion": "2020-09-04", "destinationId": destination_id})),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    let feed_sub = s["payload"]["subscriptionId"].as_str().unwrap().to_string();
    Setup {
        grantless,
        seller,
        destination_id,
        order_sub,
        feed_sub,
    }
}

fn order_filter() -> Value {
    json!({"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"]})
}

/// The official schema, made strict: every object with `properties` gets
/// `additionalProperties: false`, so a misspelt or invented field fails too.
fn strict_validator(file: &str) -> jsonschema::Validator {
    fn strict(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") {
                    m.insert("additionalProperties".into(), Value::Bool(false));
                }
                for (k, x) in m.iter_mut() {
                    if k != "examples" {
                        strict(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strict),
            _ => {}
        }
    }
    let path = format!("{MODELS}/schemas/notifications/{file}");
    let mut schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).unwrap();
    // The schema's own examples validate under the strict reading (it is not stricter than Amazon).
    let examples = schema["examples"].as_array().cloned().unwrap_or_default();
    strict(&mut schema);
    let v = jsonschema::options()
        .build(&schema)
        .expect("schema compiles");
    assert!(!examples.is_empty());
    for e in &examples {
        assert_valid(&v, e, &format!("{file} example"));
    }
    v
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

fn pending_order(sim: &RunningSim, marketplace: &str) -> String {
    sim.sim()
        .create_order(OrderSpec {
            marketplace_id: Some(marketplace.into()),
            status: Some(OrderStatus::Pending),
            ..OrderSpec::default()
        })
        .unwrap()
        .order_id
}

async fn counter(sim: &RunningSim) -> Value {
    let v: Value = client()
        .get(format!("{}/_sim/notifications", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v
}

async fn set_options(sim: &RunningSim, patch: Value) {
    let resp = client()
        .put(format!("{}/_sim/options", sim.base_url()))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

/// Waits until nothing is pending in the simulator's delivery.
async fn settle(sim: &RunningSim) -> Value {
    for _ in 0..500 {
        let c = counter(sim).await;
        if c["pending"] == 0 {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("notifications still pending: {}", counter(sim).await);
}

fn order_id_of(n: &Value) -> &str {
    n["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
        .as_str()
        .unwrap()
}

/// Status changes (payment, cancellation, a buyer's cancel request, shipment by confirmShipment
/// and by a fulfillment feed) and feed results arrive in the queue, each validating against
/// Amazon's (strict) schema with the subscription's id and the right content; filters hold back
/// what they exclude; new orders notify only with `notifyNewOrders`.
#[tokio::test]
async fn order_changes_and_feed_results_arrive_and_validate() {
    let region = "us-west-2";
    let (url, arn) = create_queue(region).await;
    let sim = start(fast_config()).await;
    let filter = json!({"eventFilterType": "ORDER_CHANGE",
        "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
        "marketplaceIds": [MARKETPLACE_JP]});
    let s = subscribe(&sim, &arn, filter).await;
    let orders_schema = strict_validator("OrderChangeNotification.json");
    let feeds_schema = strict_validator("FeedProcessingFinishedNotification.json");

    let paid = pending_order(&sim, MARKETPLACE_JP);
    let cancelled = pending_order(&sim, MARKETPLACE_JP);
    let asked = pending_order(&sim, MARKETPLACE_JP);
    let by_feed = pending_order(&sim, MARKETPLACE_JP);
    let australian = pending_order(&sim, MARKETPLACE_AU);
    assert_eq!(
        counter(&sim).await["produced"],
        0,
        "new orders notify nothing by default"
    );

    let post_status = |id: String, body: Value| {
        let base = sim.base_url();
        async move {
            let r = client()
                .post(format!("{base}/_sim/orders/{id}/status"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    post_status(paid.clone(), json!({"status": "UNSHIPPED"})).await;
    post_status(
        cancelled.clone(),
        json!({"status": "CANCELLED", "cancelledBy": "BUYER"}),
    )
    .await;
    post_status(
        asked.clone(),
        json!({"status": "BUYER_CANCEL_REQUESTED", "reason": "changed mind"}),
    )
    .await;
    post_status(by_feed.clone(), json!({"status": "UNSHIPPED"})).await;
    // Filtered out by marketplaceIds.
    post_status(australian.clone(), json!({"status": "UNSHIPPED"})).await;

    // Shipped through confirmShipment…
    let o = sim.sim().order(&paid).unwrap();
    let (status, body) = call(
        &sim,
        reqwest::Method::POST,
        &s.seller,
        &format!("/orders/v0/orders/{paid}/shipmentConfirmation"),
        Some(json!({"marketplaceId": MARKETPLACE_JP, "packageDetail": {
            "packageReferenceId": "1", "carrierCode": "YamatoTransport", "trackingNumber": "123456789012",
            "shipDate": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "orderItems": o.items.iter().map(|i| json!({"orderItemId": i.order_item_id, "quantity": i.quantity_ordered})).collect::<Vec<_>>()}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // …and through a fulfillment feed, which also finishes (FEED_PROCESSING_FINISHED).
    let xml = fulfillment_feed(
        DEFAULT_SELLER_ID,
        &[(&by_feed, "YamatoTransport", None, "223456789012")],
    );
    let feed = submit_and_wait(
        &sim,
        &s.seller,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_JP,
        "text/xml; charset=UTF-8",
        xml.into_bytes(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "DONE");

    // New orders notify once the option is on.
    set_options(&sim, json!({"notifyNewOrders": true})).await;
    let fresh = pending_order(&sim, MARKETPLACE_JP);

    let c = settle(&sim).await;
    let got = receive(region, &url, 8, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 8, "{got:#?}");
    assert_eq!(c["sent"], 8, "{c}");
    assert_eq!(c["byType"]["ORDER_CHANGE"]["sent"], 7, "{c}");
    assert_eq!(c["byType"]["FEED_PROCESSING_FINISHED"]["sent"], 1, "{c}");
    assert_eq!(c["dropped"], 0);
    assert_eq!(c["duplicated"], 0);

    let mut ids = HashSet::new();
    let mut changes = Vec::new();
    for n in &got {
        if n.get("NotificationType").is_some() {
            assert_valid(&orders_schema, n, "ORDER_CHANGE");
            assert_eq!(n["NotificationType"], "ORDER_CHANGE");
            assert_eq!(n["PayloadVersion"], "1.0");
            assert_eq!(
                n["NotificationMetadata"]["SubscriptionId"],
                s.order_sub.as_str()
            );
            assert!(
                ids.insert(
                    n["NotificationMetadata"]["NotificationId"]
                        .as_str()
                        .unwrap()
                        .to_string()
                )
            );
            let p = &n["Payload"]["OrderChangeNotification"];
            assert_eq!(p["SellerId"], DEFAULT_SELLER_ID);
            assert_eq!(p["Summary"]["MarketplaceId"], MARKETPLACE_JP);
            changes.push((
                p["AmazonOrderId"].as_str().unwrap().to_string(),
                p["OrderChangeType"].as_str().unwrap().to_string(),
                p["Summary"]["OrderStatus"].as_str().unwrap().to_string(),
                p["Summary"]["OrderItems"][0]["IsBuyerRequestedCancel"]
                    .as_bool()
                    .unwrap(),
            ));
        } else {
            assert_valid(&feeds_schema, n, "FEED_PROCESSING_FINISHED");
            assert_eq!(n["notificationType"], "FEED_PROCESSING_FINISHED");
            assert_eq!(n["payloadVersion"], "2020-09-04");
            assert_eq!(
                n["notificationMetadata"]["subscriptionId"],
                s.feed_sub.as_str()
            );
            assert!(
                ids.insert(
                    n["notificationMetadata"]["notificationId"]
                        .as_str()
                        .unwrap()
                        .to_string()
                )
            );
            let p = &n["payload"]["feedProcessingFinishedNotification"];
            assert_eq!(p["feedId"], feed["feedId"]);
            assert_eq!(p["processingStatus"], "DONE");
            assert_eq!(p["resultFeedDocumentId"], feed["resultFeedDocumentId"]);
            assert_eq!(p["sellerId"], DEFAULT_SELLER_ID);
        }
    }
    changes.sort();
    let mut want = vec![
        (
            paid.clone(),
            "OrderStatusChange".to_string(),
            "Unshipped".to_string(),
            false,
        ),
        (
            paid.clone(),
            "OrderStatusChange".to_string(),
            "Shipped".to_string(),
            false,
        ),
        (
            cancelled.clone(),
            "OrderStatusChange".to_string(),
            "Canceled".to_string(),
            false,
        ),
        (
            asked.clone(),
            "BuyerRequestedChange".to_string(),
            "Pending".to_string(),
            true,
        ),
        (
            by_feed.clone(),
            "OrderStatusChange".to_string(),
            "Unshipped".to_string(),
            false,
        ),
        (
            by_feed.clone(),
            "OrderStatusChange".to_string(),
            "Shipped".to_string(),
            false,
        ),
        (
            fresh.clone(),
            "OrderStatusChange".to_string(),
            "Pending".to_string(),
            false,
        ),
    ];
    want.sort();
    assert_eq!(changes, want);
    assert!(
        got.iter()
            .all(|n| n.get("NotificationType").is_none() || order_id_of(n) != australian)
    );

    // After deleteSubscriptionById nothing more arrives for ORDER_CHANGE.
    let (status, body) = call(
        &sim,
        reqwest::Method::DELETE,
        &s.grantless,
        &format!(
            "/notifications/v1/subscriptions/ORDER_CHANGE/{}",
            s.order_sub
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    post_status(fresh.clone(), json!({"status": "UNSHIPPED"})).await;
    let c = settle(&sim).await;
    assert_eq!(c["produced"], 8, "{c}");
    assert!(
        receive(region, &url, 0, Duration::from_secs(1))
            .await
            .is_empty()
    );
    let _ = s.destination_id;
    sim.shutdown().await;
}

/// Grantless operations take only client-credentials tokens with the notifications scope;
/// seller operations only a seller's token; the subscription rules (eventFilter, payload
/// version, destination, duplicates) answer as Amazon does. No queue is needed.
#[tokio::test]
async fn tokens_and_subscription_rules() {
    let sim = start(fast_config()).await;
    let grantless = grantless_token(&sim).await;
    let seller = seller_token(&sim).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let delete = reqwest::Method::DELETE;
    let arn = "arn:aws:sqs:us-west-2:123456789012:never-sent";

    // Scopes.
    let (status, _) = lwa(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "sellingpartnerapi::other"),
            ("client_id", CLIENT_ID),
            ("client_secret", "s"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = lwa(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "s"),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // Grantless operations refuse the seller's token, seller operations the grantless one.
    let dest_body = json!({"name": "d", "resourceSpecification": {"sqs": {"arn": arn}}});
    let (status, body) = call(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/destinations",
        Some(dest_body.clone()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["code"], "Unauthorized");
    let (status, _) = call(
        &sim,
        get.clone(),
        &seller,
        "/notifications/v1/destinations",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &sim,
        get.clone(),
        &grantless,
        "/orders/2026-01-01/orders?createdAfter=2026-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(status, 403, "a grantless token acts for no seller");
    let (status, d) = call(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/destinations",
        Some(dest_body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let dest = d["payload"]["destinationId"].as_str().unwrap().to_string();
    let (status, body) = call(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/destinations",
        Some(dest_body.clone()),
    )
    .await;
    assert_eq!(status, 409, "same ARN twice: {body}");
    let (status, body) = call(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/destinations",
        Some(json!({"name": "d", "resourceSpecification": {"sqs": {"arn": "not-an-arn"}}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let sub = |filter: Option<Value>| {
        let mut b = json!({"payloadVersion": "1.0", "destinationId": dest});
        if let Some(f) = filter {
            b["processingDirective"] = json!({"eventFilter": f});
        }
        b
    };
    let (status, _) = call(
        &sim,
        post.clone(),
        &grantless,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        Some(sub(Some(order_filter()))),
    )
    .await;
    assert_eq!(status, 403, "createSubscription acts for a seller");
    for (what, body) in [
        ("no processingDirective", sub(None)),
        ("empty eventFilter", sub(Some(json!({})))),
    ] {
        let (status, e) = call(
            &sim,
            post.clone(),
            &seller,
            "/notifications/v1/subscriptions/ORDER_CHANGE",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{what}: {e}");
        assert_eq!(e["errors"][0]["code"], "InvalidInput");
        assert_eq!(e["errors"][0]["message"], "eventFilter must not be empty.");
    }
    for (what, body) in [
        (
            "wrong eventFilterType",
            sub(Some(json!({"eventFilterType": "ANY_OFFER_CHANGED"}))),
        ),
        (
            "no eventFilterType",
            sub(Some(json!({"orderChangeTypes": ["OrderStatusChange"]}))),
        ),
        (
            "unknown change type",
            sub(Some(
                json!({"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["Nope"]}),
            )),
        ),
        (
            "payload version",
            json!({"payloadVersion": "2.0", "destinationId": dest, "processingDirective": {"eventFilter": order_filter()}}),
        ),
        (
            "unknown destination",
            json!({"payloadVersion": "1.0", "destinationId": "nope", "processingDirective": {"eventFilter": order_filter()}}),
        ),
    ] {
        let (status, e) = call(
            &sim,
            post.clone(),
            &seller,
            "/notifications/v1/subscriptions/ORDER_CHANGE",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{what}: {e}");
    }
    let (status, e) = call(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/subscriptions/PRICING_HEALTH",
        Some(sub(Some(order_filter()))),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let (status, s) = call(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        Some(sub(Some(order_filter()))),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    let sub_id = s["payload"]["subscriptionId"].as_str().unwrap().to_string();
    assert_eq!(
        s["payload"]["processingDirective"]["eventFilter"],
        order_filter()
    );
    let (status, e) = call(
        &sim,
        post.clone(),
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        Some(sub(Some(order_filter()))),
    )
    .await;
    assert_eq!(status, 409, "duplicate subscription: {e}");
    assert_eq!(e["errors"][0]["code"], "Conflict");

    // Reads: getSubscription (seller), getSubscriptionById (grantless), getDestination(s).
    let (status, g) = call(
        &sim,
        get.clone(),
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        None,
    )
    .await;
    assert_eq!((status, &g["payload"]), (200, &s["payload"]));
    let (status, _) = call(
        &sim,
        get.clone(),
        &grantless,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let by_id = format!("/notifications/v1/subscriptions/ORDER_CHANGE/{sub_id}");
    let (status, g) = call(&sim, get.clone(), &grantless, &by_id, None).await;
    assert_eq!((status, &g["payload"]), (200, &s["payload"]));
    let (status, _) = call(&sim, get.clone(), &seller, &by_id, None).await;
    assert_eq!(status, 403);
    let (status, l) = call(
        &sim,
        get.clone(),
        &grantless,
        "/notifications/v1/destinations",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(l["payload"].as_array().unwrap().len(), 1);
    let (status, g) = call(
        &sim,
        get.clone(),
        &grantless,
        &format!("/notifications/v1/destinations/{dest}"),
        None,
    )
    .await;
    assert_eq!((status, &g["payload"]), (200, &d["payload"]));

    // A destination in use cannot go; deleting the subscription first frees it.
    let dest_path = format!("/notifications/v1/destinations/{dest}");
    let (status, _) = call(&sim, delete.clone(), &grantless, &dest_path, None).await;
    assert_eq!(status, 409);
    let (status, _) = call(&sim, delete.clone(), &seller, &by_id, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&sim, delete.clone(), &grantless, &by_id, None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&sim, get.clone(), &grantless, &by_id, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &sim,
        get.clone(),
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&sim, delete.clone(), &grantless, &dest_path, None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&sim, get.clone(), &grantless, &dest_path, None).await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

/// Every Notifications operation runs at 1 request/s with a burst of 5: the sixth call in a
/// burst is answered 429, and a second later one more call goes through.
#[tokio::test]
async fn notifications_quotas_are_one_per_second_burst_five() {
    let sim = start(SimConfig {
        unlimited: false,
        ..fast_config()
    })
    .await;
    let grantless = grantless_token(&sim).await;
    let seller = seller_token(&sim).await;
    for (token, path) in [
        (&grantless, "/notifications/v1/destinations"),
        (&seller, "/notifications/v1/subscriptions/ORDER_CHANGE"),
        (
            &grantless,
            "/notifications/v1/subscriptions/ORDER_CHANGE/nope",
        ),
    ] {
        for i in 0..5 {
            let (status, headers, body) = get(&sim, token, path).await;
            assert!(
                matches!(status, 200 | 404),
                "call {i} to {path}: {status} {body}"
            );
            assert_eq!(headers["x-amzn-RateLimit-Limit"], "1");
        }
        let (status, _, body) = get(&sim, token, path).await;
        assert_eq!(status, 429, "6th call to {path}: {body}");
        assert_eq!(body["errors"][0]["code"], "QuotaExceeded");
    }
    sim.sim().advance_clock(Duration::from_millis(1100));
    let (status, _, _) = get(&sim, &grantless, "/notifications/v1/destinations").await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

/// `count` pending JP orders made UNSHIPPED one after another: ORDER_CHANGE each.
async fn pay_orders(sim: &RunningSim, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count)
        .map(|_| pending_order(sim, MARKETPLACE_JP))
        .collect();
    for id in &ids {
        sim.sim()
            .set_order_status(id, StatusChange::Unshipped)
            .unwrap();
    }
    ids
}

/// `notificationDuplicateRate: 1`: every notification arrives twice with the same
/// NotificationId, as the counter says; consumers de-duplicate on it.
#[tokio::test]
async fn duplicates_arrive_twice_with_the_same_id() {
    let region = "us-east-1";
    let (url, arn) = create_queue(region).await;
    let sim = start(fast_config()).await;
    subscribe(&sim, &arn, order_filter()).await;
    set_options(&sim, json!({"notificationDuplicateRate": 1.0})).await;
    pay_orders(&sim, 4).await;
    let c = settle(&sim).await;
    assert_eq!(
        (
            c["produced"].as_u64(),
            c["duplicated"].as_u64(),
            c["sent"].as_u64()
        ),
        (Some(4), Some(4), Some(8)),
        "{c}"
    );
    let got = receive(region, &url, 8, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 8);
    let ids: HashSet<&str> = got
        .iter()
        .map(|n| {
            n["NotificationMetadata"]["NotificationId"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 4);
    sim.shutdown().await;
}

/// `notificationDropRate: 0.5` (seeded): some notifications never arrive; what arrives is
/// exactly what the counter says was sent, and sent + dropped = produced.
#[tokio::test]
async fn drops_lose_notifications_as_counted() {
    let region = "us-east-1";
    let (url, arn) = create_queue(region).await;
    let sim = start(fast_config()).await;
    subscribe(&sim, &arn, order_filter()).await;
    set_options(&sim, json!({"notificationDropRate": 0.5})).await;
    let ids = pay_orders(&sim, 12).await;
    let c = settle(&sim).await;
    let (produced, sent, dropped) = (
        c["produced"].as_u64().unwrap(),
        c["sent"].as_u64().unwrap(),
        c["dropped"].as_u64().unwrap(),
    );
    assert_eq!(produced, 12);
    assert_eq!(sent + dropped, produced, "{c}");
    assert!(
        dropped > 0 && sent > 0,
        "seeded 0.5 drops some, not all: {c}"
    );
    let got = receive(region, &url, sent as usize, Duration::from_secs(20)).await;
    assert_eq!(got.len() as u64, sent);
    assert!(
        got.iter()
            .all(|n| ids.iter().any(|id| id == order_id_of(n)))
    );
    sim.shutdown().await;
}

/// `notificationDelayMs` holds each notification back; `notificationReorder` releases them in
/// shuffled batches (all arrive, not in event order), while without it the queue receives them
/// in event order.
#[tokio::test]
async fn delay_and_reordering() {
    let region = "us-east-1";
    let sim = start(fast_config()).await;
    let (url, arn) = create_queue(region).await;
    subscribe(&sim, &arn, order_filter()).await;

    // In order without reordering (the baseline the reordering check relies on).
    let ids = pay_orders(&sim, 8).await;
    settle(&sim).await;
    let got = receive(region, &url, 8, Duration::from_secs(20)).await;
    let arrived: Vec<&str> = got.iter().map(order_id_of).collect();
    assert_eq!(arrived, ids.iter().map(String::as_str).collect::<Vec<_>>());

    // Reordered.
    set_options(&sim, json!({"notificationReorder": true})).await;
    let ids = pay_orders(&sim, 8).await;
    settle(&sim).await;
    let got = receive(region, &url, 8, Duration::from_secs(20)).await;
    let arrived: Vec<&str> = got.iter().map(order_id_of).collect();
    let mut sorted_arrived = arrived.clone();
    sorted_arrived.sort_unstable();
    let mut sorted_ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted_ids.sort_unstable();
    assert_eq!(sorted_arrived, sorted_ids, "every notification arrives");
    assert_ne!(
        arrived,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "not in event order"
    );

    // Delayed.
    set_options(
        &sim,
        json!({"notificationReorder": false, "notificationDelayMs": 1500}),
    )
    .await;
    let t0 = Instant::now();
    pay_orders(&sim, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counter(&sim).await["pending"], 1, "held back");
    let got = receive(region, &url, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "arrived after {:?}",
        t0.elapsed()
    );
    sim.shutdown().await;
}

/// A queue that does not exist: the simulator retries, then counts the notification as failed
/// (the HTTP call that changed the order is not held up).
#[tokio::test]
async fn unknown_queue_counts_as_failed() {
    let sim = start(fast_config()).await;
    // Make sure moto answers, so the failure is the queue's.
    create_queue("us-east-1").await;
    subscribe(
        &sim,
        "arn:aws:sqs:us-east-1:123456789012:spapi-sim-no-such-queue",
        order_filter(),
    )
    .await;
    let t0 = Instant::now();
    pay_orders(&sim, 1).await;
    assert!(t0.elapsed() < Duration::from_millis(200));
    let c = settle(&sim).await;
    assert_eq!(
        (c["failed"].as_u64(), c["sent"].as_u64()),
        (Some(1), Some(0)),
        "{c}"
    );
    sim.shutdown().await;
}

/// Amazon's official Python SDK (`pip install amzn-sp-api`) creates a destination and an
/// ORDER_CHANGE subscription on the simulator (`tests/python/sdk_notifications.py`), and the
/// simulator then delivers to that destination. Skipped, loudly, only when python3 or the SDK
/// is not installed.
#[tokio::test]
async fn amazons_python_sdk_creates_a_destination_and_a_subscription() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import spapi.api.notifications_v1"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "\n*** SKIPPED: Amazon's Python SDK is not installed (python3 -m pip install amzn-sp-api); \
             the SDK conformance of the Notifications API was NOT checked. ***\n"
        );
        return;
    }
    let region = "us-west-2";
    let (url, arn) = create_queue(region).await;
    let sim = start(fast_config()).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/sdk_notifications.py"
    );
    let base = sim.base_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &base, &arn])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("script output");
    assert_eq!(v["eventFilterType"], "ORDER_CHANGE");
    // The SDK's client id and refresh token map to the default seller: its order changes
    // reach the queue the SDK subscribed.
    let id = pending_order(&sim, MARKETPLACE_JP);
    sim.sim()
        .set_order_status(&id, StatusChange::Unshipped)
        .unwrap();
    let got = receive(region, &url, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["NotificationMetadata"]["SubscriptionId"],
        v["subscriptionId"]
    );
    sim.shutdown().await;
}
