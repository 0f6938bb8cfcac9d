//! feed-poller against the simulator and real PostgreSQL, called directly (no bus).

#[path = "../../shipment-feedback/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Fixture, fast_feedback, fixture, tracking12};
use domain::shop::ShipmentStrategy;
use sqlx::PgPool;
use uuid::Uuid;

fn poller(fx: &Fixture, settings: feed_poller::Settings) -> feed_poller::Poller {
    feed_poller::Poller::new(
        fx.pool.clone(),
        fx.keys.clone(),
        fx.api(),
        bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5),
        settings,
    )
}

fn fast() -> feed_poller::Settings {
    feed_poller::Settings {
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Polls (as the scheduled commands would) until no feed is open.
async fn poll_until_final(fx: &Fixture, p: &feed_poller::Poller) {
    for _ in 0..100 {
        p.poll(fx.shop.id, None).await.unwrap();
        if fx
            .count("SELECT count(*) FROM feed_submissions WHERE state = 'submitted'")
            .await
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("feeds not final in time");
}

/// A Japanese (Shift_JIS / CP932, gzip) processing report: Amazon's messages reach the API log
/// and the instruction as readable Japanese.
#[sqlx::test(migrations = "../../migrations")]
async fn cp932_processing_report_is_readable_japanese_in_api_log(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let ok = fx.sim_order();
    let cancelled = fx.sim_order();
    let i_ok = fx
        .shipped_instruction(&ok, yamato, &[&tracking12(1)], fx.today())
        .await;
    let i_cancelled = fx
        .shipped_instruction(&cancelled, yamato, &[&tracking12(2)], fx.today())
        .await;
    fx.sim
        .sim()
        .set_order_status(
            &cancelled.order_id,
            spapi_sim::StatusChange::Cancelled {
                cancelled_by: None,
                reason: None,
            },
        )
        .unwrap();
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    fx.wait_sim_feeds_done().await;
    assert!(
        fx.sim.sim().feeds()[0]
            .result_content_type
            .as_deref()
            .unwrap()
            .contains("Shift_JIS"),
        "the simulator served a CP932 report"
    );
    poll_until_final(&fx, &poller(&fx, fast())).await;

    let expected = format!(
        "注文番号 {} はキャンセルされているため出荷できません。",
        cancelled.order_id
    );
    let (level, message): (String, String) = sqlx::query_as(
        "SELECT level, message FROM api_log WHERE action = 'feed-poller' AND amazon_order_id = $1",
    )
    .bind(&cancelled.order_id)
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert_eq!(level, "error");
    assert_eq!(message, expected);
    assert!(!message.contains('\u{FFFD}'));
    let (status, error) = fx.api_status(i_cancelled).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap().contains(&expected));
    assert_eq!(fx.api_status(i_ok).await.0, "shipped");
    let code: Option<String> =
        sqlx::query_scalar("SELECT result_code FROM feed_messages WHERE amazon_order_id = $1")
            .bind(&cancelled.order_id)
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(code.as_deref(), Some("18083"));
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'feed_done' AND details->>'report_encoding' = 'Shift_JIS'").await,
        1
    );
    // feed.processed went to the outbox with the counts.
    let event: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE routing_key = 'feed.processed'")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(
        (event["succeeded"].as_u64(), event["failed"].as_u64()),
        (Some(1), Some(1))
    );
}

/// A CANCELLED feed fails every message with the reason; nothing is shipped.
#[sqlx::test(migrations = "../../migrations")]
async fn cancelled_feed_fails_every_message(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let mut opts = fx.sim.sim().options();
    opts.feed_processing_ms = 30_000;
    fx.sim.sim().set_options(opts).unwrap();
    let sagawa = fx
        .delivery_method("sagawa", "飛脚宅配便", Some("sagawa"))
        .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let o = fx.sim_order();
        ids.push(
            fx.shipped_instruction(&o, sagawa, &[&tracking12(i)], fx.today())
                .await,
        );
    }
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    let feed_id = fx.sim.sim().feeds()[0].feed_id.clone();
    // The seller cancels it while IN_QUEUE.
    let base = fx.sim.base_url();
    let shop_api = fx.api().shop(
        spapi::ShopConfig::new(
            spapi_sim::DEFAULT_SELLER_ID,
            spapi::Credentials::new("c", "s", "r"),
        )
        .with_endpoints(spapi::Endpoints::simulator(&base).unwrap()),
    );
    shop_api.cancel_feed(&feed_id).await.unwrap();
    poll_until_final(&fx, &poller(&fx, fast())).await;

    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'cancelled'")
            .await,
        1
    );
    for id in ids {
        let (status, error) = fx.api_status(id).await;
        assert_eq!(status, "failed");
        assert!(error.unwrap().contains("CANCELLED"));
    }
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_messages WHERE result = 'error'")
            .await,
        3
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE action = 'feed-poller' AND code = 'CANCELLED' AND level = 'error'").await,
        3
    );
}

/// A feed still processing is re-polled through the outbox with a growing delay stored in
/// Postgres; after `stuck_after` it is flagged once as stuck.
#[sqlx::test(migrations = "../../migrations")]
async fn slow_feed_is_rescheduled_and_flagged_stuck_once(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let mut opts = fx.sim.sim().options();
    opts.feed_processing_ms = 600_000;
    fx.sim.sim().set_options(opts).unwrap();
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let o = fx.sim_order();
    fx.shipped_instruction(&o, yamato, &[&tracking12(5)], fx.today())
        .await;
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    let p = poller(
        &fx,
        feed_poller::Settings {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(60),
            stuck_after: chrono::Duration::zero(),
            ..Default::default()
        },
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let first = p.poll(fx.shop.id, None).await.unwrap();
    assert_eq!((first.polled, first.still_processing), (1, 1));
    // Not due yet: a duplicate trigger does nothing.
    let dup = p.poll(fx.shop.id, None).await.unwrap();
    assert_eq!(dup.polled, 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = p.poll(fx.shop.id, None).await.unwrap();
    assert_eq!(second.polled, 1);

    let (attempts, delay_ms): (i32, f64) = sqlx::query_as(
        "SELECT poll_attempts, (EXTRACT(EPOCH FROM (next_poll_at - now())) * 1000)::float8 FROM feed_submissions",
    )
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 2);
    assert!(
        delay_ms > 300.0 && delay_ms <= 400.0,
        "the second delay doubles the first (200 ms): {delay_ms}"
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM outbox WHERE routing_key = 'feed-poller' AND payload->'params'->>'kind' = 'feed_poll'").await,
        2,
        "each re-poll is a command scheduled with not_before"
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'feed_stuck' AND level = 'attention'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'submitted'")
            .await,
        1
    );
}

/// Inventory results (rows with an external product) set the SKU's push state.
#[sqlx::test(migrations = "../../migrations")]
async fn inventory_results_set_push_state(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    fx.sim.sim().put_listing("SKU-A", 3, None);
    let product = Uuid::now_v7();
    sqlx::query("INSERT INTO products (id, shop_id, code, name) VALUES ($1, $2, 'P1', 'Product')")
        .bind(product)
        .bind(fx.shop.id)
        .execute(&fx.pool)
        .await
        .unwrap();
    let mut eps = Vec::new();
    for sku in ["SKU-A", "SKU-MISSING"] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO external_products (id, shop_id, sku, product_id, push_state, pushed_change_seq) VALUES ($1, $2, $3, $4, 'sent', 7)",
        )
        .bind(id)
        .bind(fx.shop.id)
        .bind(sku)
        .bind(product)
        .execute(&fx.pool)
        .await
        .unwrap();
        eps.push((id, sku));
    }
    // What inventory-sync does: build, record, submit.
    let built = spapi::listings_feed::build_listings_feeds(
        spapi_sim::DEFAULT_SELLER_ID,
        eps.iter().map(|(id, sku)| {
            (
                *id,
                spapi::listings_feed::InventoryUpdate {
                    sku: sku.to_string(),
                    quantity: 5,
                    handling_days: None,
                    default_handling_time: false,
                    product_type: None,
                },
            )
        }),
        &Default::default(),
    );
    let feed = &built.feeds[0];
    let messages: Vec<store::feeds::NewMessage> = feed
        .messages
        .iter()
        .map(|m| store::feeds::NewMessage {
            message_id: m.message_id as i64,
            external_product_id: Some(m.key),
            sku: Some(m.sku.clone()),
            quantity: Some(5),
            change_seq: Some(7),
            ..Default::default()
        })
        .collect();
    let mut conn = fx.pool.acquire().await.unwrap();
    let sub = store::feeds::insert(
        &mut conn,
        fx.shop.id,
        None,
        spapi::feeds::JSON_LISTINGS_FEED,
        &["A1VC38T7YXB528".to_owned()],
        "x",
        &messages,
    )
    .await
    .unwrap();
    let base = fx.sim.base_url();
    let shop_api = fx.api().shop(
        spapi::ShopConfig::new(
            spapi_sim::DEFAULT_SELLER_ID,
            spapi::Credentials::new("c", "s", "r"),
        )
        .with_endpoints(spapi::Endpoints::simulator(&base).unwrap()),
    );
    let doc = shop_api
        .prepare_feed_document(
            spapi::feeds::JSON_CONTENT_TYPE,
            feed.json.clone().into_bytes(),
        )
        .await
        .unwrap();
    let created = shop_api
        .create_feed(&spapi::feeds::CreateFeedSpecification {
            feed_type: spapi::feeds::JSON_LISTINGS_FEED.into(),
            marketplace_ids: vec!["A1VC38T7YXB528".into()],
            input_feed_document_id: doc.feed_document_id,
            feed_options: None,
        })
        .await
        .unwrap();
    store::feeds::mark_submitted(&mut conn, sub, &created.feed_id, chrono::Utc::now())
        .await
        .unwrap();
    drop(conn);
    poll_until_final(&fx, &poller(&fx, fast())).await;

    let states: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT sku, push_state, push_error FROM external_products ORDER BY sku")
            .fetch_all(&fx.pool)
            .await
            .unwrap();
    assert_eq!(
        (states[0].0.as_str(), states[0].1.as_str()),
        ("SKU-A", "confirmed")
    );
    assert_eq!(
        (states[1].0.as_str(), states[1].1.as_str()),
        ("SKU-MISSING", "failed")
    );
    assert!(states[1].2.as_deref().unwrap().contains("SKU-MISSING"));
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE action = 'feed-poller' AND sku = 'SKU-MISSING' AND level = 'error'").await,
        1
    );
    assert_eq!(fx.sim.sim().listing("SKU-A").unwrap().quantity, Some(5));
}

/// A shipment Amazon refused is re-sendable after the data is fixed (`ctl resend-shipment`),
/// even when its ship date is not today.
#[sqlx::test(migrations = "../../migrations")]
async fn failed_shipment_is_resent_after_fix(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    // A shop mapping without a tracking pattern lets a number through that Amazon refuses.
    let mut conn = fx.pool.acquire().await.unwrap();
    store::carriers::upsert(
        &mut conn,
        &store::carriers::NewMapping {
            shop_id: Some(fx.shop.id),
            external_delivery_method: "yamato",
            carrier_code: "YamatoTransport",
            carrier_name: None,
            tracking_pattern: None,
            marketplaces: None,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let o = fx.sim_order_created(chrono::Duration::days(3));
    let id = fx
        .shipped_instruction(&o, yamato, &["ABC123"], fx.today())
        .await;
    let service = fx.service(fast_feedback());
    service.run(fx.shop.id, None, "test").await.unwrap();
    let p = poller(&fx, fast());
    poll_until_final(&fx, &p).await;
    let (status, error) = fx.api_status(id).await;
    assert_eq!(status, "failed");
    assert!(!error.unwrap().is_empty());

    // The operator fixes the tracking number (and it is now another day) and resends.
    sqlx::query(
        "UPDATE shipping_instructions SET tracking_numbers = $2, shipped_on = shipped_on - 1 WHERE id = $1",
    )
    .bind(id)
    .bind(vec![tracking12(9)])
    .execute(&fx.pool)
    .await
    .unwrap();
    let not_today = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(
        not_today.targets, 0,
        "failed instructions are not resent by themselves"
    );
    sqlx::query(
        "UPDATE shipping_instructions SET api_status = 'awaiting_print', api_error = NULL, resend_requested_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&fx.pool)
    .await
    .unwrap();
    let resent = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(resent.sent, 1);
    poll_until_final(&fx, &p).await;
    assert_eq!(fx.api_status(id).await, ("shipped".into(), None));
    let pk = fx.sim.sim().order(&o.order_id).unwrap().packages;
    assert_eq!(pk.len(), 1);
    assert_eq!(pk[0].tracking_number, tracking12(9));
}

/// Amazon's warning that the order was already shipped counts as success: 出荷済み.
#[sqlx::test(migrations = "../../migrations")]
async fn already_shipped_warning_counts_as_success(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let shipped = fx
        .sim
        .sim()
        .create_order(spapi_sim::OrderSpec {
            status: Some(spapi_sim::OrderStatus::Shipped),
            ..Default::default()
        })
        .unwrap();
    let id = fx
        .shipped_instruction(&shipped, yamato, &[&tracking12(7)], fx.today())
        .await;
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx, &poller(&fx, fast())).await;

    assert_eq!(fx.api_status(id).await, ("shipped".into(), None));
    let (level, code, message): (String, Option<String>, String) = sqlx::query_as(
        "SELECT level, code, message FROM api_log WHERE action = 'feed-poller' AND amazon_order_id = $1",
    )
    .bind(&shipped.order_id)
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert_eq!(
        (level.as_str(), code.as_deref()),
        ("warning", Some("18084"))
    );
    assert!(message.contains("出荷済み"), "{message}");
    let result: String = sqlx::query_scalar("SELECT result FROM feed_messages")
        .fetch_one(&fx.pool)
        .await
        .unwrap();
    assert_eq!(result, "warning");
}

/// Issue 17, item 7: a feed Amazon reports DONE without a result document is not all success.
/// A report that comes on a later poll is applied as usual; one that never comes leaves the
/// shipment 印刷済み (sent, unconfirmed) with an attention entry saying what to check.
#[sqlx::test(migrations = "../../migrations")]
async fn done_without_a_report_is_asked_again_then_left_unconfirmed(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let settings = feed_poller::Settings {
        missing_report_polls: 3,
        ..fast()
    };

    // The report comes on the third DONE answer: applied, confirmed.
    fx.sim.sim().withhold_feed_reports(2);
    let late_report = fx.sim_order();
    let i_late = fx
        .shipped_instruction(&late_report, yamato, &[&tracking12(1)], fx.today())
        .await;
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx, &poller(&fx, settings.clone())).await;
    assert_eq!(fx.api_status(i_late).await.0, "shipped");
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'done' AND missing_report_polls = 2")
            .await,
        1
    );

    // The report never comes: not applied as success.
    fx.sim.sim().withhold_feed_reports(u32::MAX);
    let no_report = fx.sim_order();
    let i_none = fx
        .shipped_instruction(&no_report, yamato, &[&tracking12(2)], fx.today())
        .await;
    fx.service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx, &poller(&fx, settings)).await;
    assert_eq!(fx.api_status(i_none).await.0, "printed", "unconfirmed");
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'failed' AND missing_report_polls = 4 AND error LIKE '%no processing report%'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'report_missing' AND level = 'attention' AND message LIKE '%Seller Central%'")
            .await,
        1
    );
    let result: Option<String> =
        sqlx::query_scalar("SELECT result FROM feed_messages WHERE amazon_order_id = $1")
            .bind(&no_report.order_id)
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(
        result.as_deref(),
        Some("pending"),
        "no result recorded for an unknown outcome"
    );
}
