//! 自動実行: `ctl schedule` (bad input refused with what is valid, nothing saved; changes recorded
//! with the operator's name) and `ctl scheduler tick` (one command per due entry, none on a
//! second tick), with the real binary, a fresh database and the local RabbitMQ.

mod common;

use domain::messages::{Action, Command};
use sqlx::PgPool;

use common::Env;

async fn crons(pool: &PgPool) -> Vec<(String, String, String, bool, String)> {
    sqlx::query_as(
        "SELECT action, entry, cron, enabled, updated_by FROM schedules ORDER BY action, entry",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn changes_logged(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM api_log WHERE code = 'schedule_changed'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn schedule_set_refuses_bad_input_and_records_changes(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    let listed = env.json(&["schedule", "list", "--shop", "acme"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert!(listed.iter().any(|e| e["action"] == "shipment-feedback"
        && e["entry"] == "end-of-day"
        && e["cron"] == "55 23 * * *"
        && e["time_zone"] == "Asia/Tokyo"
        && e["next_run"].is_string()));
    let before = crons(&pool).await;

    // Each refusal names the input and what is valid; nothing is saved.
    let set = |cron: &'static str| -> Vec<&'static str> {
        vec![
            "schedule",
            "set",
            "--shop",
            "acme",
            "--action",
            "order-ingest",
            "--cron",
            cron,
        ]
    };
    let t = env.fails(&set("*/15 * * *"), "\"*/15 * * *\" is not a valid schedule");
    assert!(
        t.contains("it has 4 field(s), not 5")
            && t.contains("minute hour day-of-month month day-of-week"),
        "{t}"
    );
    env.fails(&set("61 * * * *"), "\"61 * * * *\" is not a valid schedule");
    env.fails(&set("0 0 30 2 *"), "it matches no date");
    env.fails(
        &[
            "schedule",
            "set",
            "--shop",
            "acme",
            "--action",
            "order-import",
            "--cron",
            "*/5 * * * *",
        ],
        "unknown action \"order-import\": expected order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller",
    );
    env.fails(
        &[
            "schedule",
            "set",
            "--shop",
            "nope",
            "--action",
            "order-ingest",
            "--cron",
            "*/5 * * * *",
        ],
        "unknown shop \"nope\": see `ctl shop list`",
    );
    env.fails(
        &[
            "schedule",
            "set",
            "--shop",
            "acme",
            "--action",
            "order-ingest",
            "--entry",
            "Night Run",
            "--cron",
            "0 3 * * *",
        ],
        "\"Night Run\" is not an entry name",
    );
    env.fails(
        &[
            "schedule",
            "disable",
            "--shop",
            "acme",
            "--action",
            "feed-poller",
            "--entry",
            "nightly",
        ],
        "shop acme has no schedule entry feed-poller named \"nightly\"",
    );
    assert_eq!(crons(&pool).await, before, "a refused change was saved");
    assert_eq!(changes_logged(&pool).await, 0);

    // A valid change: recorded with who made it, on the entry and in the API log.
    let out = env.ok_with(&set("*/5 * * * *"), &[("CTL_REQUESTED_BY", Some("alice"))]);
    assert!(out.contains("changed from \"*/15 * * * *\""), "{out}");
    let ingest = crons(&pool)
        .await
        .into_iter()
        .find(|r| r.0 == "order-ingest")
        .unwrap();
    assert_eq!(
        (ingest.2.as_str(), ingest.4.as_str()),
        ("*/5 * * * *", "alice")
    );
    let message: String = sqlx::query_scalar(
        "SELECT message FROM api_log WHERE code = 'schedule_changed' AND details->>'operator' = 'alice'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        message.contains("alice") && message.contains("*/5 * * * *"),
        "{message}"
    );

    // Pause the whole shop, then resume one action.
    env.ok(&["schedule", "disable", "--shop", "acme"]);
    assert!(crons(&pool).await.iter().all(|r| !r.3));
    // A cadence change keeps a paused entry paused, and says so.
    let out = env.ok(&set("*/10 * * * *"));
    assert!(out.contains("paused: `ctl schedule enable"), "{out}");
    env.ok(&[
        "schedule",
        "enable",
        "--shop",
        "acme",
        "--action",
        "status-sync",
    ]);
    let enabled: Vec<String> = crons(&pool)
        .await
        .into_iter()
        .filter(|r| r.3)
        .map(|r| r.0)
        .collect();
    assert_eq!(enabled, vec!["status-sync"]);
    assert_eq!(changes_logged(&pool).await, 1 + 6 + 1 + 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn scheduler_tick_publishes_each_due_entry_once(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    env.add_shop("paused");
    env.ok(&["schedule", "disable", "--shop", "paused"]);
    // The 23:55 run is due only around midnight: leave it out so the test does not depend on
    // the hour it runs at.
    env.ok(&[
        "schedule",
        "disable",
        "--shop",
        "acme",
        "--action",
        "shipment-feedback",
        "--entry",
        "end-of-day",
    ]);
    // The entries were created an hour ago: each has had a slot since.
    sqlx::query("UPDATE schedules SET last_slot = last_slot - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();

    // Both ticks in one minute: start early in a minute (they take well under 20 s together).
    while chrono::Timelike::second(&chrono::Utc::now()) >= 40 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let first = env.json(&["scheduler", "tick"]);
    let fired = first["fired"].as_array().unwrap();
    let mut actions: Vec<&str> = fired
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        vec![
            "feed-poller",
            "inventory-sync",
            "order-ingest",
            "shipment-feedback",
            "status-sync"
        ],
        "{first}"
    );
    assert!(
        fired
            .iter()
            .all(|f| f["shop"] == "acme" && f["duplicate"] == false)
    );
    assert_eq!(first["published"], true, "{first}");

    // One command per action, published to its queue: the action's usual run, requested by the
    // scheduler.
    let conn = bus::connect(bus::DEFAULT_AMQP_URL, "ctl-test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let topo = bus::Topology::new(env.prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    for a in Action::ALL {
        let got = ch
            .basic_get(
                topo.queue(a.as_str()).as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no command in the {a} queue"));
        let cmd: Command = serde_json::from_slice(&got.delivery.data).unwrap();
        assert_eq!(cmd.action, a);
        assert_eq!(cmd.params, domain::schedule::params(a));
        assert_eq!(cmd.requested_by, "scheduler:default");
        let listed = fired.iter().find(|f| f["action"] == a.as_str()).unwrap();
        assert_eq!(listed["message_id"], cmd.message_id.to_string());
    }
    let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unsent, 0);

    // A second tick in the same minute (or a retried Job): nothing.
    let second = env.json(&["scheduler", "tick"]);
    assert_eq!(second["fired"], serde_json::json!([]), "{second}");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 5);
    for a in Action::ALL {
        let more = ch
            .basic_get(
                topo.queue(a.as_str()).as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap();
        assert!(more.is_none(), "a second command for {a}");
    }
    let _ = bus::close(&conn).await;
    env.cleanup(&Action::ALL.map(|a| a.as_str())).await;
}
