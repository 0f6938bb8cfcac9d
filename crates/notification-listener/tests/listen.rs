//! The listener against a real SQS-compatible server (moto, started by `scripts/local-services`
//! on 127.0.0.1:4566 or `SQS_ENDPOINT`) and the real PostgreSQL: notifications delivered twice,
//! out of order, unreadable or not ours become exactly the commands they should, once; the queue
//! is empty afterwards and the poison is in the dead-letter queue with its reason.

use std::time::Duration;

use domain::messages::{Command, CommandParams};
use domain::shop::ShopCode;
use notification_listener::{Listener, Polled, Settings, sqs_client};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const SELLER: &str = "A1SIMSELLER0001";
const JP: &str = "A1VC38T7YXB528";
const REGION: &str = "us-west-2";

fn endpoint() -> String {
    std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn sqs() -> aws_sdk_sqs::Client {
    sqs_client(REGION, Some(&endpoint()), "test", "test")
}

/// A fresh queue's URL; fails with how to start moto when nothing answers.
async fn queue(client: &aws_sdk_sqs::Client, what: &str) -> String {
    let name = format!("listener-{what}-{}", Uuid::now_v7().simple());
    client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no SQS-compatible server at {} ({}).\n  scripts/local-services starts moto (scripts/test and .ci/run call it), or:\n    pip install 'moto[server]' && python3 -m moto.server -H 127.0.0.1 -p 4566 &",
                endpoint(),
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })
        .queue_url
        .expect("queue url")
}

fn order_change(notification_id: &str, seller: &str, order_id: &str, status: &str) -> String {
    json!({
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": "2026-12-02T01:02:03.000Z",
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": seller,
            "AmazonOrderId": order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": "2026-12-02T01:02:03.000Z", "ChangeReason": "Buyer"},
            "Summary": {"MarketplaceId": JP, "OrderStatus": status, "FulfillmentType": "MFN"}
        }},
        "NotificationMetadata": {
            "ApplicationId": "amzn1.sellerapps.app.test",
            "SubscriptionId": "sub-1",
            "PublishTime": "2026-12-02T01:02:04.000Z",
            "NotificationId": notification_id
        }
    })
    .to_string()
}

fn feed_finished(notification_id: &str, feed_id: &str) -> String {
    json!({
        "notificationVersion": "2020-09-04",
        "notificationType": "FEED_PROCESSING_FINISHED",
        "payloadVersion": "2020-09-04",
        "eventTime": "2026-12-02T01:02:03.000Z",
        "payload": {"feedProcessingFinishedNotification": {
            "sellerId": SELLER, "feedId": feed_id, "feedType": "JSON_LISTINGS_FEED",
            "processingStatus": "DONE", "resultFeedDocumentId": "doc-1"
        }},
        "notificationMetadata": {
            "applicationId": "amzn1.sellerapps.app.test", "subscriptionId": "sub-2",
            "publishTime": "2026-12-02T01:02:04.000Z", "notificationId": notification_id
        }
    })
    .to_string()
}

async fn shop(pool: &PgPool) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    store::shops::insert(
        &mut conn,
        &crypto::Keyring::for_testing(),
        &store::shops::NewShop::japan_at(
            "acme-jp".parse::<ShopCode>().unwrap(),
            "Acme JP",
            SELLER,
            "http://127.0.0.1:9",
        ),
    )
    .await
    .unwrap()
    .shop
    .id
}

async fn commands(pool: &PgPool) -> Vec<Command> {
    let rows: Vec<(Value,)> = sqlx::query_as("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(v,)| serde_json::from_value(v).unwrap())
        .collect()
}

/// Sends `bodies` to the queue at `url`.
async fn send(client: &aws_sdk_sqs::Client, url: &str, bodies: &[String]) {
    for body in bodies {
        client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

/// A listener on `url` (short long-polls), its poison going to `dlq`.
fn listener(pool: &PgPool, client: &aws_sdk_sqs::Client, url: &str, dlq: Option<&str>) -> Listener {
    Listener::new(
        pool.clone(),
        client.clone(),
        bus::Topology::new("nl-test.", 5),
        Settings {
            queue_url: url.to_owned(),
            dead_letter_queue_url: dlq.map(str::to_owned),
            wait_seconds: 1,
            max_messages: 10,
            visibility_timeout: 30,
        },
    )
}

/// Polls until the queue gives nothing for one short long-poll.
async fn drain(listener: &Listener) -> Polled {
    let mut total = Polled::default();
    for _ in 0..20 {
        let p = listener.poll_once().await.expect("poll");
        if p.received == 0 {
            return total;
        }
        total.received += p.received;
        total.queued += p.queued;
        total.commands += p.commands;
        total.duplicates += p.duplicates;
        total.ignored += p.ignored;
        total.poison += p.poison;
    }
    panic!("the queue did not drain: {total:?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn notifications_become_commands_once(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let feed_submission: Uuid = sqlx::query_scalar(
        "INSERT INTO feed_submissions (id, shop_id, feed_type, marketplace_ids, state, amazon_feed_id)
         VALUES ($1, $2, 'JSON_LISTINGS_FEED', '{A1VC38T7YXB528}', 'submitted', '987654') RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(shop_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let client = sqs();
    let url = queue(&client, "in").await;
    let dlq = queue(&client, "dlq").await;
    let (a, b, c) = (
        "503-0000001-0000001",
        "503-0000002-0000002",
        "503-0000003-0000003",
    );
    // Out of order, one delivered twice, one not ours, one unreadable, one feed result, one
    // type the connector does not act on.
    let bodies = [
        order_change("n-c", SELLER, c, "Canceled"),
        order_change("n-a", SELLER, a, "Unshipped"),
        order_change("n-b", SELLER, b, "Unshipped"),
        order_change("n-a", SELLER, a, "Unshipped"),
        order_change("n-x", "A9OTHERSELLER", "503-0000009-0000009", "Unshipped"),
        "{\"not\": \"a notification\"".to_owned(),
        feed_finished("n-f", "987654"),
        json!({"NotificationType": "ANY_OFFER_CHANGED", "Payload": {}, "NotificationMetadata": {"NotificationId": "n-o"}}).to_string(),
    ];
    send(&client, &url, &bodies).await;
    let listener = listener(&pool, &client, &url, Some(&dlq));
    let p = drain(&listener).await;
    assert_eq!(
        (p.received, p.queued, p.duplicates, p.ignored, p.poison),
        (8, 4, 1, 2, 1),
        "{p:?}"
    );

    // The orders went to status-sync (grouped per receive), each id once in all; the feed to
    // feed-poller.
    let cmds = commands(&pool).await;
    let mut ids: Vec<String> = Vec::new();
    let mut polls = Vec::new();
    for cmd in &cmds {
        assert_eq!(cmd.shop_id, shop_id);
        assert_eq!(cmd.requested_by, "notification");
        cmd.validate(chrono::Utc::now()).expect("valid command");
        match &cmd.params {
            CommandParams::StatusSyncOrders { order_ids } => ids.extend(order_ids.clone()),
            CommandParams::FeedPoll { feed_submission_id } => polls.push(*feed_submission_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    ids.sort();
    assert_eq!(ids, vec![a, b, c]);
    assert_eq!(polls, vec![Some(feed_submission)]);
    assert_eq!(cmds.len(), p.commands);

    // Recorded once each, with what became of them.
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT notification_id, outcome, reason FROM notifications_received ORDER BY notification_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|(id, o, _)| (id.as_str(), o.as_str()))
        .filter(|(id, _)| !id.starts_with("sqs:"))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("n-a", "queued"),
            ("n-b", "queued"),
            ("n-c", "queued"),
            ("n-f", "queued"),
            ("n-o", "ignored"),
            ("n-x", "ignored"),
        ]
    );
    let poison: Vec<&(String, String, Option<String>)> =
        rows.iter().filter(|(_, o, _)| o == "poison").collect();
    assert_eq!(poison.len(), 1);
    assert!(
        poison[0]
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("not JSON"),
        "{poison:?}"
    );

    // Nothing is left in the queue; the poison waits in the dead-letter queue with its reason.
    let left = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(left.messages.unwrap_or_default().is_empty());
    let dead = client
        .receive_message()
        .queue_url(&dlq)
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    let reason = dead[0]
        .message_attributes
        .as_ref()
        .and_then(|a| a.get("reason"))
        .and_then(|v| v.string_value.clone())
        .unwrap_or_default();
    assert!(reason.contains("not JSON"), "{reason}");

    // The same notifications delivered again (a listener killed before it deleted them):
    // recorded already, nothing new is written.
    send(&client, &url, &bodies[..3]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = drain(&listener).await;
    assert_eq!(
        (again.received, again.duplicates, again.commands),
        (3, 3, 0),
        "{again:?}"
    );
    assert_eq!(commands(&pool).await.len(), cmds.len());
}

/// The order ids of the status-sync `orders` commands written, sorted.
async fn announced_orders(pool: &PgPool) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for cmd in commands(pool).await {
        match cmd.params {
            CommandParams::StatusSyncOrders { order_ids } => ids.extend(order_ids),
            other => panic!("unexpected {other:?}"),
        }
    }
    ids.sort();
    ids
}

/// A notification's recorded outcome and reason.
async fn outcome(pool: &PgPool, notification_id: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT outcome, reason FROM notifications_received WHERE notification_id = $1")
        .bind(notification_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The notification of the connector's own shipment confirmation (Amazon now `Shipped`, the
/// instruction shipped here) asks for nothing: no command, no `getOrder`; a `Shipped` for an
/// instruction not shipped here, or a buyer's request on a shipped one, still goes to
/// status-sync.
#[sqlx::test(migrations = "../../migrations")]
async fn own_shipment_confirmations_cost_no_get_order(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let (ours, open, asked) = (
        "503-0000011-0000011",
        "503-0000012-0000012",
        "503-0000013-0000013",
    );
    for (order, status) in [
        (ours, "shipped"),
        (open, "awaiting_shipment"),
        (asked, "shipped"),
    ] {
        sqlx::query(
            "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, status) VALUES ($1, $2, $3, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(shop_id)
        .bind(order)
        .bind(status)
        .execute(&pool)
        .await
        .unwrap();
    }
    let client = sqs();
    let url = queue(&client, "shipped").await;
    let request = order_change("n-r", SELLER, asked, "Shipped")
        .replace("\"OrderStatusChange\"", "\"BuyerRequestedChange\"");
    let bodies = [
        order_change("n-s", SELLER, ours, "Shipped"),
        order_change("n-o", SELLER, open, "Shipped"),
        request,
    ];
    send(&client, &url, &bodies).await;
    let listener = listener(&pool, &client, &url, None);
    let p = drain(&listener).await;
    assert_eq!((p.received, p.queued, p.ignored), (3, 2, 1), "{p:?}");
    let ids = announced_orders(&pool).await;
    assert_eq!(ids, vec![open, asked]);
    let (outcome, reason) = outcome(&pool, "n-s").await;
    assert_eq!(outcome, "ignored");
    assert!(reason.unwrap_or_default().contains("own"));
}

/// Issue 20: should Amazon announce a brand-new order (no instruction yet, PENDING or UNSHIPPED,
/// placed within the hour), the listener leaves it to order-ingest's new-orders poll: no
/// command, no `getOrder`. An unknown order placed long ago (an import that failed, say) and a
/// known order's payment still go to status-sync.
#[sqlx::test(migrations = "../../migrations")]
async fn new_orders_are_left_to_the_new_orders_poll(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let (new, old, known) = (
        "503-0000021-0000021",
        "503-0000022-0000022",
        "503-0000023-0000023",
    );
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, status) VALUES ($1, $2, $3, 'hold')",
    )
    .bind(Uuid::now_v7())
    .bind(shop_id)
    .bind(known)
    .execute(&pool)
    .await
    .unwrap();
    let placed = |body: String, at: &str| {
        body.replace(
            "\"FulfillmentType\"",
            &format!("\"PurchaseDate\": \"{at}\", \"FulfillmentType\""),
        )
    };
    let client = sqs();
    let url = queue(&client, "new-orders").await;
    let bodies = [
        placed(
            order_change("n-new", SELLER, new, "Pending"),
            "2026-12-02T00:50:00.000Z",
        ),
        placed(
            order_change("n-old", SELLER, old, "Unshipped"),
            "2026-11-30T01:00:00.000Z",
        ),
        placed(
            order_change("n-known", SELLER, known, "Unshipped"),
            "2026-12-02T00:55:00.000Z",
        ),
    ];
    assert!(bodies.iter().all(|b| b.contains("PurchaseDate")));
    send(&client, &url, &bodies).await;
    let listener = listener(&pool, &client, &url, None);
    let p = drain(&listener).await;
    assert_eq!((p.received, p.queued, p.ignored), (3, 2, 1), "{p:?}");
    let ids = announced_orders(&pool).await;
    assert_eq!(ids, vec![old, known]);
    let (outcome, reason) = outcome(&pool, "n-new").await;
    assert_eq!(outcome, "ignored");
    assert!(
        reason.unwrap_or_default().contains("new-orders poll"),
        "the reason names where the order comes from"
    );
}
