//! Issue 19, end to end: Amazon (the simulator) delivers ORDER_CHANGE notifications to SQS
//! (moto) at least once and out of order; the listener turns them into status-sync work; the
//! status-sync service applies each order once by `getOrder`, without a single `searchOrders`.

use std::time::{Duration, Instant};

use domain::window::ImportMode;
use notification_listener::{Listener, Settings, sqs_client};
use serde_json::{Value, json};
use spapi_sim::{MarketplaceMix, OrderStatus, StatusChange};
use sqlx::PgPool;
use system_tests::{Svc, System};

const CLIENT_ID: &str = "amzn1.application-oa2-client.test";

async fn token(sim_url: &str, form: &[(&str, &str)]) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{sim_url}/auth/o2/token"))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {v}"))
        .to_owned()
}

async fn post(sim_url: &str, token: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{sim_url}{path}"))
        .header("x-amz-access-token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[sqlx::test(migrations = "../../migrations")]
async fn notifications_delivered_twice_and_out_of_order_apply_each_order_once(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim = sys.sim.sim().clone();
    let orders = sim.generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        100,
        19,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 1.0,
        },
    );
    assert!(orders.iter().all(|o| o.status == OrderStatus::Pending));
    sys.start(Svc::OrderIngest);
    sys.start(Svc::StatusSync);
    let run = sys.ingest(a.id, ImportMode::Hours { hours: 168 }).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");

    // The destination (a moto queue) and the shop's ORDER_CHANGE subscription, as a seller
    // sets them up through Amazon's API.
    let sqs = sqs_client(
        "us-west-2",
        Some(&spapi_sim::default_sqs_endpoint()),
        "test",
        "test",
    );
    let url = sqs
        .create_queue()
        .queue_name(format!(
            "st-notifications-{}",
            uuid::Uuid::now_v7().simple()
        ))
        .send()
        .await
        .expect("moto (scripts/local-services starts it on 127.0.0.1:4566)")
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let base = sys.sim.base_url();
    let grantless = token(
        &base,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "sellingpartnerapi::notifications"),
            ("client_id", CLIENT_ID),
            ("client_secret", &a.client_secret),
        ],
    )
    .await;
    let seller = token(
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a.refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", &a.client_secret),
        ],
    )
    .await;
    let d = post(
        &base,
        &grantless,
        "/notifications/v1/destinations",
        json!({"name": "warehouse", "resourceSpecification": {"sqs": {"arn": arn}}}),
    )
    .await;
    let destination = d["payload"]["destinationId"].as_str().unwrap().to_owned();
    post(
        &base,
        &seller,
        "/notifications/v1/subscriptions/ORDER_CHANGE",
        json!({"payloadVersion": "1.0", "destinationId": destination,
               "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE",
                   "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"]}}}),
    )
    .await;

    // Every notification twice, in shuffled batches.
    let mut opts = sim.options();
    opts.notification_duplicate_rate = 1.0;
    opts.notification_reorder = true;
    sim.set_options(opts).unwrap();
    let searches_before = sim.call_counts().get("searchOrders").map_or(0, |c| c.calls);
    for o in &orders[..60] {
        sim.set_order_status(&o.order_id, StatusChange::Unshipped)
            .unwrap();
    }
    for o in &orders[60..80] {
        sim.set_order_status(
            &o.order_id,
            StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: None,
            },
        )
        .unwrap();
    }

    let listener = Listener::new(
        sys.pool.clone(),
        sqs.clone(),
        sys.topology.clone(),
        Settings {
            queue_url: url.clone(),
            dead_letter_queue_url: None,
            wait_seconds: 1,
            max_messages: 10,
            visibility_timeout: 30,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut received, mut duplicates) = (0, 0);
    loop {
        let p = listener.poll_once().await.expect("poll");
        received += p.received;
        duplicates += p.duplicates;
        let paid = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND payment_status = 'paid'",
                a.id
            ))
            .await;
        let canceled = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND status = 'canceled'",
                a.id
            ))
            .await;
        let counter = sim.notification_counter();
        if paid == 60
            && canceled == 20
            && p.received == 0
            && counter.pending == 0
            && received as u64 >= counter.total.sent
        {
            break;
        }
        if Instant::now() >= deadline {
            let runs: Vec<(String, Option<String>, Value, Option<String>)> = sqlx::query_as(
                "SELECT status, mode, counts, error FROM action_runs WHERE action = 'status-sync' ORDER BY started_at",
            )
            .fetch_all(&sys.pool)
            .await
            .unwrap();
            let outbox: Vec<(Value, bool)> =
                sqlx::query_as("SELECT payload, sent_at IS NOT NULL FROM outbox ORDER BY id")
                    .fetch_all(&sys.pool)
                    .await
                    .unwrap();
            panic!(
                "not settled: {paid} paid, {canceled} canceled, {received} received, {counter:?}\nruns: {runs:#?}\noutbox: {outbox:#?}"
            );
        }
    }
    let counter = sim.notification_counter();
    assert_eq!(counter.total.produced, 80, "{counter:?}");
    assert_eq!(
        counter.total.sent, 160,
        "every notification delivered twice"
    );
    assert_eq!((received, duplicates), (160, 80));

    // Each order applied once: the runs' counts add up to exactly the changes.
    sys.drain(Duration::from_secs(60)).await;
    let (paid, canceled): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum((counts->>'paid')::bigint), 0)::bigint, COALESCE(sum((counts->>'canceled')::bigint), 0)::bigint
           FROM action_runs WHERE shop_id = $1 AND action = 'status-sync' AND mode = 'orders'",
    )
    .bind(a.id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!((paid, canceled), (60, 20));
    let recorded = sys
        .count("SELECT count(*) FROM notifications_received WHERE outcome = 'queued'")
        .await;
    assert_eq!(recorded, 80);
    let searches = sim.call_counts().get("searchOrders").map_or(0, |c| c.calls);
    assert_eq!(
        searches, searches_before,
        "no searchOrders: getOrder per announced order"
    );
    sys.shutdown().await;
}
