//! status-sync against the simulator, real PostgreSQL and RabbitMQ.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Harness;
use domain::{
    InstructionStatus, PLACEHOLDER_DELIVERY_METHOD, delivery_rules::RuleConditions,
    messages::StatusSyncMode, window::ImportMode,
};
use rust_decimal::Decimal;
use spapi_sim::{ItemSpec, MarketplaceMix, OrderSpec, OrderStatus, PaymentMethod, StatusChange};
use sqlx::PgPool;
use status_sync::Counts;
use uuid::Uuid;

const ALL_PENDING: MarketplaceMix = MarketplaceMix {
    jp: 1,
    au: 0,
    sg: 0,
    pending_ratio: 1.0,
};

fn counts(run: &store::runs::Run) -> Counts {
    service_testkit::run_counts(run)
}

/// Everything a sync could change: instructions, lines, stock, API log, events.
async fn snapshot(
    pool: &PgPool,
) -> (
    Vec<(Uuid, String, String, String)>,
    Vec<(Uuid, i32, i32, i64)>,
    i64,
    i64,
    i64,
) {
    let inst: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT id, status, payment_status, updated_at::text FROM shipping_instructions ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let stock: Vec<(Uuid, i32, i32, i64)> = sqlx::query_as(
        "SELECT product_id, reserved, allocated, change_seq FROM stock ORDER BY product_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let lines: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(reserved_quantity), 0)::bigint FROM instruction_lines",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let attention: i64 =
        // (ship-by warnings depend on when the generated orders fall due: not counted here)
        sqlx::query_scalar("SELECT count(*) FROM api_log WHERE level = 'attention' AND code IS DISTINCT FROM 'ship_by_approaching'")
            .fetch_one(pool)
            .await
            .unwrap();
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key LIKE 'order.%'")
            .fetch_one(pool)
            .await
            .unwrap();
    (inst, stock, lines, attention, events)
}

/// Must show: 100 imported PENDING orders; on Amazon 60 are then paid and 20 cancelled, 5 of
/// the cancelled ones already allocated locally. One status-sync run makes exactly 60 paid
/// with full buyer/address/payment/prices, 15 canceled with their reservations released, 5
/// flagged for attention and untouched, with one Amazon call. A second run with no change
/// on Amazon changes nothing and makes one call.
#[sqlx::test(migrations = "../../migrations")]
async fn one_run_applies_60_payments_15_cancellations_and_flags_5_allocated(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        h.add_rule(10, "tokyo", RuleConditions { states: vec!["東京都".into()], ..Default::default() }).await;
        let sim = h.sim.sim();
        let orders = sim.generate_orders(100, 21, ALL_PENDING);
        assert!(orders.iter().all(|o| o.status == OrderStatus::Pending));
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        let imported = h.count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND status = 'hold'").await;
        assert_eq!(imported, 100);

        let mut conn = h.pool.acquire().await.unwrap();
        let mut ids: HashMap<String, Uuid> = HashMap::new();
        for o in &orders {
            let i = store::instructions::by_order(&mut conn, h.shop_id, &o.order_id).await.unwrap().unwrap();
            ids.insert(o.order_id.clone(), i.id);
        }
        let (paid, rest) = orders.split_at(60);
        let (cancelled, untouched) = rest.split_at(20);
        let (cancel_open, cancel_allocated) = cancelled.split_at(15);
        // An operator allocates 5 of the orders Amazon is about to cancel.
        for o in cancel_allocated {
            store::instructions::set_status(&mut conn, ids[&o.order_id], InstructionStatus::Allocated)
                .await
                .unwrap();
        }
        let mut reserved_by_cancel: HashMap<Uuid, i32> = HashMap::new();
        for o in cancel_open {
            for l in store::instructions::lines(&mut conn, ids[&o.order_id]).await.unwrap() {
                *reserved_by_cancel.entry(l.product_id.unwrap()).or_default() += l.reserved_quantity;
            }
        }
        let stock_before: HashMap<Uuid, (i32, i32)> = store::catalog::list_products(&mut conn, h.shop_id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, (p.reserved, p.allocated)))
            .collect();
        drop(conn);
        for o in paid {
            sim.set_order_status(&o.order_id, StatusChange::Unshipped).unwrap();
        }
        for o in cancelled {
            sim.set_order_status(&o.order_id, StatusChange::Cancelled { cancelled_by: Some("BUYER".into()), reason: None })
                .unwrap();
        }
        let calls_before = h.sim_calls("searchOrders").calls + h.sim_calls("getOrder").calls;

        let run = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        eprintln!("first status-sync run: {c:?}");
        assert_eq!((c.paid, c.canceled, c.attention, c.failed), (60, 15, 5, 0), "{c:?}");
        assert_eq!(c.unchanged, 20);
        let calls = h.sim_calls("searchOrders").calls + h.sim_calls("getOrder").calls - calls_before;
        assert_eq!(calls, 1, "one searchOrders call covers the 100 changed orders");
        assert_eq!(run.amazon_calls, 1);

        let mut conn = h.pool.acquire().await.unwrap();
        let amazon: HashMap<String, spapi_sim::Order> =
            sim.orders().into_iter().map(|o| (o.order_id.clone(), o)).collect();
        for o in paid {
            let i = store::instructions::get(&mut conn, ids[&o.order_id]).await.unwrap();
            let p = store::pii::read(&mut conn, &crypto::Keyring::for_testing(), i.id)
                .await
                .unwrap()
                .expect("sealed personal data");
            let a = &amazon[&o.order_id];
            assert_eq!(i.payment_status, "paid");
            assert_eq!(i.status, "awaiting_shipment");
            assert_eq!(p.buyer_name.as_deref(), Some(a.buyer.name.as_str()));
            assert_eq!(p.buyer_email.as_deref(), Some(a.buyer.email.as_str()));
            assert_eq!(p.ship_to_name.as_deref(), Some(a.address.name.as_str()));
            assert_eq!(p.ship_to_postal_code.as_deref(), Some(a.address.postal_code.as_str()));
            assert_eq!(p.ship_to_state.as_deref(), Some(a.address.state_or_region.as_str()));
            assert_eq!(p.ship_to_city.as_deref(), Some(a.address.city.as_str()));
            assert_eq!(p.ship_to_phone, a.address.phone);
            assert_eq!(i.payment_method, service_testkit::expected_payment_method(a.payment_method));
            assert_eq!(i.order_total, Some(a.grand_total()));
            assert_eq!((i.shipping_total, i.cod_fee), (Some(a.shipping_price), Some(a.cod_fee)));
            let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
            for (l, it) in lines.iter().zip(&a.items) {
                assert_eq!(l.unit_price, Some(it.unit_price));
                assert_eq!(l.line_total, Some(it.unit_price * Decimal::from(it.quantity_ordered)));
                assert_eq!(l.reserved_quantity, l.quantity, "payment keeps the reservation");
            }
            // Delivery rules re-applied now that the prefecture is known.
            if a.address.state_or_region == "東京都" {
                assert_eq!(i.delivery_method_name, "tokyo");
            } else {
                assert_eq!(i.delivery_method_name, PLACEHOLDER_DELIVERY_METHOD);
            }
        }
        assert!(paid.iter().any(|o| !amazon[&o.order_id].shipping_price.is_zero()), "an order with shipping paid");
        assert!(paid.iter().any(|o| !amazon[&o.order_id].cod_fee.is_zero()), "a COD order paid");
        for o in cancel_open {
            let i = store::instructions::get(&mut conn, ids[&o.order_id]).await.unwrap();
            assert_eq!(i.status, "canceled");
            let lines = store::instructions::lines(&mut conn, i.id).await.unwrap();
            assert!(lines.iter().all(|l| l.reserved_quantity == 0));
        }
        let stock_after: HashMap<Uuid, (i32, i32)> = store::catalog::list_products(&mut conn, h.shop_id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, (p.reserved, p.allocated)))
            .collect();
        for (p, (reserved, allocated)) in &stock_before {
            let released = reserved_by_cancel.get(p).copied().unwrap_or(0);
            assert_eq!(stock_after[p], (reserved - released, *allocated), "product {p}: reservations released");
        }
        let released: i32 = reserved_by_cancel.values().sum();
        assert_eq!(c.released, i64::from(released));
        let attention = store::api_log::query(
            &mut conn,
            &store::api_log::Filter { shop_id: Some(h.shop_id), level: Some("attention".into()), ..Default::default() },
        )
        .await
        .unwrap();
        // Ship-by warnings of generated orders that happen to fall due are another matter.
        let attention: Vec<_> = attention.into_iter().filter(|e| e.code.as_deref() != Some("ship_by_approaching")).collect();
        assert_eq!(attention.len(), 5);
        for o in cancel_allocated {
            let i = store::instructions::get(&mut conn, ids[&o.order_id]).await.unwrap();
            assert_eq!(i.status, "allocated", "an allocated instruction is never canceled by the sync");
            assert_eq!(i.payment_status, "unpaid");
            assert!(attention.iter().any(|e| e.amazon_order_id.as_deref() == Some(o.order_id.as_str())));
        }
        for o in untouched {
            let i = store::instructions::get(&mut conn, ids[&o.order_id]).await.unwrap();
            assert_eq!((i.status.as_str(), i.payment_status.as_str()), ("hold", "unpaid"));
        }
        drop(conn);
        h.wait_outbox_drained(Duration::from_secs(20)).await;
        assert_eq!(h.count("SELECT count(*) FROM outbox WHERE routing_key = 'order.paid' AND payload->>'shop_id' = $1::text").await, 60);
        assert_eq!(h.count("SELECT count(*) FROM outbox WHERE routing_key = 'order.canceled' AND payload->>'shop_id' = $1::text").await, 15);

        // Second run, nothing changed on Amazon: nothing changes here, one call.
        let before = snapshot(&h.pool).await;
        let calls_before = h.sim_calls("searchOrders").calls + h.sim_calls("getOrder").calls;
        let run2 = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
        assert_eq!(run2.status, "succeeded", "{:?}", run2.error);
        let c2 = counts(&run2);
        eprintln!("second status-sync run: {c2:?}");
        assert_eq!((c2.paid, c2.canceled, c2.attention, c2.failed), (0, 0, 0, 0), "{c2:?}");
        assert_eq!(h.sim_calls("searchOrders").calls + h.sim_calls("getOrder").calls - calls_before, 1);
        assert_eq!(run2.amazon_calls, 1);
        assert!(run2.window_from.unwrap() >= run.watermark.unwrap() - domain::window::OVERLAP);
        assert!(run2.watermark.unwrap() >= run.watermark.unwrap(), "the watermark only moves forward");
        h.wait_outbox_drained(Duration::from_secs(20)).await;
        assert_eq!(snapshot(&h.pool).await, before, "the second run changed nothing");
    })
    .await;
}

/// Seed (ステータス同期, 入金済への更新): "処理が成功するとコマースロボの出荷指示が「入金済み」に更新
/// されます。また、下記の情報を更新します。… ・単価 ・合計金額(明細)". 合計金額(明細) is the line's own
/// amount: Amazon's item `proceedsTotal` also carries the order's shipping charge and COD fee.
/// An order imported paid and one paid later both store each line's price × quantity, and the
/// shipping charge and the COD fee as the instruction's own amounts (issue 17, item 6).
#[sqlx::test(migrations = "../../migrations")]
async fn line_totals_leave_shipping_and_cod_fee_to_the_instruction(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let spec = |status| OrderSpec {
            status: Some(status),
            payment_method: Some(PaymentMethod::CashOnDelivery),
            shipping_price: Some(Decimal::from(500)),
            items: vec![
                ItemSpec { seller_sku: Some("SKU-0003".into()), quantity: Some(2), ..Default::default() },
                ItemSpec { seller_sku: Some("SKU-0007".into()), ..Default::default() },
            ],
            ..Default::default()
        };
        let imported_paid = sim.create_order(spec(OrderStatus::Unshipped)).unwrap();
        let paid_later = sim.create_order(spec(OrderStatus::Pending)).unwrap();
        let import = h.import(ImportMode::Differential).await;
        assert_eq!((import.new, import.failed), (2, 0), "{import:?}");
        sim.set_order_status(&paid_later.order_id, StatusChange::Unshipped).unwrap();
        let run = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(counts(&run).paid, 1);

        for o in [&imported_paid, &paid_later] {
            assert!(!o.shipping_price.is_zero() && !o.cod_fee.is_zero(), "{}: shipping and COD fee", o.order_id);
            let (shipping, cod_fee, total): (Option<Decimal>, Option<Decimal>, Option<Decimal>) = sqlx::query_as(
                "SELECT shipping_total, cod_fee, order_total FROM shipping_instructions WHERE amazon_order_id = $1",
            )
            .bind(&o.order_id)
            .fetch_one(&h.pool)
            .await
            .unwrap();
            assert_eq!(shipping, Some(o.shipping_price), "{}", o.order_id);
            assert_eq!(cod_fee, Some(o.cod_fee), "{}", o.order_id);
            assert_eq!(total, Some(o.grand_total()), "{}", o.order_id);
            let lines: Vec<(Option<String>, Option<Decimal>)> = sqlx::query_as(
                "SELECT l.amazon_order_item_id, l.line_total FROM instruction_lines l
                   JOIN shipping_instructions si ON si.id = l.instruction_id
                  WHERE si.amazon_order_id = $1 ORDER BY l.line_no",
            )
            .bind(&o.order_id)
            .fetch_all(&h.pool)
            .await
            .unwrap();
            assert_eq!(lines.len(), o.items.len());
            for ((item_id, line_total), it) in lines.iter().zip(&o.items) {
                assert_eq!(item_id.as_deref(), Some(it.order_item_id.as_str()));
                assert_eq!(
                    *line_total,
                    Some(it.unit_price * Decimal::from(it.quantity_ordered)),
                    "{} line {}: the item's price × quantity, without shipping or COD fee",
                    o.order_id,
                    it.order_item_id
                );
            }
        }
    })
    .await;
}

/// Reconcile mode (after an outage): every open imported instruction is checked with
/// getOrder; payments and cancellations are applied the same way.
/// Issue 17, item 9: Amazon cancelling a paid 出荷待ち instruction cancels it and releases its
/// reservation; Amazon cancelling one the warehouse already shipped changes nothing and raises
/// one attention entry (the parcel has left: a return and refund, not a cancellation).
#[sqlx::test(migrations = "../../migrations")]
async fn cancelling_a_paid_open_instruction_and_a_shipped_one(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(2, 29, ALL_PENDING);
        h.import(ImportMode::Differential).await;
        let (open, shipped) = (&orders[0].order_id, &orders[1].order_id);
        for o in [open, shipped] {
            sim.set_order_status(o, StatusChange::Unshipped).unwrap();
        }
        let sync = async || {
            // The changes since the last run (lastUpdatedAfter): every order Amazon changed,
            // shipped ones included.
            let run = h
                .wait_run(
                    h.trigger(StatusSyncMode::Changes).await,
                    Duration::from_secs(30),
                )
                .await;
            assert_eq!(run.status, "succeeded", "{:?}", run.error);
            counts(&run)
        };
        assert_eq!(sync().await.paid, 2);
        let mut conn = h.pool.acquire().await.unwrap();
        store::wms::allocate(&mut conn, h.shop_id, shipped).await.unwrap();
        let today = chrono::Utc::now().date_naive();
        store::wms::ship(&mut conn, h.shop_id, shipped, &["400012345678".into()], today)
            .await
            .unwrap();
        let id_of = async |o: &str| {
            let mut conn = h.pool.acquire().await.unwrap();
            store::instructions::by_order(&mut conn, h.shop_id, o)
                .await
                .unwrap()
                .unwrap()
                .id
        };
        let (open_id, shipped_id) = (id_of(open).await, id_of(shipped).await);
        let reserved_before: i32 = store::instructions::lines(&mut conn, open_id)
            .await
            .unwrap()
            .iter()
            .map(|l| l.reserved_quantity)
            .sum();
        assert!(reserved_before > 0);
        let stock_reserved = async || -> i64 {
            sqlx::query_scalar("SELECT COALESCE(sum(reserved), 0)::bigint FROM stock")
                .fetch_one(&h.pool)
                .await
                .unwrap()
        };
        let stock_before = stock_reserved().await;
        let shipped_before = store::instructions::get(&mut conn, shipped_id).await.unwrap();

        for o in [open, shipped] {
            let cancel = StatusChange::Cancelled {
                cancelled_by: None,
                reason: None,
            };
            sim.set_order_status(o, cancel).unwrap();
        }
        let c = sync().await;
        assert_eq!((c.canceled, c.attention), (1, 1), "{c:?}");
        let after = store::instructions::get(&mut conn, open_id).await.unwrap();
        assert_eq!(after.status, "canceled");
        assert_eq!(stock_reserved().await, stock_before - i64::from(reserved_before));
        let shipped_after = store::instructions::get(&mut conn, shipped_id).await.unwrap();
        assert_eq!(shipped_after.status, "shipped");
        assert_eq!(
            format!("{shipped_after:?}"),
            format!("{shipped_before:?}"),
            "nothing changed on the shipped instruction"
        );
        let flagged: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_log WHERE code = 'amazon_cancelled_after_allocation' AND amazon_order_id = $1",
        )
        .bind(shipped)
        .fetch_one(&h.pool)
        .await
        .unwrap();
        assert_eq!(flagged, 1);
        // Read again: said once.
        assert_eq!(sync().await.attention, 0);
    })
    .await;
}

/// Issue 17, item 5: a paid order whose buyer and ship-to Amazon does not return (PII role
/// missing, data withheld) is marked paid, keeps its 「Amazon 仮登録」 placeholders, and is
/// flagged for attention instead of passing silently.
#[sqlx::test(migrations = "../../migrations")]
async fn paid_without_buyer_or_address_is_flagged(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(2, 23, ALL_PENDING);
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        let (full, withheld) = (&orders[0].order_id, &orders[1].order_id);
        sim.withhold_order_pii(withheld).unwrap();
        for o in [full, withheld] {
            sim.set_order_status(o, StatusChange::Unshipped).unwrap();
        }
        let run = h
            .wait_run(
                h.trigger(StatusSyncMode::Reconcile).await,
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        assert_eq!((c.paid, c.attention), (2, 1), "{c:?}");
        let flagged: Vec<String> = sqlx::query_scalar(
            "SELECT amazon_order_id FROM api_log WHERE code = 'paid_without_address' AND level = 'attention' AND message LIKE '%Amazon 仮登録%'",
        )
        .fetch_all(&h.pool)
        .await
        .unwrap();
        assert_eq!(flagged, vec![withheld.clone()]);
        let paid: String = sqlx::query_scalar(
            "SELECT payment_status FROM shipping_instructions WHERE amazon_order_id = $1",
        )
        .bind(withheld)
        .fetch_one(&h.pool)
        .await
        .unwrap();
        assert_eq!(paid, "paid");
    })
    .await;
}

/// 「出荷指示が「入金済み」に更新されます」: payment changes the payment status. A hold the import
/// placed because the order was unpaid is released with it; a hold an operator placed stays on
/// hold, paid (issue 17, item 4).
#[sqlx::test(migrations = "../../migrations")]
async fn payment_releases_only_the_imports_unpaid_hold(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(2, 17, ALL_PENDING);
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        let (unpaid_hold, operator_hold) = (&orders[0].order_id, &orders[1].order_id);
        let mut conn = h.pool.acquire().await.unwrap();
        let held = store::instructions::place_hold(
            &mut conn,
            h.shop_id,
            operator_hold,
            domain::HoldReason::Operator,
        )
        .await
        .unwrap();
        assert!(held);
        for o in [unpaid_hold, operator_hold] {
            sim.set_order_status(o, StatusChange::Unshipped).unwrap();
        }
        let run = h
            .wait_run(
                h.trigger(StatusSyncMode::Reconcile).await,
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(counts(&run).paid, 2);
        let state = async |order: &str| -> (String, String, Option<String>) {
            sqlx::query_as(
                "SELECT status, payment_status, hold_reason FROM shipping_instructions WHERE amazon_order_id = $1",
            )
            .bind(order)
            .fetch_one(&h.pool)
            .await
            .unwrap()
        };
        assert_eq!(
            state(unpaid_hold).await,
            ("awaiting_shipment".into(), "paid".into(), None)
        );
        assert_eq!(
            state(operator_hold).await,
            ("hold".into(), "paid".into(), Some("operator".into()))
        );
    })
    .await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn reconcile_checks_every_open_instruction_by_get_order(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(12, 8, ALL_PENDING);
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        sim.set_order_status(&orders[0].order_id, StatusChange::Unshipped)
            .unwrap();
        sim.set_order_status(
            &orders[1].order_id,
            StatusChange::Cancelled {
                cancelled_by: None,
                reason: None,
            },
        )
        .unwrap();
        sim.set_order_status(
            &orders[2].order_id,
            StatusChange::BuyerCancelRequested { reason: None },
        )
        .unwrap();
        let run = h
            .wait_run(
                h.trigger(StatusSyncMode::Reconcile).await,
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        assert_eq!(
            (c.seen, c.paid, c.canceled, c.attention),
            (12, 1, 1, 1),
            "{c:?}"
        );
        assert_eq!(c.tally.calls.get("getOrder"), Some(&12));
        assert_eq!(h.sim_calls("getOrder").calls, 12);
        // Only open instructions are checked: the canceled one is no longer asked for.
        let run2 = h
            .wait_run(
                h.trigger(StatusSyncMode::Reconcile).await,
                Duration::from_secs(30),
            )
            .await;
        let c2 = counts(&run2);
        assert_eq!(
            (c2.seen, c2.paid, c2.canceled, c2.attention),
            (11, 0, 0, 0),
            "{c2:?}"
        );
    })
    .await;
}

/// Reconcile respects the shared limiter: when getOrder's burst is spent the run stores its
/// cursor and continues through the outbox (no 429, no handler sleeping on the quota).
#[sqlx::test(migrations = "../../migrations")]
async fn reconcile_continues_through_the_outbox_when_the_quota_runs_out(pool: PgPool) {
    let opts = common::Options {
        sim_rate_scale: 2.0,
        client_rate_scale: 2.0,
        max_limiter_wait: Duration::from_millis(500),
        ..common::Options::default()
    };
    Harness::run(pool, opts, async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(34, 9, ALL_PENDING);
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        for o in &orders[..10] {
            sim.set_order_status(&o.order_id, StatusChange::Unshipped)
                .unwrap();
        }
        let run = h
            .wait_run(
                h.trigger(StatusSyncMode::Reconcile).await,
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let c = counts(&run);
        eprintln!("reconcile with continuations: {c:?}");
        assert_eq!((c.seen, c.paid, c.failed), (34, 10, 0), "{c:?}");
        assert!(c.tally.continuations >= 1, "{c:?}");
        assert_eq!(h.sim_calls("getOrder").throttled, 0);
        assert_eq!(h.sim_calls("getOrder").calls, 34);
    })
    .await;
}

/// Issue 19: the orders Amazon announced (ORDER_CHANGE) are checked one by one with getOrder
/// and applied by the seed's rules — paid, canceled (reservation released) — and an announced
/// order nobody imported yet is imported; an id given twice is checked once, the other
/// pending orders are not touched (no searchOrders at all), and an id Amazon does not know is a
/// warning that does not stop the others.
#[sqlx::test(migrations = "../../migrations")]
async fn announced_orders_are_applied_one_by_one_and_new_ones_imported(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(4, 31, ALL_PENDING);
        h.import(ImportMode::Differential).await;
        let (paid, canceled, untouched) = (
            orders[0].order_id.as_str(),
            orders[1].order_id.as_str(),
            orders[2].order_id.as_str(),
        );
        // Placed after the import: Amazon announces it before the next import finds it.
        let fresh = sim.generate_orders(1, 32, ALL_PENDING);
        let fresh = fresh[0].order_id.as_str();
        sim.set_order_status(paid, StatusChange::Unshipped).unwrap();
        sim.set_order_status(untouched, StatusChange::Unshipped)
            .unwrap();
        sim.set_order_status(
            canceled,
            StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: None,
            },
        )
        .unwrap();
        let unknown = "999-0000000-0000000";
        let calls_before = sim.call_counts();
        let run = h
            .wait_run(
                h.trigger_orders(&[canceled, paid, fresh, paid, unknown])
                    .await,
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(run.mode.as_deref(), Some("orders"));
        let c = counts(&run);
        assert_eq!(
            (c.paid, c.canceled, c.imported, c.failed),
            (1, 1, 1, 1),
            "{c:?}"
        );
        let calls = sim.call_counts();
        let delta = |op: &str| {
            calls.get(op).map_or(0, |c| c.calls) - calls_before.get(op).map_or(0, |c| c.calls)
        };
        assert_eq!(delta("getOrder"), 4, "one getOrder per distinct id");
        assert_eq!(delta("searchOrders"), 0);

        let mut conn = h.pool.acquire().await.unwrap();
        let status_of = async |conn: &mut sqlx::PgConnection, o: &str| {
            store::instructions::by_order(conn, h.shop_id, o)
                .await
                .unwrap()
                .map(|i| (i.status, i.payment_status))
        };
        assert_eq!(
            status_of(&mut conn, paid).await.map(|s| s.1),
            Some("paid".to_owned())
        );
        assert_eq!(
            status_of(&mut conn, canceled).await.map(|s| s.0),
            Some("canceled".to_owned())
        );
        assert!(status_of(&mut conn, fresh).await.is_some(), "imported");
        assert_ne!(
            status_of(&mut conn, untouched).await.map(|s| s.1),
            Some("paid".to_owned()),
            "not announced: left to the sweep"
        );
        let warned: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_log WHERE code = 'order_not_found' AND amazon_order_id = $1",
        )
        .bind(unknown)
        .fetch_one(&h.pool)
        .await
        .unwrap();
        assert_eq!(warned, 1);
    })
    .await;
}

/// Issue 21 item 4: an open order whose ship-by time (`LatestShipDate`) is a few hours away gets
/// one `ship_by_approaching` attention entry from the next status-sync run, before the time is
/// missed; an order due in two days does not, nor does a second run.
#[sqlx::test(migrations = "../../migrations")]
async fn ship_by_approaching_is_flagged_once_before_it_is_missed(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let now = chrono::Utc::now();
        let create = |hours: i64| {
            sim.create_order(OrderSpec {
                status: Some(OrderStatus::Unshipped),
                latest_ship_date: Some(now + chrono::Duration::hours(hours)),
                ..Default::default()
            })
            .unwrap()
            .order_id
        };
        let (soon, later) = (create(3), create(48));
        let import = h.import(ImportMode::Differential).await;
        assert_eq!((import.new, import.failed), (2, 0), "{import:?}");

        let sync = async || {
            let run = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
            assert_eq!(run.status, "succeeded", "{:?}", run.error);
            counts(&run)
        };
        assert_eq!(sync().await.ship_by, 1);
        let flagged: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT amazon_order_id, level, message FROM api_log WHERE code = 'ship_by_approaching'",
        )
        .fetch_all(&h.pool)
        .await
        .unwrap();
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert_eq!(flagged[0].0, soon);
        assert_eq!(flagged[0].1, "attention");
        assert!(flagged[0].2.contains("Asia/Tokyo"), "{}", flagged[0].2);
        assert_ne!(flagged[0].0, later);
        assert_eq!(sync().await.ship_by, 0, "said once");
    })
    .await;
}
