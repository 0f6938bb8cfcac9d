//! The order mirror (issue 20) against the simulator, real PostgreSQL and RabbitMQ: order-ingest
//! (differential) and status-sync (changes) read one `lastUpdatedAfter` poll per shop, so a
//! change Amazon reports is fetched by one of them and applied for both (status-sync's poll
//! imports the new orders it finds) or read by the other from the database; a
//! poll whose process dies mid-page resumes from the last committed page without losing or
//! repeating an order.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use domain::shop::Shop;
use domain::window::ImportMode;
use orders::mirror::{self, Poller, Position, Reader, Settings};
use spapi_sim::{MarketplaceMix, OrderSpec, OrderStatus, StatusChange};
use sqlx::PgPool;
use store::runs::Tally;
use system_tests::{Svc, System};
use uuid::Uuid;

const JP: MarketplaceMix = MarketplaceMix {
    jp: 1,
    au: 0,
    sg: 0,
    pending_ratio: 0.5,
};

/// The keyring, shop and SP-API handle a mirror poller of `shop_id` works with.
async fn shop_api(sys: &System, shop_id: Uuid) -> (crypto::Keyring, Shop, spapi::Shop) {
    let keys = crypto::Keyring::for_testing();
    let client = runtime::spapi_client(&sys.pool, 1e6, Duration::from_millis(500)).unwrap();
    let mut conn = sys.pool.acquire().await.unwrap();
    let shop = store::shops::get(&mut conn, shop_id).await.unwrap().shop;
    let api = runtime::shop_api(&mut conn, &keys, &client, &shop)
        .await
        .unwrap();
    (keys, shop, api)
}

async fn count(sys: &System, sql: &str, shop: Uuid) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(shop)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

fn search_orders_calls(sys: &System) -> u64 {
    let counts = sys.sim.sim().call_counts();
    counts.get("searchOrders").map_or(0, |c| c.calls)
}

async fn instruction(sys: &System, shop: Uuid, order: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "SELECT status, payment_status FROM shipping_instructions
          WHERE shop_id = $1 AND amazon_order_id = $2",
    )
    .bind(shop)
    .bind(order)
    .fetch_optional(&sys.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn ingest_and_status_sync_never_both_fetch_the_same_change(pool: PgPool) {
    let mut sys = System::new(pool).await;
    // As deployed: a run finding the shop polled less than this ago reads the mirror only.
    sys.mirror_min_interval = chrono::Duration::hours(1);
    sys.start(Svc::OrderIngest);
    sys.start(Svc::StatusSync);
    let shop = sys.a().id;
    let sim = sys.sim.sim();
    let orders = sim.generate_orders(30, 7, JP);
    let pending: Vec<String> = orders
        .iter()
        .filter(|o| o.status == OrderStatus::Pending)
        .map(|o| o.order_id.clone())
        .collect();
    assert!(
        pending.len() >= 7,
        "the mix gives pending orders to pay and cancel"
    );
    // An order shipped already (outside the connector): neither reader acts on it, the poll
    // does not ask for it.
    let shipped = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Shipped),
            ..Default::default()
        })
        .unwrap();

    // 1. order-ingest polls (pages of 20) and imports every order.
    let run = sys.ingest(shop, ImportMode::Differential).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let polled = search_orders_calls(&sys);
    assert_eq!(polled, 2, "30 changed orders, pages of 20");
    let imported = count(
        &sys,
        "SELECT count(*) FROM shipping_instructions WHERE shop_id = $1",
        shop,
    )
    .await;
    assert_eq!(imported, 30);
    let mirrored = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1",
        shop,
    )
    .await;
    assert_eq!(
        mirrored, 30,
        "the shipped order {} is not polled",
        shipped.order_id
    );

    // 2. status-sync right after: the poll is fresh, it reads the mirror and calls nobody.
    let run = sys.status_sync(shop).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(
        search_orders_calls(&sys),
        polled,
        "status-sync fetched again"
    );
    assert_eq!(run.amazon_calls, 0);

    // 3. Amazon: three pending orders paid, two cancelled, one new order. An hour passes
    //    (the last poll moved back), status-sync polls once and applies them.
    for id in &pending[..3] {
        sim.set_order_status(id, StatusChange::Unshipped).unwrap();
    }
    for id in &pending[3..5] {
        let cancel = StatusChange::Cancelled {
            cancelled_by: Some("BUYER".into()),
            reason: None,
        };
        sim.set_order_status(id, cancel).unwrap();
    }
    let new = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();
    sqlx::query("UPDATE order_mirror_cursors SET polled_at = polled_at - interval '2 hours'")
        .execute(&sys.pool)
        .await
        .unwrap();
    let run = sys.status_sync(shop).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(
        search_orders_calls(&sys),
        polled + 1,
        "one poll by status-sync"
    );
    for id in &pending[..3] {
        let (_, payment) = instruction(&sys, shop, id).await.unwrap();
        assert_eq!(payment, "paid", "{id}");
    }
    for id in &pending[3..5] {
        let (status, _) = instruction(&sys, shop, id).await.unwrap();
        assert_eq!(status, "canceled", "{id}");
    }
    // status-sync's poll imported the new order too (as order-ingest would).
    let (status, payment) = instruction(&sys, shop, &new.order_id).await.unwrap();
    assert_eq!(
        (status.as_str(), payment.as_str()),
        ("awaiting_shipment", "paid")
    );
    assert_eq!(run.counts["imported"], 1, "{:?}", run.counts);

    // 4. order-ingest: the poll is fresh and status-sync did its work; no call, nothing new.
    let run = sys.ingest(shop, ImportMode::Differential).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(
        search_orders_calls(&sys),
        polled + 1,
        "order-ingest fetched again"
    );
    assert_eq!(run.counts["new"], 0, "{:?}", run.counts);
    // The cancelled ones were not imported again, the paid ones not duplicated.
    let total = count(
        &sys,
        "SELECT count(*) FROM shipping_instructions WHERE shop_id = $1",
        shop,
    )
    .await;
    assert_eq!(total, 31);

    // 5. Amazon cancels one more order and a buyer pays another; order-ingest polls this time
    //    (its page fills the payment in) and status-sync, right after, cancels from the mirror
    //    without a call.
    let cancel = StatusChange::Cancelled {
        cancelled_by: Some("BUYER".into()),
        reason: None,
    };
    sim.set_order_status(&pending[5], cancel).unwrap();
    if let Some(id) = pending.get(6) {
        sim.set_order_status(id, StatusChange::Unshipped).unwrap();
    }
    sqlx::query("UPDATE order_mirror_cursors SET polled_at = polled_at - interval '2 hours'")
        .execute(&sys.pool)
        .await
        .unwrap();
    let run = sys.ingest(shop, ImportMode::Differential).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(
        search_orders_calls(&sys),
        polled + 2,
        "one poll by order-ingest"
    );
    let run = sys.status_sync(shop).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(
        search_orders_calls(&sys),
        polled + 2,
        "status-sync fetched again"
    );
    let (status, _) = instruction(&sys, shop, &pending[5]).await.unwrap();
    assert_eq!(status, "canceled", "cancelled from order-ingest's poll");
    if let Some(id) = pending.get(6) {
        let (_, payment) = instruction(&sys, shop, id).await.unwrap();
        assert_eq!(payment, "paid", "{id}");
    }

    // Every version was applied by each reader that needs it, and no sealed order is kept
    // once both have.
    let unapplied = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1
                AND (sync_version IS DISTINCT FROM last_updated_time
                     OR (importable AND ingest_version IS DISTINCT FROM last_updated_time))",
        shop,
    )
    .await;
    assert_eq!(unapplied, 0);
    let kept = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1 AND payload IS NOT NULL",
        shop,
    )
    .await;
    assert_eq!(kept, 0);
    sys.shutdown().await;
}

/// The poll as order-ingest steps through it, with the process killed mid-page: the page was
/// fetched and written in its transaction, which never commits (PostgreSQL rolls back a dead
/// connection's transaction). The next process continues from the last committed page: every
/// order applied exactly once.
#[sqlx::test(migrations = "../../migrations")]
async fn a_poll_killed_mid_page_resumes_without_loss_or_duplicates(pool: PgPool) {
    let sys = System::new(pool).await;
    let shop_id = sys.a().id;
    let all_unshipped = MarketplaceMix {
        pending_ratio: 0.0,
        ..JP
    };
    let generated = sys.sim.sim().generate_orders(250, 11, all_unshipped);
    let (keys, shop, api) = shop_api(&sys, shop_id).await;
    let poller = Poller {
        keys: &keys,
        api: &api,
        shop: &shop,
        reader: Reader::Ingest,
        settings: Settings {
            page_size: 100,
            min_interval: chrono::Duration::zero(),
            statuses: &orders::mirror::POLLED_STATUSES,
        },
    };
    let mut tally = Tally::default();
    let mut applied: BTreeMap<String, u32> = BTreeMap::new();
    // One step as order-ingest takes it: the next batch, applied (counted here), marked; the
    // transaction is committed, or dropped uncommitted as by a process killed before its commit.
    let mut step = async |position: &mut Position, commit: bool| {
        let mut tx = sys.pool.begin().await.unwrap();
        let now = Utc::now();
        let batch = mirror::next_batch(&mut tx, &poller, position, &mut tally, now)
            .await
            .unwrap();
        mirror::applied(&mut tx, &poller, &batch, &HashSet::new())
            .await
            .unwrap();
        if commit {
            for o in &batch.orders {
                *applied.entry(o.order_id.clone()).or_default() += 1;
            }
            tx.commit().await.unwrap();
        }
        batch
    };

    // Page 1, committed.
    let mut position = Position::default();
    let batch = step(&mut position, true).await;
    assert!(batch.fetched && !batch.last);
    // Page 2, fetched and written; the process dies before its commit.
    let lost = step(&mut position.clone(), false).await;
    assert_eq!(lost.orders.len(), 100);
    let rows = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1",
        shop_id,
    )
    .await;
    assert_eq!(rows, 100, "only the committed page is in the mirror");
    // The next process resumes from the stored page token.
    while !step(&mut position, true).await.last {}
    assert_eq!(applied.len(), 250, "no order lost");
    assert!(applied.values().all(|n| *n == 1), "an order applied twice");
    for o in &generated {
        assert!(applied.contains_key(&o.order_id), "{} lost", o.order_id);
    }
    // Pages: 1, 2 (lost), 2 again, 3.
    assert_eq!(tally.calls.get("searchOrders"), Some(&4));
    let rows = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1",
        shop_id,
    )
    .await;
    assert_eq!(rows, 250);
    let in_progress = count(
        &sys,
        "SELECT count(*) FROM order_mirror_cursors WHERE shop_id = $1 AND next_token IS NOT NULL",
        shop_id,
    )
    .await;
    assert_eq!(in_progress, 0, "the poll finished");
    sys.shutdown().await;
}

/// A full poll in progress (order-ingest's, page token stored) when the shop subscribes to
/// notifications: status-sync's sweep, which starts its own polls with cancellations only,
/// finishes it with the statuses it began with (Amazon refuses a page token with other
/// filters), and its next poll asks for cancellations only.
#[sqlx::test(migrations = "../../migrations")]
async fn a_poll_in_progress_is_finished_with_the_statuses_it_began_with(pool: PgPool) {
    let sys = System::new(pool).await;
    let shop_id = sys.a().id;
    let all_unshipped = MarketplaceMix {
        pending_ratio: 0.0,
        ..JP
    };
    sys.sim.sim().generate_orders(150, 12, all_unshipped);
    let (keys, shop, api) = shop_api(&sys, shop_id).await;
    let poller = |reader: Reader, statuses: &'static [spapi::orders::FulfillmentStatus]| Poller {
        keys: &keys,
        api: &api,
        shop: &shop,
        reader,
        settings: Settings {
            page_size: 100,
            min_interval: chrono::Duration::zero(),
            statuses,
        },
    };
    let ingest = poller(Reader::Ingest, &mirror::POLLED_STATUSES);
    let sweep = poller(Reader::Sync, &mirror::SWEPT_STATUSES);
    let mut tally = Tally::default();
    let step = async |p: &Poller<'_>, tally: &mut Tally| {
        let mut tx = sys.pool.begin().await.unwrap();
        let batch = mirror::next_batch(&mut tx, p, &mut Position::default(), tally, Utc::now())
            .await
            .unwrap();
        mirror::applied(&mut tx, p, &batch, &HashSet::new())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        batch
    };
    // order-ingest's full poll: page 1 of 2.
    let first = step(&ingest, &mut tally).await;
    assert!(first.fetched && first.orders.len() == 100);
    // The sweep continues it: page 2 holds the other 50 unshipped orders (a poll of
    // cancellations only would hold none).
    let second = step(&sweep, &mut tally).await;
    assert!(second.fetched, "{second:?}");
    assert_eq!(second.orders.len(), 50);
    let rows = count(
        &sys,
        "SELECT count(*) FROM order_mirror WHERE shop_id = $1",
        shop_id,
    )
    .await;
    assert_eq!(rows, 150);
    // The sweep's own next poll asks for cancellations only: none.
    sqlx::query(
        "UPDATE order_mirror_cursors SET polled_at = now() - interval '1 hour' WHERE shop_id = $1",
    )
    .bind(shop_id)
    .execute(&sys.pool)
    .await
    .unwrap();
    let third = step(&sweep, &mut tally).await;
    assert!(third.fetched && third.orders.is_empty(), "{third:?}");
    assert_eq!(tally.calls.get("searchOrders"), Some(&3));
    sys.shutdown().await;
}

/// A buyer asks to cancel before the order was ever imported: status-sync's poll imports it
/// and puts it on hold with the request in the same transaction, so it is never allocated.
#[sqlx::test(migrations = "../../migrations")]
async fn an_order_requested_for_cancellation_before_import_is_imported_on_hold(pool: PgPool) {
    requested_before_import_is_held(pool, Svc::StatusSync).await;
}

/// The same through order-ingest's poll: imported on hold by order-ingest's own run, one
/// attention entry, and status-sync's next run (reading the mirror) adds none.
#[sqlx::test(migrations = "../../migrations")]
async fn order_ingest_imports_an_order_requested_for_cancellation_on_hold(pool: PgPool) {
    requested_before_import_is_held(pool, Svc::OrderIngest).await;
}

async fn requested_before_import_is_held(pool: PgPool, importer: Svc) {
    let mut sys = System::new(pool).await;
    sys.start(importer);
    sys.start(Svc::StatusSync);
    let shop = sys.a().id;
    let sim = sys.sim.sim();
    let order = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();
    let request = StatusChange::BuyerCancelRequested {
        reason: Some("Order Created By Mistake".into()),
    };
    sim.set_order_status(&order.order_id, request).unwrap();
    let run = match importer {
        Svc::OrderIngest => sys.ingest(shop, ImportMode::Differential).await,
        _ => sys.status_sync(shop).await,
    };
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let imported = match importer {
        Svc::OrderIngest => &run.counts["new"],
        _ => &run.counts["imported"],
    };
    assert_eq!(imported, 1, "{:?}", run.counts);
    let entries = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM api_log WHERE shop_id = $1 AND amazon_order_id = $2 AND code = 'buyer_cancellation_request'",
        )
        .bind(shop)
        .bind(&order.order_id)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
    };
    assert_eq!(entries().await, 1);
    if importer == Svc::OrderIngest {
        let run = sys.status_sync(shop).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(entries().await, 1, "status-sync wrote a second entry");
    }
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "SELECT status, hold_reason FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2",
    )
    .bind(shop)
    .bind(&order.order_id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("hold", Some("buyer_cancel_request"))
    );
    sys.shutdown().await;
}
