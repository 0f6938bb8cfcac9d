//! Bad input: each gets a clear error in the API log or a dead-letter with a reason, and
//! nothing else changes (no instruction, no stock change, no Amazon call that writes).

use std::time::Duration;

use chrono::Utc;
use domain::messages::{Action, Command, CommandParams, StatusSyncMode};
use domain::window::ImportMode;
use spapi_sim::{Address, ItemSpec, OrderSpec, OrderStatus};
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::{Svc, System, capture, harness::sku, harness::tracking12};
use uuid::Uuid;

fn params_for(svc: Svc) -> CommandParams {
    match svc {
        Svc::OrderIngest => CommandParams::OrderIngest {
            mode: ImportMode::Hours { hours: 1 },
        },
        Svc::StatusSync => CommandParams::StatusSync {
            mode: StatusSyncMode::Changes,
        },
        Svc::ShipmentFeedback => CommandParams::ShipmentFeedback {},
        Svc::FeedPoller => CommandParams::FeedPoll {
            feed_submission_id: None,
        },
        Svc::InventorySync => CommandParams::InventorySync { full: true },
    }
}

/// Rows that any action would change.
async fn effects(sys: &System) -> (i64, i64, i64, i64, i64) {
    (
        sys.count("SELECT count(*) FROM shipping_instructions")
            .await,
        sys.count("SELECT count(*) FROM stock_changes").await,
        sys.count("SELECT count(*) FROM feed_submissions").await,
        sys.count("SELECT count(*) FROM action_runs WHERE status NOT IN ('rejected', 'skipped')")
            .await,
        sys.count("SELECT count(*) FROM inbox").await,
    )
}

fn amazon_writes(sys: &System) -> u64 {
    sys.sim
        .sim()
        .call_counts()
        .iter()
        .filter(|(op, _)| !op.starts_with("get") && !op.starts_with("search"))
        .map(|(op, c)| {
            if op == "createFeedDocument"
                || op == "createFeed"
                || op == "confirmShipment"
                || op == "patchListingsItem"
            {
                c.calls
            } else {
                0
            }
        })
        .sum()
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_commands_are_dead_lettered_with_a_reason(pool: PgPool) {
    let mut sys = System::new(pool).await;
    sys.start_all();
    let before = effects(&sys).await;
    let bodies: [&[u8]; 3] = [
        b"{not json",
        br#"{"version":1,"shop_id":"nope"}"#,
        b"\xff\xfe garbage \x00",
    ];
    for svc in Svc::ALL {
        for (i, body) in bodies.iter().enumerate() {
            let id = Uuid::now_v7().to_string();
            sys.publish_raw(svc, body, (i != 2).then_some(id.as_str()))
                .await;
        }
    }
    let mut expect = Expect::default();
    for svc in Svc::ALL {
        expect.poison.insert(svc, 3);
    }
    wait_dlqs(&sys, &expect).await;
    sys.drain(Duration::from_secs(30)).await;
    for svc in Svc::ALL {
        let dead = bus::dlq_peek(&sys.amqp, &sys.topology.queue(svc.name()), 10)
            .await
            .unwrap();
        assert_eq!(dead.len(), 3, "{}", svc.name());
        for m in dead {
            assert_eq!(
                m.reason.as_deref(),
                Some("rejected"),
                "{}: {m:?}",
                svc.name()
            );
        }
    }
    let logs = capture::text();
    assert!(
        logs.contains("payload does not decode") || logs.contains("undecodable message"),
        "the reason is logged"
    );
    assert_eq!(effects(&sys).await, before, "nothing else changed");
    invariants::check(&sys, &expect).await.assert_ok();
    sys.shutdown().await;
}

/// (API-log errors naming the shop, reasons of its dead letters) for a command of `svc`.
async fn unknown_shop_outcome(sys: &System, svc: Svc, ghost: Uuid) -> (i64, Vec<Option<String>>) {
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE action = $1 AND level = 'error' AND (message LIKE '%' || $2 || '%' OR details::text LIKE '%' || $2 || '%')",
    )
    .bind(svc.name())
    .bind(ghost.to_string())
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    let dead = bus::dlq_peek(&sys.amqp, &sys.topology.queue(svc.name()), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| String::from_utf8_lossy(&m.payload).contains(&ghost.to_string()))
        .map(|m| m.reason)
        .collect();
    (logged, dead)
}

/// Expected (issue 11): an unknown shop gets a clear error in the API log (or is rejected at
/// once with that reason), in every service.
#[sqlx::test(migrations = "../../migrations")]
async fn unknown_shop_is_explained_by_every_service(pool: PgPool) {
    let mut sys = System::new(pool).await;
    sys.start_all();
    let ghost = Uuid::now_v7();
    for svc in Svc::ALL {
        let cmd = Command::new(ghost, svc.action(), params_for(svc), "test", Utc::now());
        sys.send(&cmd).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut bad = vec![];
    for svc in Svc::ALL {
        let (logged, dead) = unknown_shop_outcome(&sys, svc, ghost).await;
        let rejected_at_once = dead.iter().any(|r| r.as_deref() == Some("rejected"));
        if logged == 0 && !rejected_at_once {
            bad.push(format!(
                "{}: api_log {logged}, dead letters {dead:?}",
                svc.name()
            ));
        }
    }
    sys.shutdown().await;
    assert!(bad.is_empty(), "{bad:?}");
}

async fn wait_dlqs(sys: &System, expect: &Expect) {
    for _ in 0..150 {
        let mut all = true;
        for (svc, n) in &expect.poison {
            if sys.queue_len(&sys.topology.dlq(svc.name())).await < *n {
                all = false;
            }
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn unknown_shop_and_invalid_windows_are_refused_with_an_api_log_entry(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap();
    sys.start_all();
    let before = effects(&sys).await;
    let writes = amazon_writes(&sys);

    // Unknown shop, every service.
    let ghost = Uuid::now_v7();
    for svc in Svc::ALL {
        let cmd = Command::new(ghost, svc.action(), params_for(svc), "test", Utc::now());
        sys.send(&cmd).await;
    }
    // Windows: 10 days, inverted, 0 hours, 500 hours; parameters of another action.
    let now = Utc::now();
    let bad_windows = [
        ImportMode::Range {
            from: now - chrono::Duration::days(10),
            to: now - chrono::Duration::hours(1),
        },
        ImportMode::Range {
            from: now - chrono::Duration::hours(1),
            to: now - chrono::Duration::hours(5),
        },
        ImportMode::Hours { hours: 0 },
        ImportMode::Hours { hours: 500 },
    ];
    for mode in bad_windows {
        let cmd = Command::new(
            a.id,
            Action::OrderIngest,
            CommandParams::OrderIngest { mode },
            "test",
            now,
        );
        sys.send(&cmd).await;
    }
    let wrong = Command::new(
        a.id,
        Action::OrderIngest,
        CommandParams::ShipmentFeedback {},
        "test",
        now,
    );
    sys.send(&wrong).await;
    let mut old = Command::new(
        a.id,
        Action::OrderIngest,
        params_for(Svc::OrderIngest),
        "test",
        now,
    );
    old.version = 99;
    sys.send(&old).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sys.drain(Duration::from_secs(30)).await;

    // Unknown shop: every service writes an API-log error naming the shop and acknowledges the
    // command (store::api_log::refuse_unknown_shop). Never a run, never an effect, no dead letter.
    let mut poison = Expect::default();
    sys.drain(Duration::from_secs(30)).await;
    for svc in Svc::ALL {
        let (logged, dead) = unknown_shop_outcome(&sys, svc, ghost).await;
        eprintln!(
            "unknown shop, {}: api_log {logged}, dead-lettered {dead:?}",
            svc.name()
        );
        assert!(logged >= 1, "{}: no API-log entry", svc.name());
        assert!(dead.is_empty(), "{}: dead-lettered {dead:?}", svc.name());
    }
    // Invalid windows: a rejected run with the reason, an API-log error.
    let rejected: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT error FROM action_runs WHERE action = 'order-ingest' AND status = 'rejected' ORDER BY started_at",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    let api_errors = sys
        .count("SELECT count(*) FROM api_log WHERE action = 'order-ingest' AND level = 'error' AND shop_id IS NOT NULL")
        .await;
    let dead_ingest = sys
        .queue_len(&sys.topology.dlq(Svc::OrderIngest.name()))
        .await as usize;
    if dead_ingest > 0 {
        poison.poison.insert(Svc::OrderIngest, dead_ingest as u32);
    }
    eprintln!(
        "invalid windows: rejected runs {rejected:?}, api_log errors {api_errors}, dead {dead_ingest}"
    );
    // 4 windows + wrong action + wrong version: each refused one way or the other.
    assert!(
        rejected.len() + dead_ingest >= 6,
        "every invalid trigger refused"
    );
    for (e,) in &rejected {
        assert!(
            e.as_deref().is_some_and(|e| !e.is_empty()),
            "reason recorded"
        );
    }
    assert_eq!(
        effects(&sys).await,
        before,
        "nothing imported, no run, no stock change"
    );
    assert_eq!(amazon_writes(&sys), writes, "Amazon not written to");
    invariants::check(
        &sys,
        &Expect {
            not_imported: sys
                .sim
                .sim()
                .orders()
                .iter()
                .map(|o| o.order_id.clone())
                .collect(),
            ..poison
        },
    )
    .await
    .assert_ok();
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn unknown_carrier_and_bad_tracking_are_refused_before_amazon(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    for _ in 0..3 {
        sys.sim
            .sim()
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                items: vec![ItemSpec {
                    seller_sku: Some(sku(5)),
                    quantity: Some(1),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap();
    }
    sys.start_all();
    assert_eq!(
        sys.ingest(a.id, ImportMode::Hours { hours: 2 })
            .await
            .status
            .as_str(),
        "succeeded"
    );
    assert_eq!(sys.ship_awaiting(&a, 10, None).await, 3);
    let ids: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, amazon_order_id FROM shipping_instructions ORDER BY amazon_order_id",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    // 1: a delivery method whose external delivery method no carrier mapping knows.
    let pigeon = Uuid::now_v7();
    sqlx::query("INSERT INTO delivery_methods (id, shop_id, code, name, external_delivery_method) VALUES ($1, $2, 'pigeon', '伝書鳩', 'pigeon_post')")
        .bind(pigeon).bind(a.id).execute(&sys.pool).await.unwrap();
    sqlx::query("UPDATE shipping_instructions SET delivery_method_id = $2 WHERE id = $1")
        .bind(ids[0].0)
        .bind(pigeon)
        .execute(&sys.pool)
        .await
        .unwrap();
    // 2: a Yamato tracking number with wrong characters.
    sqlx::query(
        "UPDATE shipping_instructions SET tracking_numbers = ARRAY['12345-ABC#9!'] WHERE id = $1",
    )
    .bind(ids[1].0)
    .execute(&sys.pool)
    .await
    .unwrap();
    // 3: valid.
    let run = sys.feedback(a.id).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(30)).await;
    for (id, order) in &ids[..2] {
        let (api_status, api_error): (String, Option<String>) =
            sqlx::query_as("SELECT api_status, api_error FROM shipping_instructions WHERE id = $1")
                .bind(id)
                .fetch_one(&sys.pool)
                .await
                .unwrap();
        assert_eq!(api_status, "awaiting_print", "{order} stays for a fix");
        let logged = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM api_log WHERE amazon_order_id = $1 AND level IN ('error', 'warning', 'attention')",
        ).bind(order).fetch_one(&sys.pool).await.unwrap();
        assert!(
            logged >= 1 || api_error.is_some(),
            "{order}: a clear error ({api_error:?})"
        );
        assert!(
            sys.sim.sim().order(order).unwrap().packages.is_empty(),
            "{order} never sent to Amazon"
        );
        let in_feed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM feed_messages WHERE instruction_id = $1")
                .bind(id)
                .fetch_one(&sys.pool)
                .await
                .unwrap();
        assert_eq!(in_feed, 0);
    }
    assert_eq!(
        sys.sim.sim().order(&ids[2].1).unwrap().packages.len(),
        1,
        "the valid one went"
    );
    assert_eq!(
        sys.sim.sim().order(&ids[2].1).unwrap().packages[0].tracking_number,
        {
            let t: Vec<String> = sqlx::query_scalar(
                "SELECT tracking_numbers FROM shipping_instructions WHERE id = $1",
            )
            .bind(ids[2].0)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
            t[0].clone()
        }
    );
    let _ = tracking12(0);
    invariants::check(&sys, &Expect::default())
        .await
        .assert_ok();
    sys.shutdown().await;
}

async fn stock_snapshot(pool: &PgPool) -> (String, String, i64) {
    let s: String =
        sqlx::query_scalar("SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM stock x")
            .fetch_one(pool)
            .await
            .unwrap();
    let e: String = sqlx::query_scalar(
        "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM external_products x",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_changes")
        .fetch_one(pool)
        .await
        .unwrap();
    (s, e, n)
}

#[sqlx::test(migrations = "../../migrations")]
async fn negative_stock_and_45_handling_days_are_refused_and_change_nothing(pool: PgPool) {
    let sys = System::new(pool).await;
    let a = sys.a().clone();
    let mut conn = sys.pool.acquire().await.unwrap();
    let p = store::catalog::product_by_code(&mut conn, a.id, "P-0001")
        .await
        .unwrap();
    let before = stock_snapshot(&sys.pool).await;
    let neg = store::inventory::set_on_hand(&mut conn, a.id, p.id, -5, Some("bad count")).await;
    assert!(neg.is_err(), "negative stock refused: {neg:?}");
    let below = store::inventory::adjust_on_hand(
        &mut conn,
        a.id,
        p.id,
        -(system_tests::harness::ON_HAND + 1),
        Some("too much"),
    )
    .await;
    assert!(below.is_err(), "stock below zero refused: {below:?}");
    // 45 handling days cannot even be expressed (the type and the column both stop at 30).
    let hd = domain::inventory::HandlingDays::new(45);
    assert!(hd.is_err(), "45 handling days refused: {hd:?}");
    let raw = sqlx::query(
        "UPDATE external_products SET handling_days = 45 WHERE shop_id = $1 AND sku = $2",
    )
    .bind(a.id)
    .bind(sku(1))
    .execute(&mut *conn)
    .await;
    assert!(raw.is_err(), "the column refuses it too");
    eprintln!(
        "handling days 45: {:?}; negative stock: {}",
        hd.unwrap_err(),
        neg.unwrap_err()
    );
    assert_eq!(stock_snapshot(&sys.pool).await, before, "nothing changed");
    drop(conn);
    sys.cleanup_bus().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_10_mb_order_address_does_not_break_the_import(pool: PgPool) {
    let (sys, huge) = import_huge_address(pool).await;
    sys.shutdown().await;
    let _ = huge;
}

/// Amazon's address lines are at most 60 characters (Orders API); a 10 MB one is bad input.
/// Expected (issue 11): refused or truncated with a clear API-log entry.
#[sqlx::test(migrations = "../../migrations")]
async fn a_10_mb_order_address_is_explained_in_the_api_log_and_not_stored_whole(pool: PgPool) {
    let (sys, huge) = import_huge_address(pool).await;
    let stored: Option<i32> = sqlx::query_scalar(
        "SELECT octet_length(pii_enc) FROM shipping_instructions WHERE amazon_order_id = $1",
    )
    .bind(&huge)
    .fetch_optional(&sys.pool)
    .await
    .unwrap()
    .flatten();
    let logged = sys
        .count(&format!(
            "SELECT count(*) FROM api_log WHERE amazon_order_id = '{huge}' AND level <> 'info'"
        ))
        .await;
    sys.shutdown().await;
    assert!(
        stored.unwrap_or(0) < 64 * 1024,
        "stored {stored:?} bytes of address"
    );
    assert!(
        logged >= 1,
        "no API-log entry explains the oversized address"
    );
}

async fn import_huge_address(pool: PgPool) -> (System, String) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let huge = sys
        .sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            address: Some(Address {
                name: "Big".into(),
                address_line1: "東".repeat(10 * 1024 * 1024 / 3),
                city: "千代田区".into(),
                state_or_region: "東京都".into(),
                postal_code: "100-0001".into(),
                country_code: "JP".into(),
                ..Default::default()
            }),
            items: vec![ItemSpec {
                seller_sku: Some(sku(2)),
                quantity: Some(1),
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap();
    let normal: Vec<String> = (0..3)
        .map(|_| {
            sys.sim
                .sim()
                .create_order(OrderSpec {
                    status: Some(OrderStatus::Unshipped),
                    items: vec![ItemSpec {
                        seller_sku: Some(sku(2)),
                        quantity: Some(1),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .unwrap()
                .order_id
        })
        .collect();
    sys.start_all();
    let run = sys.ingest(a.id, ImportMode::Hours { hours: 2 }).await;
    sys.drain(Duration::from_secs(60)).await;
    eprintln!(
        "10 MB address: run {} {:?} counts {}",
        run.status.as_str(),
        run.error,
        run.counts
    );
    for o in &normal {
        assert_eq!(
            sys.count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE amazon_order_id = '{o}'"
            ))
            .await,
            1,
            "the other orders are imported"
        );
    }
    let stored: Option<i32> = sqlx::query_scalar(
        "SELECT octet_length(pii_enc) FROM shipping_instructions WHERE amazon_order_id = $1",
    )
    .bind(&huge.order_id)
    .fetch_optional(&sys.pool)
    .await
    .unwrap()
    .flatten();
    let logged = sys
        .count(&format!(
            "SELECT count(*) FROM api_log WHERE amazon_order_id = '{}' AND level <> 'info'",
            huge.order_id
        ))
        .await;
    eprintln!("10 MB address: stored {stored:?} bytes, api_log warnings {logged}");
    // The oversized address is either refused with a clear entry or imported; never a crash
    // loop, never a dead letter, and the message of the log stays small.
    assert!(
        stored.is_some() || logged >= 1,
        "the oversized order is imported or explained"
    );
    let biggest_log: i64 = sys.count("SELECT COALESCE(max(octet_length(message) + COALESCE(octet_length(details::text), 0)), 0)::bigint FROM api_log").await;
    assert!(
        biggest_log < 100_000,
        "API log entries stay small ({biggest_log} bytes)"
    );
    invariants::check(
        &sys,
        &Expect {
            not_imported: if stored.is_none() {
                vec![huge.order_id.clone()]
            } else {
                vec![]
            },
            ..Default::default()
        },
    )
    .await
    .assert_ok();
    (sys, huge.order_id)
}

#[test]
fn a_report_with_invalid_utf8_is_decoded_lossily_and_flagged() {
    // Neither valid UTF-8 nor valid CP932: the decoder never fails, replaces the bad bytes
    // and says so. (The simulator cannot serve arbitrary bytes; feed-poller's own tests cover
    // the Shift_JIS report end to end.)
    let bytes =
        b"<?xml version=\"1.0\"?><AmazonEnvelope>\xff\xfe\x80\x81\xfc</AmazonEnvelope>".to_vec();
    let doc = spapi::documents::decode_text(&bytes, None);
    assert!(doc.had_errors, "{doc:?}");
    assert!(doc.text.contains("AmazonEnvelope"));
    assert!(doc.text.contains('\u{FFFD}'));
    let declared = spapi::documents::decode_text(&bytes, Some("text/xml; charset=UTF-8"));
    assert!(declared.had_errors);
}
