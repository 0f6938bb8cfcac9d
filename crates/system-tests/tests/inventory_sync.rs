//! inventory-sync (and feed-poller, which applies the results) against the simulator, real PostgreSQL and (first test) RabbitMQ.

mod inventory_fixture;

use std::time::Duration;

use bus::lapin::options::QueueDeclareOptions;
use bus::lapin::types::FieldTable;
use chrono::Utc;
use domain::Marketplace;
use domain::inventory::HandlingDays;
use domain::messages::{Action, Command, CommandParams};
use inventory_fixture::{AMAZON_LEAD_TIME, fixture, sku};
use inventory_sync::Settings;
use spapi_sim::{Fault, FaultTrigger};
use sqlx::PgPool;
use store::inventory;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn settings() -> Settings {
    Settings {
        first_poll_delay: chrono::Duration::seconds(1),
        retry_delay: chrono::Duration::seconds(5),
        ..Default::default()
    }
}

async fn ready(conn: &bus::lapin::Connection, queue: &str) -> u32 {
    let channel = conn.create_channel().await.unwrap();
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::durable().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = channel.close(200, "OK".into()).await;
    q.message_count()
}

/// Publishes an inventory-sync command through the outbox (as `ctl trigger` does) and waits
/// for its run to finish. Returns the run id.
async fn trigger(pool: &PgPool, topology: &bus::Topology, shop_id: Uuid, full: bool) -> Uuid {
    let cmd = Command::new(
        shop_id,
        Action::InventorySync,
        CommandParams::InventorySync { full },
        "test",
        Utc::now(),
    );
    let mut tx = pool.begin().await.unwrap();
    bus::outbox::enqueue(
        &mut tx,
        bus::OutboxMessage {
            id: cmd.message_id,
            ..bus::OutboxMessage::new(
                topology.commands_exchange(),
                "inventory-sync",
                serde_json::to_value(&cmd).unwrap(),
            )
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT id, status FROM action_runs WHERE command_id = $1 AND finished_at IS NOT NULL",
        )
        .bind(cmd.message_id)
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some((id, status)) = row {
            assert_eq!(status, "succeeded");
            return id;
        }
        assert!(std::time::Instant::now() < deadline, "run did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seed section 4 end to end through RabbitMQ: 1,000 mapped SKUs; 37 of them change (order
/// import reservations, a cancellation releasing stock, operator adjustments) → one feed of
/// exactly 37 messages; after the results Amazon shows the 37 new quantities, its own handling
/// time where none is set and ours where one is; a run with no change makes no Amazon call.
#[sqlx::test(migrations = "../../migrations")]
async fn thirty_seven_changed_skus_make_one_feed_of_37_and_no_change_makes_no_call(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(1000, 100, &[]).await;
    let mut conn = pool.acquire().await.unwrap();
    // Before the first run: open reservations a cancellation will release later, and one that
    // will be allocated (free stock unchanged: not a change to push).
    for i in 21..=25 {
        let p = fx.product(i).await;
        store::catalog::reserve(&mut conn, fx.shop.id, p, 2, "order 1")
            .await
            .unwrap();
    }
    let p50 = fx.product(50).await;
    store::catalog::reserve(&mut conn, fx.shop.id, p50, 1, "order 2")
        .await
        .unwrap();

    // The service behind RabbitMQ, and a queue standing in for feed-poller's.
    let prefix = format!("inv{}.", Uuid::now_v7().simple());
    let topology = bus::Topology::new(prefix.clone(), 5);
    let amqp = bus::connect(&inventory_fixture::amqp_url(), "inventory-sync-test")
        .await
        .unwrap();
    let setup = amqp.create_channel().await.unwrap();
    let watch = topology
        .declare_service(&setup, "feed-poller", &["feed.submitted"])
        .await
        .unwrap();
    let config = runtime::Config {
        database_url: inventory_fixture::database_url(&pool),
        amqp_url: inventory_fixture::amqp_url(),
        bus_prefix: prefix.clone(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        prefetch: 1,
        pool_size: 4,
        spapi_rate_scale: 1000.0,
    };
    let cancel = CancellationToken::new();
    let server = tokio::spawn(runtime::serve(
        inventory_sync::SERVICE,
        &[],
        config,
        fx.keys.clone(),
        cancel.clone(),
        |ctx| inventory_sync::Service::from_ctx(ctx).unwrap(),
    ));

    let result = async {
        // Run 1: nothing was ever pushed: all 1,000.
        let run1 = trigger(&pool, &topology, fx.shop.id, false).await;
        let subs = fx.submissions(run1).await;
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].2, 1000);
        let applied = fx.apply_results(run1).await;
        assert_eq!(applied.confirmed, 1000);

        // 37 changes: 20 order-import reservations, 5 releases (cancellation), 12 operator
        // adjustments and counts (no explicit change_seq: the trigger bumps it).
        for i in 1..=20 {
            let p = fx.product(i).await;
            store::catalog::reserve(&mut conn, fx.shop.id, p, 1, "order 3").await.unwrap();
        }
        for i in 21..=25 {
            let p = fx.product(i).await;
            store::catalog::release(&mut conn, fx.shop.id, p, 2, "order 1 canceled").await.unwrap();
        }
        for i in 26..=31 {
            let p = fx.product(i).await;
            inventory::adjust_on_hand(&mut conn, fx.shop.id, p, 4, Some("found in the back")).await.unwrap();
        }
        for i in 32..=37 {
            let p = fx.product(i).await;
            inventory::set_on_hand(&mut conn, fx.shop.id, p, 3, Some("count")).await.unwrap();
        }
        // Allocation moves reserved to allocated: free stock unchanged, nothing to push.
        sqlx::query("UPDATE stock SET reserved = reserved - 1, allocated = allocated + 1 WHERE product_id = $1")
            .bind(p50)
            .execute(&mut *conn)
            .await
            .unwrap();
        // Handling time set on three of the changed SKUs.
        for i in [1, 2, 3] {
            inventory::set_handling_days(&mut conn, fx.shop.id, &sku(i), Some(HandlingDays::new(7).unwrap()))
                .await
                .unwrap();
        }

        // Run 2: exactly the 37.
        let calls_before = fx.create_feed_calls();
        let run2 = trigger(&pool, &topology, fx.shop.id, false).await;
        assert_eq!(fx.create_feed_calls(), calls_before + 1, "one createFeed");
        let subs = fx.submissions(run2).await;
        assert_eq!(subs.len(), 1, "one feed");
        assert_eq!(subs[0].2, 37, "exactly 37 messages");
        assert_eq!(subs[0].1, vec![Marketplace::Japan.id().to_owned()]);
        let feed_id: String = sqlx::query_scalar("SELECT amazon_feed_id FROM feed_submissions WHERE id = $1")
            .bind(subs[0].0)
            .fetch_one(&pool)
            .await
            .unwrap();
        let input = fx.sim.sim().feed(&feed_id).unwrap().input.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&input).unwrap();
        let messages = doc["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 37);
        let skus: Vec<&str> = messages.iter().map(|m| m["sku"].as_str().unwrap()).collect();
        assert_eq!(skus, (1..=37).map(sku).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>());
        for m in messages {
            assert_eq!(m["operationType"], "PATCH");
            // Handling days set: merged; none: the attribute replaced (Amazon's default back).
            let with_days = ["SKU-00001", "SKU-00002", "SKU-00003"].contains(&m["sku"].as_str().unwrap());
            assert_eq!(m["patches"][0]["op"], if with_days { "merge" } else { "replace" }, "{m}");
            assert_eq!(m["patches"][0]["path"], "/attributes/fulfillment_availability");
            assert_eq!(m["patches"][0]["value"][0]["fulfillment_channel_code"], "DEFAULT");
        }
        let applied = fx.apply_results(run2).await;
        assert_eq!((applied.confirmed, applied.failed), (37, 0));

        // Amazon now shows our free stock for every SKU; handling time ours where set, Amazon's
        // default (none) where not (all 1,000 were pushed by run 1).
        let free = fx.free_by_sku().await;
        for i in 1..=1000 {
            let listing = fx.sim.sim().listing(&sku(i)).unwrap();
            assert_eq!(listing.quantity, Some(u32::try_from(free[&sku(i)]).unwrap()), "{}", sku(i));
            let expected_lead = match i {
                1..=3 => Some(7),
                i if i % 100 == 0 => Some(2),
                _ => None,
            };
            assert_eq!(listing.lead_time_to_ship_max_days, expected_lead, "{}", sku(i));
        }

        // Run 3: nothing changed: no feed, no Amazon call at all.
        let amazon_before = fx.amazon_calls();
        let run3 = trigger(&pool, &topology, fx.shop.id, false).await;
        assert!(fx.submissions(run3).await.is_empty());
        assert_eq!(fx.amazon_calls(), amazon_before, "no SP-API call");
        let counts: serde_json::Value = sqlx::query_scalar("SELECT counts FROM action_runs WHERE id = $1")
            .bind(run3)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(counts["targets"], 0);

        // Ledger and API log carry the summaries; feed.submitted reached feed-poller's queue.
        let summaries: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_log WHERE shop_id = $1 AND action = 'inventory-sync' AND code IN ('inventory_sync_summary', 'nothing_to_push')",
        )
        .bind(fx.shop.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(summaries, 3);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ready(&amqp, &watch).await < 2 {
            assert!(std::time::Instant::now() < deadline, "feed.submitted events not published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ready(&amqp, &watch).await, 2);
    }
    .await;

    cancel.cancel();
    let _ = server.await;
    let _ = topology.delete_service(&setup, "feed-poller").await;
    let _ = topology
        .delete_service(&setup, inventory_sync::SERVICE)
        .await;
    let _ = topology.delete_exchanges(&setup).await;
    let _ = bus::close(&amqp).await;
    result
}

/// A SKU Amazon does not know fails alone (API log, push state) and is sent again next run.
#[sqlx::test(migrations = "../../migrations")]
async fn unknown_sku_fails_alone_and_is_retried_next_run(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(10, 100, &[4]).await;
    let service = fx.service(settings());

    let r1 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!(r1.sent, 10);
    let applied = fx.apply_results(r1.run_id.unwrap()).await;
    assert_eq!((applied.confirmed, applied.failed), (9, 1));
    let (state, error) = fx.push_state(&sku(4)).await;
    assert_eq!(state, "failed");
    assert!(
        error.unwrap().contains("SKU-00004"),
        "Amazon's issue text is kept"
    );
    for i in [1, 2, 3, 5, 10] {
        assert_eq!(fx.push_state(&sku(i)).await.0, "confirmed");
    }
    let errors: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT sku, code FROM api_log WHERE shop_id = $1 AND level = 'error'")
            .bind(fx.shop.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(errors, vec![(Some(sku(4)), Some("4000003".to_owned()))]);

    // The listing now exists at Amazon: the next run sends that SKU only, and it sticks.
    fx.sim.sim().put_listing(&sku(4), 0, None);
    let r2 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!(r2.targets, 1);
    assert_eq!(r2.by_reason.get("failed"), Some(&1));
    let subs = fx.submissions(r2.run_id.unwrap()).await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].2, 1);
    let applied = fx.apply_results(r2.run_id.unwrap()).await;
    assert_eq!((applied.confirmed, applied.failed), (1, 0));
    assert_eq!(fx.push_state(&sku(4)).await.0, "confirmed");
    let free = fx.free_by_sku().await;
    assert_eq!(
        fx.sim.sim().listing(&sku(4)).unwrap().quantity,
        Some(u32::try_from(free[&sku(4)]).unwrap())
    );
}

/// A stock change that lands while a run is building and submitting its feed is not lost: the
/// run pushes what it read, the next run pushes the new figure.
#[sqlx::test(migrations = "../../migrations")]
async fn stock_change_during_a_run_is_pushed_by_the_next_run(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(5, 100, &[]).await;
    let service = fx.service(settings());
    let before = fx.free_by_sku().await[&sku(3)];

    // Amazon is slow to accept the feed: the change lands after the targets were read.
    fx.sim
        .sim()
        .inject_fault(
            "createFeed",
            Fault::Latency { ms: 1500 },
            FaultTrigger::Count(1),
        )
        .unwrap();
    let running = {
        let service = service.clone();
        let shop = fx.shop.id;
        tokio::spawn(async move { service.run(shop, false, None, "test").await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM feed_submissions WHERE shop_id = $1")
            .bind(fx.shop.id)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p3 = fx.product(3).await;
    store::catalog::reserve(
        &mut pool.acquire().await.unwrap(),
        fx.shop.id,
        p3,
        4,
        "order during the run",
    )
    .await
    .unwrap();
    let r1 = running.await.unwrap().unwrap();
    assert_eq!(r1.sent, 5);
    let sent_qty: i32 = sqlx::query_scalar(
        "SELECT quantity FROM feed_messages m JOIN feed_submissions s ON s.id = m.feed_submission_id WHERE s.run_id = $1 AND m.sku = $2",
    )
    .bind(r1.run_id.unwrap())
    .bind(sku(3))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sent_qty, before, "the run pushed what it read");
    fx.apply_results(r1.run_id.unwrap()).await;

    let r2 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!(r2.targets, 1);
    assert_eq!(r2.by_reason.get("stock"), Some(&1));
    fx.apply_results(r2.run_id.unwrap()).await;
    assert_eq!(
        fx.sim.sim().listing(&sku(3)).unwrap().quantity,
        Some(u32::try_from(before - 4).unwrap())
    );
    let r3 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!(r3.targets, 0);
}

/// `full` pushes every mapped SKU; one feed per marketplace per run, split at the message limit.
#[sqlx::test(migrations = "../../migrations")]
async fn full_mode_one_feed_per_marketplace_split_at_the_limit(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan, Marketplace::Australia]).await;
    fx.seed(30, 10, &[]).await;
    let service = fx.service(Settings {
        max_messages_per_feed: 20,
        ..settings()
    });

    let r1 = service.run(fx.shop.id, true, None, "test").await.unwrap();
    assert_eq!(r1.targets, 30);
    let subs = fx.submissions(r1.run_id.unwrap()).await;
    let shape: Vec<(Vec<String>, i64)> = subs.iter().map(|(_, m, n)| (m.clone(), *n)).collect();
    let (jp, au) = (
        Marketplace::Japan.id().to_owned(),
        Marketplace::Australia.id().to_owned(),
    );
    assert_eq!(
        shape,
        vec![
            (vec![jp.clone()], 20),
            (vec![jp], 10),
            (vec![au.clone()], 20),
            (vec![au], 10)
        ]
    );
    for f in fx.sim.sim().feeds() {
        assert_eq!(
            f.marketplace_ids.len(),
            1,
            "a JSON_LISTINGS_FEED is for one marketplace"
        );
        assert_eq!(f.feed_type, "JSON_LISTINGS_FEED");
    }
    let applied = fx.apply_results(r1.run_id.unwrap()).await;
    assert_eq!(
        applied.confirmed, 30,
        "each SKU confirmed once per submission it is in"
    );
    assert_eq!(applied.failed, 0);

    // Nothing changed: a differential run sends nothing; a full one sends everything again.
    let r2 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!((r2.targets, r2.feed_submission_ids.len()), (0, 0));
    let r3 = service.run(fx.shop.id, true, None, "test").await.unwrap();
    assert_eq!(
        (r3.targets, r3.sent, r3.feed_submission_ids.len()),
        (30, 60, 4)
    );
    assert_eq!(r3.by_reason.get("full"), Some(&30));
}

/// The next feed's intent is recorded while a feed is sent: when Amazon throttles the first
/// feed, the second, already recorded, is closed as not sent and the third is never recorded;
/// all their SKUs are failed and the next run sends them.
#[sqlx::test(migrations = "../../migrations")]
async fn a_throttled_feed_closes_the_next_recorded_one_and_the_next_run_sends_all(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(30, 10, &[]).await;
    let service = fx.service(Settings {
        max_messages_per_feed: 10,
        ..settings()
    });
    fx.sim
        .sim()
        .inject_fault(
            "createFeed",
            Fault::Status { status: 429 },
            FaultTrigger::Count(10),
        )
        .unwrap();
    let r1 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    fx.sim.sim().clear_faults();
    assert_eq!((r1.targets, r1.sent, r1.not_sent), (30, 0, 30), "{r1:?}");
    assert!(r1.continuation);
    let documents = fx
        .sim
        .sim()
        .call_counts()
        .get("createFeedDocument")
        .map_or(0, |c| c.calls);
    assert_eq!(documents, 1, "nothing uploaded after the throttled feed");
    let states: Vec<String> = sqlx::query_scalar(
        "SELECT state FROM feed_submissions WHERE run_id = $1 ORDER BY created_at",
    )
    .bind(r1.run_id.unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        states,
        ["failed", "failed"],
        "the first two feeds were recorded"
    );
    for i in 1..=30 {
        assert_eq!(fx.push_state(&sku(i)).await.0, "failed", "{}", sku(i));
    }

    let r2 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert_eq!((r2.targets, r2.sent, r2.not_sent), (30, 30, 0), "{r2:?}");
    // Never accepted by Amazon: still `never` as a reason (no change sequence pushed).
    assert_eq!(r2.by_reason.get("never"), Some(&30));
    assert_eq!(fx.apply_results(r2.run_id.unwrap()).await.confirmed, 30);
}

/// 「外部商品で出荷作業日数を設定していない商品はAmazonの商品設定から出荷作業日数の設定がデフォルトに
/// 設定されます」: by default a SKU without handling days gets Amazon's default handling time back;
/// a shop with `keep_amazon_handling_time` keeps Amazon's value (issue 17, item 3).
#[sqlx::test(migrations = "../../migrations")]
async fn handling_time_default_for_skus_without_handling_days_unless_the_shop_keeps_amazons(
    pool: PgPool,
) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    // SKU-00004 and SKU-00008 have 2 handling days; the others none.
    fx.seed(8, 4, &[]).await;
    let service = fx.service(settings());
    let mut conn = pool.acquire().await.unwrap();
    store::shops::set_keep_amazon_handling_time(&mut conn, fx.shop.id, true)
        .await
        .unwrap();
    // Pushes all 8 SKUs (`full` or not) and returns Amazon's handling time of each.
    let push = async |full: bool| -> Vec<Option<u32>> {
        let r = service.run(fx.shop.id, full, None, "test").await.unwrap();
        assert_eq!(r.sent, 8, "{r:?}");
        fx.apply_results(r.run_id.unwrap()).await;
        let sim = fx.sim.sim();
        (1..=8)
            .map(|i| sim.listing(&sku(i)).unwrap().lead_time_to_ship_max_days)
            .collect()
    };
    let kept: Vec<_> = (1..=8)
        .map(|i| Some(if i % 4 == 0 { 2 } else { AMAZON_LEAD_TIME }))
        .collect();
    assert_eq!(push(false).await, kept, "kept");

    // The seed's rule (the default): a full push sets Amazon's default back where none is set.
    store::shops::set_keep_amazon_handling_time(&mut conn, fx.shop.id, false)
        .await
        .unwrap();
    let default: Vec<_> = (1..=8).map(|i| (i % 4 == 0).then_some(2)).collect();
    assert_eq!(push(true).await, default, "Amazon's default");
}

/// Amazon refusing `createFeed` (quota) leaves the SKUs failed, schedules a continuation,
/// and the next run sends them; a second run while one holds the lease is skipped.
#[sqlx::test(migrations = "../../migrations")]
async fn throttled_feed_is_sent_by_the_continuation_and_runs_do_not_overlap(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(8, 100, &[]).await;
    let service = fx.service(settings());
    let r0 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    fx.apply_results(r0.run_id.unwrap()).await;
    let mut conn = pool.acquire().await.unwrap();
    for i in 1..=8 {
        let p = fx.product(i).await;
        inventory::adjust_on_hand(&mut conn, fx.shop.id, p, 1, None)
            .await
            .unwrap();
    }

    fx.sim
        .sim()
        .inject_fault(
            "createFeed",
            Fault::Status { status: 429 },
            FaultTrigger::Count(10),
        )
        .unwrap();
    let r1 = service.run(fx.shop.id, false, None, "test").await.unwrap();
    fx.sim.sim().clear_faults();
    assert_eq!((r1.sent, r1.not_sent), (0, 8));
    assert!(r1.continuation);
    assert_eq!(fx.push_state(&sku(1)).await.0, "failed");
    let (routing_key, not_before): (String, chrono::DateTime<Utc>) = sqlx::query_as(
        "SELECT routing_key, not_before FROM outbox WHERE routing_key = 'inventory-sync'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(routing_key, "inventory-sync");
    assert!(not_before > Utc::now());

    // Another run holds the lease: skipped, nothing sent.
    let other = Uuid::now_v7();
    assert!(
        store::runs::try_lease(
            &mut conn,
            fx.shop.id,
            "inventory-sync",
            other,
            "other",
            chrono::Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    let skipped = service.run(fx.shop.id, false, None, "test").await.unwrap();
    assert!(skipped.skipped);
    store::runs::release_lease(&mut conn, fx.shop.id, "inventory-sync", other)
        .await
        .unwrap();

    // The continuation (a differential run) sends the 8.
    let r2 = service
        .run(fx.shop.id, false, None, "system")
        .await
        .unwrap();
    assert_eq!((r2.targets, r2.sent), (8, 8));
    assert_eq!(r2.by_reason.get("failed"), Some(&8));
    let applied = fx.apply_results(r2.run_id.unwrap()).await;
    assert_eq!(applied.confirmed, 8);
    let free = fx.free_by_sku().await;
    for i in 1..=8 {
        assert_eq!(
            fx.sim.sim().listing(&sku(i)).unwrap().quantity,
            Some(u32::try_from(free[&sku(i)]).unwrap())
        );
    }
}

/// What the operator commands do to the data: stock changes recorded with their time and
/// refused below zero; remapping a SKU pushes it again; handling days change the targets.
#[sqlx::test(migrations = "../../migrations")]
async fn operator_changes_are_recorded_and_validated(pool: PgPool) {
    let fx = fixture(pool.clone(), &[Marketplace::Japan]).await;
    fx.seed(3, 100, &[]).await;
    let service = fx.service(settings());
    let r = service.run(fx.shop.id, false, None, "test").await.unwrap();
    fx.apply_results(r.run_id.unwrap()).await;
    let mut conn = pool.acquire().await.unwrap();
    let p1 = fx.product(1).await;

    let before = inventory::set_on_hand(&mut conn, fx.shop.id, p1, 5, Some("count"))
        .await
        .unwrap();
    let err = inventory::adjust_on_hand(&mut conn, fx.shop.id, p1, -6, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, inventory::StockError::Negative { result: -1, .. }),
        "{err}"
    );
    assert!(
        inventory::set_on_hand(&mut conn, fx.shop.id, p1, -1, None)
            .await
            .is_err()
    );
    let after = inventory::adjust_on_hand(&mut conn, fx.shop.id, p1, -2, Some("damaged"))
        .await
        .unwrap();
    assert_eq!(after.levels.on_hand, 3);
    assert!(after.change_seq > before.change_seq);
    let kinds: Vec<(String, i32, Option<String>)> = sqlx::query_as(
        "SELECT kind, delta_on_hand, reason FROM stock_changes WHERE product_id = $1 AND occurred_at IS NOT NULL ORDER BY id",
    )
    .bind(p1)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(kinds.len(), 2);
    assert_eq!(
        kinds[1],
        ("adjust".to_owned(), -2, Some("damaged".to_owned()))
    );

    // Remap SKU 2 to product 3: pushed again even though product 3 did not change.
    let p3 = fx.product(3).await;
    let m = inventory::map_sku(&mut conn, fx.shop.id, &sku(2), p3, None)
        .await
        .unwrap();
    assert_eq!(m.push_state, "never");
    // Handling days on SKU 3.
    inventory::set_handling_days(
        &mut conn,
        fx.shop.id,
        &sku(3),
        Some(HandlingDays::new(0).unwrap()),
    )
    .await
    .unwrap();
    let targets = inventory::targets(&mut conn, fx.shop.id, false)
        .await
        .unwrap();
    let got: Vec<(String, inventory::Reason)> =
        targets.iter().map(|t| (t.sku.clone(), t.reason)).collect();
    assert_eq!(
        got,
        vec![
            (sku(1), inventory::Reason::Stock),
            (sku(2), inventory::Reason::Never),
            (sku(3), inventory::Reason::HandlingDays)
        ]
    );
    assert!(
        inventory::unmap_sku(&mut conn, fx.shop.id, &sku(2))
            .await
            .unwrap()
    );
    assert!(
        !inventory::unmap_sku(&mut conn, fx.shop.id, &sku(2))
            .await
            .unwrap()
    );
    // The database refuses out-of-range handling days even past the entry checks.
    let bad = sqlx::query("UPDATE external_products SET handling_days = 31 WHERE sku = $1")
        .bind(sku(3))
        .execute(&pool)
        .await;
    assert!(bad.is_err());
}

/// Issue 21 item 3: Japan and Australia are separate seller accounts (one simulator each) whose
/// SKUs map one product. JP holds 70 %, AU 30 %, safety stock 2; with free stock 10 Amazon shows
/// JP 5 and AU 2, and over a generated sequence of stock changes (order reservations,
/// cancellations, counts) pushed through RabbitMQ the two never show more than free − 2
/// together. Setting a share makes both SKUs due again.
#[sqlx::test(migrations = "../../migrations")]
async fn two_shops_share_one_product_jp_70_au_30_safety_2(pool: PgPool) {
    use domain::stock::{SafetyStock, SharePercent};
    use proptest::strategy::{Strategy, ValueTree};

    let jp = fixture(pool.clone(), &[Marketplace::Japan]).await;
    // The Australian account: its own seller account, its own Amazon (simulator).
    let au_sim = spapi_sim::spawn(spapi_sim::SimConfig {
        unlimited: true,
        feed_processing: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("simulator");
    let mut conn = pool.acquire().await.unwrap();
    let au_shop = store::shops::insert(
        &mut conn,
        &jp.keys,
        &store::shops::NewShop {
            marketplaces: vec![Marketplace::Australia],
            time_zone: chrono_tz::Australia::Sydney,
            ..store::shops::NewShop::japan_at(
                "acme-au".parse().unwrap(),
                "Acme Australia",
                spapi_sim::DEFAULT_SELLER_ID,
                &au_sim.base_url(),
            )
        },
    )
    .await
    .unwrap()
    .shop;
    let au = inventory_fixture::Fixture {
        pool: pool.clone(),
        keys: jp.keys.clone(),
        sim: au_sim,
        shop: au_shop,
    };

    // One product of the JP shop, free stock 10, mapped by both shops.
    let p = store::catalog::insert_product(&mut conn, jp.shop.id, "P1", "Matcha")
        .await
        .unwrap();
    inventory::set_on_hand(&mut conn, jp.shop.id, p.id, 10, Some("count"))
        .await
        .unwrap();
    inventory::map_sku(&mut conn, jp.shop.id, "SKU-JP", p.id, None)
        .await
        .unwrap();
    inventory::map_sku(&mut conn, au.shop.id, "SKU-AU", p.id, None)
        .await
        .unwrap();
    jp.sim
        .sim()
        .put_listing("SKU-JP", 0, Some(AMAZON_LEAD_TIME));
    au.sim
        .sim()
        .put_listing("SKU-AU", 0, Some(AMAZON_LEAD_TIME));

    // inventory-sync behind RabbitMQ.
    let prefix = format!("share{}.", Uuid::now_v7().simple());
    let topology = bus::Topology::new(prefix.clone(), 5);
    let amqp = bus::connect(&inventory_fixture::amqp_url(), "inventory-share-test")
        .await
        .unwrap();
    let setup = amqp.create_channel().await.unwrap();
    let config = runtime::Config {
        database_url: inventory_fixture::database_url(&pool),
        amqp_url: inventory_fixture::amqp_url(),
        bus_prefix: prefix.clone(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        prefetch: 1,
        pool_size: 4,
        spapi_rate_scale: 1000.0,
    };
    let cancel = CancellationToken::new();
    let server = tokio::spawn(runtime::serve(
        inventory_sync::SERVICE,
        &[],
        config,
        jp.keys.clone(),
        cancel.clone(),
        |ctx| inventory_sync::Service::from_ctx(ctx).unwrap(),
    ));

    let result = async {
        // Both shops run (differential) and Amazon applies the feeds; returns what each
        // Amazon shows and how many SKUs each run sent.
        let push = async || -> ((u32, u32), (i64, i64)) {
            let run_jp = trigger(&pool, &topology, jp.shop.id, false).await;
            let run_au = trigger(&pool, &topology, au.shop.id, false).await;
            let sent = |subs: Vec<(Uuid, Vec<String>, i64)>| subs.iter().map(|s| s.2).sum::<i64>();
            let sent = (
                sent(jp.submissions(run_jp).await),
                sent(au.submissions(run_au).await),
            );
            jp.apply_results(run_jp).await;
            au.apply_results(run_au).await;
            let q = |f: &inventory_fixture::Fixture, sku: &str| {
                f.sim.sim().listing(sku).unwrap().quantity.unwrap()
            };
            ((q(&jp, "SKU-JP"), q(&au, "SKU-AU")), sent)
        };

        // No share set: today's behaviour, each account is sent the whole free stock.
        assert_eq!(push().await, ((10, 10), (1, 1)));

        // JP 70 %, AU 30 %, safety stock 2: both SKUs due again, Amazon shows 5 and 2.
        inventory::set_share(
            &mut conn,
            jp.shop.id,
            "SKU-JP",
            SharePercent::new(70).ok(),
            SafetyStock::new(2).ok(),
        )
        .await
        .unwrap();
        inventory::set_share(
            &mut conn,
            au.shop.id,
            "SKU-AU",
            SharePercent::new(30).ok(),
            SafetyStock::new(2).ok(),
        )
        .await
        .unwrap();
        assert_eq!(push().await, ((5, 2), (1, 1)), "JP sent 5, AU sent 2");
        // Nothing changed: nothing sent, Amazon unchanged.
        assert_eq!(push().await, ((5, 2), (0, 0)));

        // A generated sequence of stock changes: never more than free − 2 together.
        let mut runner = proptest::test_runner::TestRunner::default();
        let changes = proptest::collection::vec((0u8..3, 1i32..6), 6)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut reserved = 0;
        for (kind, n) in changes {
            match kind {
                // An order imported in either shop reserves the shared stock.
                0 => {
                    let n =
                        n.min(store::catalog::stock(&mut conn, p.id).await.unwrap().free() as i32);
                    if n > 0 {
                        store::catalog::reserve(&mut conn, jp.shop.id, p.id, n, "order")
                            .await
                            .unwrap();
                        reserved += n;
                    }
                }
                // A cancellation releases it.
                1 if reserved > 0 => {
                    store::catalog::release(&mut conn, jp.shop.id, p.id, reserved, "canceled")
                        .await
                        .unwrap();
                    reserved = 0;
                }
                // A stock count.
                _ => {
                    inventory::set_on_hand(
                        &mut conn,
                        jp.shop.id,
                        p.id,
                        reserved + 2 * n,
                        Some("count"),
                    )
                    .await
                    .unwrap();
                }
            }
            let free = store::catalog::stock(&mut conn, p.id).await.unwrap().free();
            let ((q_jp, q_au), _) = push().await;
            let available = (free - 2).max(0);
            assert!(
                i64::from(q_jp + q_au) <= available,
                "free {free}: JP {q_jp} + AU {q_au}"
            );
            assert_eq!(
                (i64::from(q_jp), i64::from(q_au)),
                (available * 70 / 100, available * 30 / 100),
                "free {free}"
            );
        }

        // Free stock 10 again: 5 and 2.
        inventory::set_on_hand(&mut conn, jp.shop.id, p.id, reserved + 10, Some("count"))
            .await
            .unwrap();
        assert_eq!(push().await.0, (5, 2));
    }
    .await;

    cancel.cancel();
    let _ = server.await;
    let _ = topology
        .delete_service(&setup, inventory_sync::SERVICE)
        .await;
    let _ = topology.delete_exchanges(&setup).await;
    let _ = bus::close(&amqp).await;
    result
}
