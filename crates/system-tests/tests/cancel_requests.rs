//! Buyer cancellation requests (issue 21 item 1) against the simulator, real PostgreSQL and
//! RabbitMQ: status-sync holds the requested orders not allocated yet and flags the allocated
//! ones; an operator's acceptance cancels the instruction, releases its stock and is told to
//! Amazon in one order acknowledgement message that the simulator processes (the order ends
//! cancelled); a declined request ships as usual.

#[path = "../../status-sync/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::Harness;
use domain::{messages::StatusSyncMode, window::ImportMode};
use spapi_sim::{MarketplaceMix, OrderStatus, StatusChange};
use sqlx::PgPool;
use uuid::Uuid;

const ALL_UNSHIPPED: MarketplaceMix = MarketplaceMix {
    jp: 1,
    au: 0,
    sg: 0,
    pending_ratio: 0.0,
};

async fn scalar(h: &Harness, sql: &str, order: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(order)
        .fetch_one(&h.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn ten_orders_four_requests_two_held_two_flagged_one_accepted_one_declined(pool: PgPool) {
    Harness::run(pool, common::Options::default(), async |h| {
        let sim = h.sim.sim();
        let orders = sim.generate_orders(10, 41, ALL_UNSHIPPED);
        let import = h.import(ImportMode::Differential).await;
        assert_eq!(import.failed, 0, "{import:?}");
        let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        let mut conn = h.pool.acquire().await.unwrap();
        // Every instruction ships by Yamato (the import's placeholder method has no carrier).
        let yamato = store::catalog::upsert_delivery_method(&mut conn, h.shop_id, "yamato", "宅急便", Some("yamato"))
            .await
            .unwrap();
        sqlx::query("UPDATE shipping_instructions SET delivery_method_id = $1, delivery_method_name = '宅急便' WHERE shop_id = $2")
            .bind(yamato.id)
            .bind(h.shop_id)
            .execute(&h.pool)
            .await
            .unwrap();
        // Two of the four orders whose buyers will ask to cancel are allocated already.
        for o in &ids[2..4] {
            store::wms::allocate(&mut conn, h.shop_id, o).await.unwrap();
        }
        for o in &ids[..4] {
            sim.set_order_status(
                o,
                StatusChange::BuyerCancelRequested {
                    reason: Some("Order Created By Mistake".into()),
                },
            )
            .unwrap();
        }

        let run = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let held_sql = "SELECT count(*) FROM shipping_instructions WHERE amazon_order_id = $1 AND status = 'hold' AND hold_reason = 'buyer_cancel_request'";
        let entry_sql = "SELECT count(*) FROM api_log WHERE code = 'buyer_cancellation_request' AND level = 'attention' AND amazon_order_id = $1";
        let allocated_entry_sql = "SELECT count(*) FROM api_log WHERE code = 'buyer_cancellation_request' AND amazon_order_id = $1 AND message LIKE '%already allocated: stop the parcel%'";
        for o in &ids[..2] {
            assert_eq!(scalar(h, held_sql, o).await, 1, "{o} held");
            assert_eq!(scalar(h, entry_sql, o).await, 1, "{o} told once");
        }
        for o in &ids[2..4] {
            assert_eq!(scalar(h, allocated_entry_sql, o).await, 1, "{o} flagged");
            let status: String = sqlx::query_scalar("SELECT status FROM shipping_instructions WHERE amazon_order_id = $1")
                .bind(o)
                .fetch_one(&h.pool)
                .await
                .unwrap();
            assert_eq!(status, "allocated", "the warehouse decides: stop the parcel");
        }
        for o in &ids[4..] {
            assert_eq!(scalar(h, entry_sql, o).await, 0);
            assert_eq!(scalar(h, held_sql, o).await, 0);
        }
        // None shipped by mistake: a held one cannot be allocated.
        assert!(store::wms::allocate(&mut conn, h.shop_id, ids[0]).await.is_err());
        // Read again: nothing new.
        let again = h.wait_run(h.trigger(StatusSyncMode::Changes).await, Duration::from_secs(30)).await;
        assert_eq!(again.status, "succeeded");
        assert_eq!(scalar(h, entry_sql, ids[0]).await, 1);

        // Accept the first: cancelled here, its reservation released, the acknowledgement queued.
        let reserved = async || -> i64 {
            sqlx::query_scalar("SELECT COALESCE(sum(reserved), 0)::bigint FROM stock")
                .fetch_one(&h.pool)
                .await
                .unwrap()
        };
        let accepted_id = store::instructions::by_order(&mut conn, h.shop_id, ids[0]).await.unwrap().unwrap().id;
        let accepted_reserved: i64 = store::instructions::lines(&mut conn, accepted_id)
            .await
            .unwrap()
            .iter()
            .map(|l| i64::from(l.reserved_quantity))
            .sum();
        assert!(accepted_reserved > 0);
        let before = reserved().await;
        store::cancel_requests::accept(&mut conn, h.shop_id, ids[0], "alice").await.unwrap();
        assert_eq!(reserved().await, before - accepted_reserved);
        let twice = store::cancel_requests::accept(&mut conn, h.shop_id, ids[0], "alice").await;
        assert!(format!("{:?}", twice.unwrap_err()).contains("already accepted"));
        // Decline the second: it ships as usual.
        store::cancel_requests::decline(&mut conn, h.shop_id, ids[1], "bob").await.unwrap();
        store::wms::allocate(&mut conn, h.shop_id, ids[1]).await.unwrap();
        let today = domain::eligibility::today_in(chrono_tz::Asia::Tokyo, chrono::Utc::now());
        store::wms::ship(&mut conn, h.shop_id, ids[1], &["400012345678".into()], today)
            .await
            .unwrap();
        drop(conn);

        // shipment-feedback: one acknowledgement message (and the declined order's shipment).
        let keys = crypto::Keyring::for_testing();
        let api = spapi::SpApi::new(h.pool.clone(), spapi::ClientConfig::default()).unwrap();
        let topology = bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5);
        let feedback = shipment_feedback::Service::new(
            h.pool.clone(),
            keys.clone(),
            api.clone(),
            topology.clone(),
            shipment_feedback::Settings {
                first_poll_delay: chrono::Duration::milliseconds(200),
                ..Default::default()
            },
        );
        let report = feedback.run(h.shop_id, None, "test").await.unwrap();
        assert_eq!((report.acknowledged, report.sent), (1, 1), "{report:?}");
        let ack_messages: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM feed_messages m JOIN feed_submissions s ON s.id = m.feed_submission_id
              WHERE s.feed_type = 'POST_ORDER_ACKNOWLEDGEMENT_DATA'",
        )
        .fetch_one(&h.pool)
        .await
        .unwrap();
        assert_eq!(ack_messages, 1);
        let poller = feed_poller::Poller::new(
            h.pool.clone(),
            keys,
            api,
            topology,
            feed_poller::Settings {
                first_delay: Duration::from_millis(200),
                max_delay: Duration::from_millis(500),
                ..Default::default()
            },
        );
        let mut open = i64::MAX;
        for _ in 0..100 {
            poller.poll(h.shop_id, None).await.unwrap();
            open = h.count("SELECT count(*) FROM feed_submissions WHERE state = 'submitted'").await;
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(open, 0, "feeds final");

        // Amazon: the accepted order cancelled by the seller for the buyer, the declined one shipped.
        let cancelled = sim.order(ids[0]).unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        let by = cancelled.cancellation.unwrap();
        assert_eq!((by.cancelled_by.as_str(), by.reason.as_deref()), ("MERCHANT", Some("BuyerCanceled")));
        assert_eq!(sim.order(ids[1]).unwrap().status, OrderStatus::Shipped);
        let (status, ack): (String, Option<String>) = sqlx::query_as(
            "SELECT status, cancel_ack FROM shipping_instructions WHERE id = $1",
        )
        .bind(accepted_id)
        .fetch_one(&h.pool)
        .await
        .unwrap();
        assert_eq!((status.as_str(), ack.as_deref()), ("canceled", Some("done")));
        let shipped: String = sqlx::query_scalar("SELECT api_status FROM shipping_instructions WHERE amazon_order_id = $1")
            .bind(ids[1])
            .fetch_one(&h.pool)
            .await
            .unwrap();
        assert_eq!(shipped, "shipped");
        // The flagged ones are still the operator's to decide; nothing else was cancelled.
        for o in &ids[2..] {
            assert_ne!(sim.order(o).unwrap().status, OrderStatus::Cancelled, "{o}");
        }
    })
    .await;
}
