//! The service binary is killed right after Amazon accepted the feed (abort at a fail point,
//! before the commit) and started again: the redelivered trigger reconciles with getFeeds and
//! nothing is sent twice. Real processes, RabbitMQ, PostgreSQL and the simulator.

mod common;

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use common::{TEST_KEYS, amqp_url, database_url, fixture, tracking12};
use domain::messages::{Action, Command, CommandParams};
use domain::shop::ShipmentStrategy;
use sqlx::PgPool;
use uuid::Uuid;

fn service_process(db: &str, prefix: &str, fail_point: Option<&str>) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipment-feedback"));
    cmd.env("DATABASE_URL", db)
        .env("AMQP_URL", amqp_url())
        .env("BUS_PREFIX", prefix)
        .env("CONNECTOR_ENCRYPTION_KEYS", TEST_KEYS)
        .env("RUST_LOG", "warn")
        .env_remove(shipment_feedback::FAIL_POINT_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(fp) = fail_point {
        cmd.env(shipment_feedback::FAIL_POINT_ENV, fp);
    }
    cmd.spawn().expect("start shipment-feedback")
}

#[sqlx::test(migrations = "../../migrations")]
async fn killed_after_create_feed_and_restarted_sends_nothing_twice(pool: PgPool) {
    let fx = fixture(pool.clone(), ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let mut orders = Vec::new();
    for i in 0..4 {
        let o = fx.sim_order();
        let id = fx
            .shipped_instruction(&o, yamato, &[&tracking12(i)], fx.today())
            .await;
        orders.push((id, o.order_id));
    }
    let prefix = format!("t{}", Uuid::now_v7().simple());
    let topology = bus::Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url(), "kill-test").await.unwrap();
    let setup = amqp.create_channel().await.unwrap();
    topology
        .declare_service(&setup, shipment_feedback::SERVICE, &[])
        .await
        .unwrap();
    let db = database_url(&pool);

    // The trigger, published by the service's own outbox relay.
    let cmd = Command::new(
        fx.shop.id,
        Action::ShipmentFeedback,
        CommandParams::ShipmentFeedback {},
        "test",
        Utc::now(),
    );
    let mut conn = pool.acquire().await.unwrap();
    bus::outbox::enqueue(&mut conn, bus::OutboxMessage::command(&topology, &cmd))
        .await
        .unwrap();
    drop(conn);

    let result = async {
        let mut first = service_process(&db, &prefix, Some("crash_after_create_feed"));
        let status = tokio::time::timeout(Duration::from_secs(20), first.wait())
            .await
            .expect("the service dies at the fail point")
            .unwrap();
        assert!(!status.success(), "aborted");
        assert_eq!(fx.sim.sim().feeds().len(), 1, "Amazon accepted the feed");
        assert_eq!(
            fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'in_flight'")
                .await,
            1
        );
        assert_eq!(
            fx.count(
                "SELECT count(*) FROM shipping_instructions WHERE api_status = 'awaiting_print'"
            )
            .await,
            4
        );
        // The dead process's lease expires (10 minutes in production).
        sqlx::query("DELETE FROM action_leases")
            .execute(&pool)
            .await
            .unwrap();

        // Restart: the unacknowledged trigger is redelivered to the new process.
        let mut second = service_process(&db, &prefix, None);
        let mut printed = false;
        for _ in 0..150 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fx
                .count("SELECT count(*) FROM shipping_instructions WHERE api_status = 'printed'")
                .await
                == 4
            {
                printed = true;
                break;
            }
        }
        let _ = second.kill().await;
        assert!(printed, "the restarted service recorded the feed");
    }
    .await;
    let _ = topology
        .delete_service(&setup, shipment_feedback::SERVICE)
        .await;
    let _ = topology.delete_exchanges(&setup).await;
    let _ = bus::close(&amqp).await;
    let () = result;

    assert_eq!(fx.sim.sim().feeds().len(), 1, "nothing sent twice");
    // The dead process's run does not stay `running` in the ledger: the next run closed it.
    // (The second process may itself be killed above before it finished its run.)
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM action_runs WHERE status = 'failed' AND error LIKE 'abandoned:%'"
        )
        .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'feed_reconciled'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'submitted'")
            .await,
        1
    );
    fx.wait_sim_feeds_done().await;
    for (_, order_id) in &orders {
        assert_eq!(fx.sim.sim().order(order_id).unwrap().packages.len(), 1);
    }
}
