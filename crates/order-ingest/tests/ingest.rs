//! order-ingest against the simulator, real PostgreSQL and RabbitMQ: message in → rows out.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use common::{Harness, ON_HAND, Options, product_code, sku};
use domain::{
    PLACEHOLDER_DELIVERY_METHOD, PLACEHOLDER_REGISTRATION,
    delivery_rules::RuleConditions,
    messages::{Action, Command, CommandParams},
    window::ImportMode,
};
use order_ingest::Counts;
use rust_decimal::Decimal;
use spapi_sim::{ItemSpec, MarketplaceMix, OrderSpec, OrderStatus};
use sqlx::PgPool;

const JP_ONLY: MarketplaceMix = MarketplaceMix {
    jp: 1,
    au: 0,
    sg: 0,
    pending_ratio: 0.4,
};

fn counts(run: &store::runs::Run) -> Counts {
    service_testkit::run_counts(run)
}

async fn runs_of_command(pool: &PgPool, command_id: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM action_runs WHERE command_id = $1")
        .bind(command_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Must show: 250 generated JP orders (PENDING and UNSHIPPED) triggered through the queue
/// become 250 instructions with the right placeholders, addresses, payment methods, lines,
/// delivery methods and reservations; the same trigger again and overlapping runs create
/// nothing new. The first differential run's window is one week.
#[sqlx::test(migrations = "../../migrations")]
async fn imports_250_orders_through_the_queue_and_reruns_create_nothing(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        h.add_rule(10, "express", RuleConditions { prime: Some(true), ..Default::default() }).await;
        h.add_rule(20, "tokyo", RuleConditions { states: vec!["東京都".into()], ..Default::default() }).await;
        let orders = h.sim.sim().generate_orders(250, 42, JP_ONLY);
        assert!(orders.iter().any(|o| o.status == OrderStatus::Pending));
        assert!(orders.iter().any(|o| o.status == OrderStatus::Unshipped));

        let cmd = Command::new(
            h.shop_id,
            Action::OrderIngest,
            CommandParams::OrderIngest { mode: ImportMode::Differential },
            "test",
            Utc::now(),
        );
        h.send(&cmd).await;
        let run = h.wait_run(cmd.message_id, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        assert_eq!((c.orders, c.new, c.updated, c.unchanged, c.failed), (250, 250, 0, 0, 0));
        assert_eq!(c.pages, 3);
        assert_eq!(c.tally.calls.get("searchOrders"), Some(&3));
        assert_eq!(run.amazon_calls, 3);
        assert_eq!(c.unmapped_lines, 0);
        // First differential run: one week back, ending two minutes before now.
        let (from, to) = (run.window_from.unwrap(), run.window_to.unwrap());
        assert_eq!(to - from, ChronoDuration::days(7) - ChronoDuration::minutes(2));
        assert!((Utc::now() - ChronoDuration::minutes(2) - to) < ChronoDuration::seconds(30));
        // Watermark = the order mirror's poll: Amazon's lastUpdatedBefore of the call.
        let mark = run.watermark.unwrap();
        let now = Utc::now();
        assert!(mark <= now && now - mark < ChronoDuration::minutes(3), "{mark} vs {now}");

        let mut conn = h.pool.acquire().await.unwrap();
        let stored: HashMap<String, store::instructions::Instruction> =
            store::instructions::list(&mut conn, h.shop_id)
                .await
                .unwrap()
                .into_iter()
                .map(|i| (i.amazon_order_id.clone().unwrap(), i))
                .collect();
        assert_eq!(stored.len(), 250);
        let mut reserved: HashMap<String, i32> = HashMap::new();
        let mut total_lines = 0;
        for o in &orders {
            let i = &stored[&o.order_id];
            let p = store::pii::read(&mut conn, &crypto::Keyring::for_testing(), i.id)
                .await
                .unwrap()
                .expect("sealed personal data (or placeholders)");
            assert_eq!(i.source, "amazon_api");
            assert_eq!(i.marketplace_id.as_deref(), Some("A1VC38T7YXB528"));
            assert_eq!(i.ordered_at, Some(o.created_time));
            assert_eq!(i.is_prime, o.prime);
            let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
            assert_eq!(lines.len(), o.items.len(), "{}", o.order_id);
            total_lines += lines.len();
            for (l, it) in lines.iter().zip(&o.items) {
                assert_eq!(l.amazon_order_item_id.as_deref(), Some(it.order_item_id.as_str()));
                assert_eq!(l.sku, it.seller_sku);
                assert_eq!(l.quantity, it.quantity_ordered as i32);
                assert!(l.product_id.is_some());
                assert_eq!(l.reserved_quantity, l.quantity);
                *reserved.entry(l.sku.clone()).or_default() += l.quantity;
            }
            match o.status {
                OrderStatus::Pending => {
                    assert_eq!(i.status, "hold");
                    assert_eq!(i.payment_status, "unpaid");
                    assert_eq!(p.buyer_name.as_deref(), Some(PLACEHOLDER_REGISTRATION));
                    assert_eq!(p.buyer_email, None);
                    assert_eq!(p.ship_to_name.as_deref(), Some(PLACEHOLDER_REGISTRATION));
                    assert_eq!(p.ship_to_postal_code, None);
                    assert_eq!(i.payment_method, "placeholder");
                    assert_eq!(i.order_total, None);
                    assert_eq!((i.shipping_total, i.cod_fee), (None, None));
                    assert!(lines.iter().all(|l| l.unit_price.is_none()));
                }
                OrderStatus::Unshipped => {
                    assert_eq!(i.status, "awaiting_shipment");
                    assert_eq!(i.payment_status, "paid");
                    assert_eq!(p.buyer_name.as_deref(), Some(o.buyer.name.as_str()));
                    assert_eq!(p.buyer_email.as_deref(), Some(o.buyer.email.as_str()));
                    assert_eq!(p.ship_to_name.as_deref(), Some(o.address.name.as_str()));
                    assert_eq!(p.ship_to_postal_code.as_deref(), Some(o.address.postal_code.as_str()));
                    assert_eq!(p.ship_to_state.as_deref(), Some(o.address.state_or_region.as_str()));
                    assert_eq!(p.ship_to_city.as_deref(), Some(o.address.city.as_str()));
                    assert!(p.ship_to_address.as_deref().unwrap().starts_with(&o.address.address_line1));
                    assert_eq!(p.ship_to_phone, o.address.phone);
                    assert_eq!(i.ship_to_country.as_deref(), Some("JP"));
                    assert_eq!(i.payment_method, service_testkit::expected_payment_method(o.payment_method), "{}", o.order_id);
                    assert_eq!(i.order_total, Some(o.grand_total()));
                    // Shipping and COD fee are the instruction's own amounts, not in a line total.
                    assert_eq!((i.shipping_total, i.cod_fee), (Some(o.shipping_price), Some(o.cod_fee)));
                    for (l, it) in lines.iter().zip(&o.items) {
                        assert_eq!(l.unit_price, Some(it.unit_price));
                        assert_eq!(l.line_total, Some(it.unit_price * Decimal::from(it.quantity_ordered)));
                    }
                }
                other => panic!("unexpected generated status {other:?}"),
            }
            let expected = if o.prime {
                Some("express")
            } else if o.status == OrderStatus::Unshipped && o.address.state_or_region == "東京都" {
                Some("tokyo")
            } else {
                None
            };
            match expected {
                Some(name) => assert_eq!(i.delivery_method_name, name, "{}", o.order_id),
                None => {
                    assert_eq!(i.delivery_method_name, PLACEHOLDER_DELIVERY_METHOD);
                    assert_eq!(i.delivery_method_id, None);
                }
            }
        }
        let paid: Vec<_> = orders.iter().filter(|o| o.status == OrderStatus::Unshipped).collect();
        assert!(paid.iter().any(|o| !o.shipping_price.is_zero()), "a paid order with shipping");
        assert!(paid.iter().any(|o| !o.cod_fee.is_zero()), "a paid COD order");
        // Every payment-method mapping was exercised.
        for m in ["placeholder", "cod", "convenience_store", "other"] {
            assert!(stored.values().any(|i| i.payment_method == m), "no {m} order generated");
        }
        assert!(stored.values().any(|i| i.delivery_method_name == "tokyo"));
        // Reservations: reserved = sum of the lines, free dropped at once.
        let products = store::catalog::list_products(&mut conn, h.shop_id).await.unwrap();
        for p in &products {
            let n: usize = p.code[2..].parse().unwrap();
            let r = reserved.get(&sku(n)).copied().unwrap_or(0);
            assert_eq!(p.code, product_code(n));
            assert_eq!(p.reserved, r, "{}", p.code);
            assert_eq!(p.free, ON_HAND - r, "{}", p.code);
        }
        let reserve_rows = h
            .count("SELECT count(*) FROM stock_changes WHERE shop_id = $1 AND kind = 'reserve'")
            .await;
        assert_eq!(reserve_rows, total_lines as i64);
        drop(conn);
        // order.imported events, published.
        h.wait_outbox_drained(Duration::from_secs(20)).await;
        let events = h
            .count("SELECT count(*) FROM outbox WHERE routing_key = 'order.imported' AND payload->>'shop_id' = $1::text")
            .await;
        assert_eq!(events, 250);
        let summary = h
            .count("SELECT count(*) FROM api_log WHERE shop_id = $1 AND code = 'run_summary'")
            .await;
        assert_eq!(summary, 1);

        // The same trigger again (a redelivery/republish of the same message): nothing new.
        h.republish(&cmd).await;
        // An overlapping range run (the very same window) and an hours run.
        let range = h.trigger(ImportMode::Range { from, to }).await;
        let run2 = h.wait_run(range, Duration::from_secs(30)).await;
        let hours = h.trigger(ImportMode::Hours { hours: 168 }).await;
        let run3 = h.wait_run(hours, Duration::from_secs(30)).await;
        for r in [&run2, &run3] {
            assert_eq!(r.status, "succeeded", "{:?}", r.error);
            let c = counts(r);
            assert_eq!((c.new, c.updated, c.unchanged, c.failed), (0, 0, 250, 0), "{:?}", r.mode);
        }
        h.wait_outbox_drained(Duration::from_secs(20)).await;
        assert_eq!(runs_of_command(&h.pool, cmd.message_id).await, 1, "the duplicate trigger started no run");
        assert_eq!(h.count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1").await, 250);
        assert_eq!(
            h.count("SELECT count(*) FROM instruction_lines WHERE shop_id = $1").await,
            total_lines as i64
        );
        assert_eq!(
            h.count("SELECT count(*) FROM stock_changes WHERE shop_id = $1 AND kind = 'reserve'").await,
            total_lines as i64
        );
        assert_eq!(
            h.count("SELECT COALESCE(sum(reserved), 0)::bigint FROM stock WHERE shop_id = $1").await,
            reserved.values().map(|r| i64::from(*r)).sum::<i64>()
        );
        assert_eq!(
            h.count("SELECT count(*) FROM outbox WHERE routing_key = 'order.imported' AND payload->>'shop_id' = $1::text")
                .await,
            250
        );
    })
    .await;
}

/// Must show: a differential run after a first run imports only the orders created since.
#[sqlx::test(migrations = "../../migrations")]
async fn differential_after_a_first_run_imports_only_new_orders(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        h.sim.sim().generate_orders(60, 7, JP_ONLY);
        let first = h.trigger(ImportMode::Differential).await;
        let run1 = h.wait_run(first, Duration::from_secs(30)).await;
        assert_eq!(run1.status, "succeeded", "{:?}", run1.error);
        assert_eq!(counts(&run1).new, 60);
        let (from1, to1) = (run1.window_from.unwrap(), run1.window_to.unwrap());
        assert_eq!(
            to1 - from1,
            ChronoDuration::days(7) - ChronoDuration::minutes(2),
            "first window: one week"
        );

        // New orders arrive (created five minutes ago, as Amazon makes them visible late).
        let mut new_ids = Vec::new();
        for status in [
            OrderStatus::Pending,
            OrderStatus::Unshipped,
            OrderStatus::Pending,
        ] {
            let o = h
                .sim
                .sim()
                .create_order(OrderSpec {
                    status: Some(status),
                    ..Default::default()
                })
                .unwrap();
            new_ids.push(o.order_id);
        }
        let second = h.trigger(ImportMode::Differential).await;
        let run2 = h.wait_run(second, Duration::from_secs(30)).await;
        assert_eq!(run2.status, "succeeded", "{:?}", run2.error);
        let c = counts(&run2);
        assert_eq!(c.new, 3, "only the orders created since: {c:?}");
        assert_eq!(c.failed, 0);
        // The second window (what the ledger shows) starts at the first watermark minus the
        // overlap, the watermark taken no later than now minus the overlap (it is Amazon's
        // clock, which may run ahead of ours).
        let from2 = run2.window_from.unwrap();
        assert!(from2 <= run1.watermark.unwrap() - domain::window::OVERLAP);
        assert!(
            run2.started_at - from2 <= domain::window::OVERLAP * 2 + ChronoDuration::seconds(5)
        );
        assert_eq!(
            h.count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1")
                .await,
            63
        );
        let mut conn = h.pool.acquire().await.unwrap();
        for id in &new_ids {
            assert!(
                store::instructions::by_order(&mut conn, h.shop_id, id)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    })
    .await;
}

/// Must show: a range of 8 days and hours = 200 are refused with a clear message and change
/// nothing (no Amazon call, no instruction, no stock change).
#[sqlx::test(migrations = "../../migrations")]
async fn over_long_windows_are_refused_with_a_clear_message(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        h.sim.sim().generate_orders(20, 3, JP_ONLY);
        let stock_before = h
            .count("SELECT count(*) FROM stock_changes WHERE shop_id = $1")
            .await;
        let from = Utc::now() - ChronoDuration::days(20);
        let range = h
            .trigger(ImportMode::Range {
                from,
                to: from + ChronoDuration::days(8),
            })
            .await;
        let hours = h.trigger(ImportMode::Hours { hours: 200 }).await;
        let r1 = h.wait_run(range, Duration::from_secs(20)).await;
        let r2 = h.wait_run(hours, Duration::from_secs(20)).await;
        for (r, needle) in [(&r1, "at most 7 days"), (&r2, "1 to 168")] {
            assert_eq!(r.status, "rejected");
            assert!(
                r.error.as_deref().unwrap().contains(needle),
                "{:?}",
                r.error
            );
            assert_eq!(r.amazon_calls, 0);
            let mut conn = h.pool.acquire().await.unwrap();
            let log = store::api_log::query(
                &mut conn,
                &store::api_log::Filter {
                    run_id: Some(r.id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(log.len(), 1);
            assert_eq!(log[0].level, "error");
            assert_eq!(log[0].code.as_deref(), Some("invalid_trigger"));
            assert!(log[0].message.contains(needle), "{}", log[0].message);
        }
        assert_eq!(h.sim_calls("searchOrders").calls, 0);
        assert_eq!(
            h.count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1")
                .await,
            0
        );
        assert_eq!(
            h.count("SELECT count(*) FROM stock_changes WHERE shop_id = $1")
                .await,
            stock_before
        );
        assert_eq!(
            h.count("SELECT count(*) FROM action_leases WHERE shop_id = $1")
                .await,
            0
        );
        // A trigger for an unknown shop is logged and acknowledged.
        let ghost = Command::new(
            uuid::Uuid::now_v7(),
            Action::OrderIngest,
            CommandParams::OrderIngest {
                mode: ImportMode::Differential,
            },
            "test",
            Utc::now(),
        );
        h.send(&ghost).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM api_log WHERE code = 'unknown_shop'")
                    .fetch_one(&h.pool)
                    .await
                    .unwrap();
            if n == 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "unknown shop not logged"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Must show: an order with an unmapped SKU is imported with its line flagged (no product, no
/// reservation, an `attention` API-log entry naming the SKU); the other orders are unaffected.
#[sqlx::test(migrations = "../../migrations")]
async fn unmapped_sku_is_flagged_and_other_orders_are_unaffected(pool: PgPool) {
    let opts = Options {
        unmapped: vec![],
        ..Options::default()
    };
    Harness::run(pool, opts, async |h| {
        let sim = h.sim.sim();
        let odd = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                items: vec![
                    ItemSpec {
                        seller_sku: Some("NEW-SKU-1".into()),
                        quantity: Some(2),
                        ..Default::default()
                    },
                    ItemSpec {
                        seller_sku: Some(sku(3)),
                        quantity: Some(1),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })
            .unwrap();
        let others = sim.generate_orders(30, 11, JP_ONLY);
        let cmd = h.trigger(ImportMode::Hours { hours: 168 }).await;
        let run = h.wait_run(cmd, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        assert_eq!((c.new, c.failed, c.unmapped_lines), (31, 0, 1));

        let mut conn = h.pool.acquire().await.unwrap();
        let i = store::instructions::by_order(&mut conn, h.shop_id, &odd.order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.payment_status, "paid");
        let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].sku, "NEW-SKU-1");
        assert_eq!(lines[0].product_id, None);
        assert_eq!(lines[0].reserved_quantity, 0);
        assert_eq!(lines[1].reserved_quantity, 1);
        let log = store::api_log::query(
            &mut conn,
            &store::api_log::Filter {
                shop_id: Some(h.shop_id),
                level: Some("attention".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].sku.as_deref(), Some("NEW-SKU-1"));
        assert_eq!(
            log[0].amazon_order_id.as_deref(),
            Some(odd.order_id.as_str())
        );
        assert!(log[0].message.contains("NEW-SKU-1"));
        for o in &others {
            let i = store::instructions::by_order(&mut conn, h.shop_id, &o.order_id)
                .await
                .unwrap()
                .unwrap();
            let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
            assert!(
                lines
                    .iter()
                    .all(|l| l.product_id.is_some() && l.reserved_quantity == l.quantity)
            );
        }
        // Mapping the SKU and importing again completes the line and reserves its stock.
        let p = store::catalog::insert_product(&mut conn, h.shop_id, "P-NEW", "New product")
            .await
            .unwrap();
        store::inventory::map_sku(&mut conn, h.shop_id, "NEW-SKU-1", p.id, None)
            .await
            .unwrap();
        drop(conn);
        let again = h.trigger(ImportMode::Hours { hours: 168 }).await;
        let run2 = h.wait_run(again, Duration::from_secs(30)).await;
        let c2 = counts(&run2);
        assert_eq!((c2.new, c2.updated, c2.unchanged), (0, 1, 30));
        let mut conn = h.pool.acquire().await.unwrap();
        let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
        assert_eq!(lines[0].product_id, Some(p.id));
        assert_eq!(lines[0].reserved_quantity, 2);
        assert_eq!(
            store::catalog::stock(&mut conn, p.id)
                .await
                .unwrap()
                .reserved,
            2
        );
    })
    .await;
}

/// Operator and status-sync changes survive re-imports: allocated/canceled instructions stay,
/// and a Pending re-import never resets a paid instruction to placeholders.
#[sqlx::test(migrations = "../../migrations")]
async fn reimport_never_overwrites_local_changes(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        let sim = h.sim.sim();
        let a = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Pending),
                ..Default::default()
            })
            .unwrap();
        let b = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                ..Default::default()
            })
            .unwrap();
        let run = h
            .wait_run(
                h.trigger(ImportMode::Hours { hours: 1 }).await,
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(counts(&run).new, 2);
        let mut conn = h.pool.acquire().await.unwrap();
        let ia = store::instructions::by_order(&mut conn, h.shop_id, &a.order_id)
            .await
            .unwrap()
            .unwrap();
        let ib = store::instructions::by_order(&mut conn, h.shop_id, &b.order_id)
            .await
            .unwrap()
            .unwrap();
        // An operator allocates A; B is paid (status-sync's work) with local data.
        store::instructions::set_status(&mut conn, ia.id, domain::InstructionStatus::Allocated)
            .await
            .unwrap();
        let keys = crypto::Keyring::for_testing();
        let mut fixed = store::pii::read(&mut conn, &keys, ib.id)
            .await
            .unwrap()
            .unwrap();
        fixed.ship_to_name = Some("operator fixed".into());
        store::pii::write(&mut conn, &keys, ib.id, &fixed)
            .await
            .unwrap();
        drop(conn);
        let run = h
            .wait_run(
                h.trigger(ImportMode::Hours { hours: 1 }).await,
                Duration::from_secs(30),
            )
            .await;
        let c = counts(&run);
        assert_eq!((c.new, c.updated, c.unchanged), (0, 0, 2));
        let mut conn = h.pool.acquire().await.unwrap();
        let ia2 = store::instructions::get(&mut conn, ia.id).await.unwrap();
        let ib2 = store::instructions::get(&mut conn, ib.id).await.unwrap();
        assert_eq!(ia2.status, "allocated");
        assert_eq!(ib2.payment_status, "paid");
        let p2 = store::pii::read(&mut conn, &keys, ib.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p2.ship_to_name.as_deref(), Some("operator fixed"));
        let la = store::instructions::lines(&mut conn, ia.id).await.unwrap();
        assert!(
            la.iter().all(|l| l.reserved_quantity == 0),
            "allocation moved the reservation"
        );
    })
    .await;
}

/// Must show: with Amazon's real searchOrders quota (scaled ×50 in the simulator and the
/// client: burst 20, one page every 3.6 s), a 2,500-order import completes through continuations with zero 429s, and no
/// handler holds a message while it waits (every wait beyond 0.5 s became a continuation).
/// A second trigger while the run waits is recorded as skipped.
#[sqlx::test(migrations = "../../migrations")]
async fn large_import_completes_through_continuations_without_429(pool: PgPool) {
    let opts = Options {
        sim_rate_scale: 50.0,
        client_rate_scale: 50.0,
        max_limiter_wait: Duration::from_millis(500),
        ..Options::default()
    };
    Harness::run(pool, opts, async |h| {
        let n = 2_500;
        h.sim.sim().generate_orders(n, 99, JP_ONLY);
        let started = std::time::Instant::now();
        let cmd = h.trigger(ImportMode::Differential).await;
        // While the run is active (running or waiting for its quota), a second trigger is skipped.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let active: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM action_runs WHERE command_id = $1 AND status IN ('running', 'waiting')",
            )
            .bind(cmd)
            .fetch_one(&h.pool)
            .await
            .unwrap();
            if active > 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the run never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = h.trigger(ImportMode::Differential).await;
        let skipped = h.wait_run(second, Duration::from_secs(30)).await;
        assert_eq!(skipped.status, "skipped");

        let run = h.wait_run(cmd, Duration::from_secs(90)).await;
        let elapsed = started.elapsed();
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        eprintln!(
            "large import: {n} orders in {elapsed:?}; counts {c:?}; sim {:?}; client {:?}",
            h.sim_calls("searchOrders"),
            h.api.stats().get("searchOrders")
        );
        assert_eq!(c.new as usize, n);
        assert_eq!(c.pages as usize, n.div_ceil(100));
        assert!(c.tally.continuations >= 1, "{c:?}");
        let sim = h.sim_calls("searchOrders");
        assert_eq!(sim.throttled, 0, "zero 429s");
        assert_eq!(sim.calls as usize, n.div_ceil(100));
        let stats = h.api.stats().get("searchOrders");
        assert_eq!(stats.throttled, 0);
        // No call slept longer than the 0.5 s allowed: waits became continuations instead.
        assert!(
            stats.limiter_wait_ms <= 500 * u64::from(c.pages),
            "limiter wait {} ms over {} pages",
            stats.limiter_wait_ms,
            c.pages
        );
        assert_eq!(
            h.count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1").await,
            n as i64
        );
        let continues = h
            .count("SELECT count(*) FROM outbox WHERE routing_key = 'order-ingest' AND payload->'params'->>'kind' = 'continue' AND payload->>'shop_id' = $1::text")
            .await;
        assert_eq!(continues, i64::from(c.tally.continuations));
    })
    .await;
}

/// `ctl import-order` (the library function it calls): one order recovered by getOrder; a
/// shipped order is refused with a clear message.
#[sqlx::test(migrations = "../../migrations")]
async fn import_order_recovers_one_order_by_id(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        let sim = h.sim.sim();
        let o = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                ..Default::default()
            })
            .unwrap();
        let keys = crypto::Keyring::for_testing();
        let handle = {
            let mut conn = h.pool.acquire().await.unwrap();
            let shop = store::shops::get(&mut conn, h.shop_id).await.unwrap();
            runtime::shop_api(&mut conn, &keys, &h.api, &shop.shop)
                .await
                .unwrap()
        };
        let r = orders::import_order(
            &h.pool,
            &keys,
            &handle,
            &h.topology.events_exchange(),
            h.shop_id,
            &o.order_id,
            "alice",
        )
        .await
        .unwrap();
        assert_eq!(r.result, "new", "{r:?}");
        let again = orders::import_order(
            &h.pool,
            &keys,
            &handle,
            &h.topology.events_exchange(),
            h.shop_id,
            &o.order_id,
            "alice",
        )
        .await
        .unwrap();
        assert_eq!(again.result, "unchanged");
        assert_eq!(h.sim_calls("getOrder").calls, 2);
        let mut conn = h.pool.acquire().await.unwrap();
        let i = store::instructions::by_order(&mut conn, h.shop_id, &o.order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i.payment_status, "paid");
        let run = store::runs::get(&mut conn, r.run_id).await.unwrap();
        assert_eq!(
            (run.mode.as_deref(), run.status.as_str(), run.amazon_calls),
            (Some("single"), "succeeded", 1)
        );
        drop(conn);
        sim.set_order_status(
            &o.order_id,
            spapi_sim::StatusChange::Cancelled {
                cancelled_by: None,
                reason: None,
            },
        )
        .unwrap();
        let shipped = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Shipped),
                ..Default::default()
            })
            .unwrap();
        let refused = orders::import_order(
            &h.pool,
            &keys,
            &handle,
            &h.topology.events_exchange(),
            h.shop_id,
            &shipped.order_id,
            "alice",
        )
        .await
        .unwrap();
        assert_eq!(refused.result, "refused");
        assert!(
            refused
                .message
                .contains("only merchant-fulfilled PENDING and UNSHIPPED"),
            "{}",
            refused.message
        );
    })
    .await;
}

/// A page is imported in one batch; when the batch fails on an order the database refuses (two
/// items with one order item id), its orders are imported one by one: that order alone is
/// refused with an API-log entry, the others come in, and every product's reserved stock equals
/// the sum of its lines (the batch summed several lines per product into one update).
#[sqlx::test(migrations = "../../migrations")]
async fn a_page_whose_batch_fails_is_imported_order_by_order(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        let sim = h.sim.sim();
        let item = |n: usize| ItemSpec {
            seller_sku: Some(sku(n)),
            quantity: Some(1),
            order_item_id: Some("11111111111111".into()),
            ..Default::default()
        };
        let bad = sim
            .create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                items: vec![item(1), item(2)],
                ..Default::default()
            })
            .unwrap();
        sim.generate_orders(20, 5, JP_ONLY);
        let cmd = h.trigger(ImportMode::Hours { hours: 168 }).await;
        let run = h.wait_run(cmd, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        assert_eq!((c.new, c.failed), (20, 1));

        let mut conn = h.pool.acquire().await.unwrap();
        assert!(
            store::instructions::by_order(&mut conn, h.shop_id, &bad.order_id)
                .await
                .unwrap()
                .is_none(),
            "the refused order left nothing behind"
        );
        let refused: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_log WHERE amazon_order_id = $1 AND code = 'order_not_imported'",
        )
        .bind(&bad.order_id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(refused, 1);
        let mismatched: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM products p
               LEFT JOIN stock s ON s.product_id = p.id
              WHERE COALESCE(s.reserved, 0) <> (SELECT COALESCE(sum(l.reserved_quantity), 0)
                                                  FROM instruction_lines l WHERE l.product_id = p.id)",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(mismatched, 0, "reserved stock equals the sum of open lines");
        let ledger: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM stock_changes WHERE kind = 'reserve'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let reserving: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM instruction_lines WHERE reserved_quantity > 0",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(ledger, reserving, "one stock-change row per reserving line");
    })
    .await;
}

/// Issue 17, item 9 (seed 1: 「ステータスが Pending と Unshipped の注文」 are the orders imported):
/// a range import and an hours import leave out Shipped, Cancelled, PartiallyShipped and
/// Amazon-fulfilled orders, whatever the window.
#[sqlx::test(migrations = "../../migrations")]
async fn range_and_hours_imports_take_only_pending_and_unshipped_merchant_orders(pool: PgPool) {
    Harness::run(pool, Options::default(), async |h| {
        let sim = h.sim.sim();
        let mut wanted = Vec::new();
        let specs = [
            (OrderStatus::Pending, spapi_sim::FulfilledBy::Merchant, true),
            (OrderStatus::Unshipped, spapi_sim::FulfilledBy::Merchant, true),
            (OrderStatus::Shipped, spapi_sim::FulfilledBy::Merchant, false),
            (OrderStatus::Cancelled, spapi_sim::FulfilledBy::Merchant, false),
            (OrderStatus::PartiallyShipped, spapi_sim::FulfilledBy::Merchant, false),
            (OrderStatus::Unshipped, spapi_sim::FulfilledBy::Amazon, false),
            (OrderStatus::Pending, spapi_sim::FulfilledBy::Amazon, false),
        ];
        for (status, fulfilled_by, imported) in specs {
            let o = sim
                .create_order(OrderSpec {
                    status: Some(status),
                    fulfilled_by: Some(fulfilled_by),
                    created_time: Some(Utc::now() - ChronoDuration::hours(2)),
                    items: vec![ItemSpec {
                        seller_sku: Some(sku(1)),
                        quantity: Some(2),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .unwrap();
            if imported {
                wanted.push(o.order_id);
            }
        }
        wanted.sort();
        let imported = async || -> Vec<String> {
            sqlx::query_scalar(
                "SELECT amazon_order_id FROM shipping_instructions WHERE shop_id = $1 ORDER BY amazon_order_id",
            )
            .bind(h.shop_id)
            .fetch_all(&h.pool)
            .await
            .unwrap()
        };
        let now = Utc::now();
        let range = ImportMode::Range {
            from: now - ChronoDuration::hours(3),
            to: now - ChronoDuration::minutes(5),
        };
        let run = h.wait_run(h.trigger(range).await, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(imported().await, wanted, "range import");

        // The same through an hours import, on a clean table.
        sqlx::query("DELETE FROM shipping_instructions WHERE shop_id = $1")
            .bind(h.shop_id)
            .execute(&h.pool)
            .await
            .unwrap();
        let hours = ImportMode::Hours { hours: 3 };
        let run = h.wait_run(h.trigger(hours).await, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(imported().await, wanted, "hours import");
    })
    .await;
}
