//! `ctl shop rotate-secret|promote-secret|reauthorize`, `ctl runs`, `ctl log`, `ctl dlq`,
//! `ctl trigger --wait` and `--dedupe-key`: the real binary against a fresh database and the
//! local RabbitMQ (unique BUS_PREFIX per test).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use uuid::Uuid;

use common::{Env, TEST_KEYS, text};

async fn shop_id(pool: &PgPool, code: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM shops WHERE code = $1")
        .bind(code)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn credentials(pool: &PgPool, id: Uuid) -> store::shops::Credentials {
    let keys = crypto::Keyring::parse(TEST_KEYS).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    store::shops::credentials(&mut conn, &keys, id)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn rotate_promote_reauthorize(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    let id = shop_id(&pool, "acme").await;

    // Promote with nothing staged: refused, says what to do.
    env.fails(
        &["shop", "promote-secret", "--shop", "acme"],
        "no staged client secret",
    );
    // No secret in the environment: refused, names the variable.
    env.fails_with(
        &["shop", "rotate-secret", "--shop", "acme"],
        &[("LWA_CLIENT_SECRET", None)],
        "LWA_CLIENT_SECRET",
    );
    env.fails_with(
        &["shop", "rotate-secret", "--shop", "nope"],
        &[("LWA_CLIENT_SECRET", Some("new-CANARY-3"))],
        "unknown shop \"nope\"",
    );

    let out = env.ok_with(
        &["shop", "rotate-secret", "--shop", "acme"],
        &[("LWA_CLIENT_SECRET", Some("new-CANARY-3"))],
    );
    assert!(!out.contains("CANARY"), "printed a secret: {out}");
    let c = credentials(&pool, id).await;
    assert_eq!(c.client_secret.expose_secret(), "secret-CANARY-1");
    assert_eq!(
        c.client_secret_next
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("new-CANARY-3".to_owned())
    );

    let v = env.json(&["shop", "promote-secret", "--shop", "acme"]);
    assert_eq!(v["client_secret"], "promoted");
    let c = credentials(&pool, id).await;
    assert_eq!(c.client_secret.expose_secret(), "new-CANARY-3");
    assert!(c.client_secret_next.is_none());

    // Re-authorization: new refresh token, flag cleared.
    sqlx::query("UPDATE shops SET auth_status = 'needs_reauthorization', auth_error = 'invalid_grant' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    env.fails_with(
        &["shop", "reauthorize", "--shop", "acme"],
        &[("LWA_REFRESH_TOKEN", Some("  "))],
        "LWA_REFRESH_TOKEN",
    );
    let out = env.ok_with(
        &["shop", "reauthorize", "--shop", "acme"],
        &[("LWA_REFRESH_TOKEN", Some("Atzr|fresh-CANARY-4"))],
    );
    assert!(!out.contains("CANARY"), "printed a secret: {out}");
    let c = credentials(&pool, id).await;
    assert_eq!(c.refresh_token.expose_secret(), "Atzr|fresh-CANARY-4");
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT auth_status, auth_error FROM shops WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), error), ("ok", None));
    let show = env.ok(&["--json", "shop", "show", "acme"]);
    assert!(!show.contains("CANARY"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn runs_and_log(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    env.add_shop("beta");
    let acme = shop_id(&pool, "acme").await;
    let beta = shop_id(&pool, "beta").await;
    let mut conn = pool.acquire().await.unwrap();
    let new = |shop_id, action| store::runs::NewRun {
        shop_id,
        action,
        mode: Some("hours"),
        status: store::runs::RunStatus::Running,
        command_id: Some(Uuid::now_v7()),
        requested_by: Some("test"),
    };
    let r1 = store::runs::insert(&mut conn, &new(acme, "order-ingest"))
        .await
        .unwrap();
    store::runs::finish(
        &mut conn,
        r1,
        store::runs::RunStatus::Succeeded,
        None,
        &serde_json::json!({"pages": 2, "orders": 7}),
        3,
        None,
    )
    .await
    .unwrap();
    let r2 = store::runs::insert(&mut conn, &new(acme, "status-sync"))
        .await
        .unwrap();
    store::runs::finish(
        &mut conn,
        r2,
        store::runs::RunStatus::Failed,
        None,
        &serde_json::json!({}),
        1,
        Some("Amazon answered 403 Unauthorized"),
    )
    .await
    .unwrap();
    let r3 = store::runs::insert(&mut conn, &new(beta, "order-ingest"))
        .await
        .unwrap();

    let all = env.json(&["runs"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let acme_ingest = env.json(&["runs", "--shop", "acme", "--action", "order-ingest"]);
    let rows = acme_ingest.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{acme_ingest}");
    assert_eq!(rows[0]["id"], r1.to_string());
    assert_eq!(rows[0]["shop"], "acme");
    assert_eq!(rows[0]["counts"]["orders"], 7);
    let table = env.ok(&["runs", "--shop", "acme"]);
    assert!(
        table.contains(&r2.to_string()) && table.contains("403 Unauthorized"),
        "{table}"
    );
    assert!(!table.contains(&r3.to_string()), "{table}");
    assert!(
        env.ok(&["runs", "show", &r1.to_string()])
            .contains("orders 7")
    );
    let shown = env.json(&["runs", "show", &r2.to_string()]);
    assert_eq!(shown["status"], "failed");
    env.fails(&["runs", "show", &Uuid::now_v7().to_string()], "no run");
    env.fails(&["runs", "show", "not-a-uuid"], "not-a-uuid");
    env.fails(
        &["runs", "--action", "shipping"],
        "unknown action \"shipping\"",
    );
    env.fails(&["runs", "--shop", "nope"], "unknown shop \"nope\"");

    // API log.
    use store::api_log::{Entry, Level, write};
    write(
        &mut conn,
        &Entry {
            amazon_order_id: Some("503-0000000-0000001"),
            run_id: Some(r1),
            ..Entry::new(Some(acme), "order-ingest", Level::Info, "imported")
        },
    )
    .await
    .unwrap();
    write(
        &mut conn,
        &Entry {
            sku: Some("SKU-RED"),
            code: Some("8541"),
            ..Entry::new(
                Some(acme),
                "inventory-sync",
                Level::Error,
                "The SKU does not match any ASIN.",
            )
        },
    )
    .await
    .unwrap();
    write(
        &mut conn,
        &Entry::new(Some(beta), "status-sync", Level::Warning, "beta warning"),
    )
    .await
    .unwrap();

    let all = env.json(&["log"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["message"], "imported", "oldest first");
    let errors = env.json(&["log", "--level", "error"]);
    assert_eq!(errors.as_array().unwrap().len(), 1);
    assert_eq!(errors[0]["sku"], "SKU-RED");
    assert_eq!(errors[0]["shop"], "acme");
    let by_order = env.json(&["log", "--order", "503-0000000-0000001"]);
    assert_eq!(by_order.as_array().unwrap().len(), 1);
    assert_eq!(
        env.json(&["log", "--sku", "SKU-RED"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["log", "--shop", "beta"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["log", "--shop", "acme", "--action", "order-ingest"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["log", "--run", &r1.to_string()])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["log", "--limit", "2"]).as_array().unwrap().len(),
        2
    );
    let table = env.ok(&["log", "--shop", "acme"]);
    assert!(
        table.contains("sku SKU-RED [8541]: The SKU does not match any ASIN."),
        "{table}"
    );
    env.fails(
        &["log", "--level", "fatal"],
        "info, warning, error or attention",
    );
    env.fails(&["log", "--limit", "0"], "--limit");

    // --follow prints entries written after it started, until killed.
    let mut child = env
        .command(&["log", "--follow", "--shop", "acme", "--limit", "1"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("backlog line");
    assert!(first.contains("SKU-RED"), "{first}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    write(
        &mut conn,
        &Entry::new(Some(beta), "status-sync", Level::Info, "not for acme"),
    )
    .await
    .unwrap();
    write(
        &mut conn,
        &Entry::new(
            Some(acme),
            "feed-poller",
            Level::Attention,
            "followed entry",
        ),
    )
    .await
    .unwrap();
    let next = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("followed line");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(next.contains("followed entry"), "{next}");
    assert!(rx.try_iter().all(|l| !l.contains("not for acme")));
}

#[sqlx::test(migrations = "../../migrations")]
async fn dlq_list_and_replay(pool: PgPool) {
    let env = Env::new(&pool).await;
    let topo = bus::Topology::new(env.prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let conn = bus::connect(bus::DEFAULT_AMQP_URL, "ctl-test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    topo.declare_service(&ch, "status-sync", &[]).await.unwrap();

    assert!(env.ok(&["dlq", "list", "status-sync"]).contains("empty"));
    // Plant a message in the DLQ the way the broker does: through the dead-letter exchange
    // with the work queue's name as routing key.
    let id = Uuid::now_v7();
    let publisher = bus::Publisher::new(conn.clone()).await.unwrap();
    publisher
        .publish(&bus::OutgoingMessage {
            message_id: id,
            exchange: topo.dead_letter_exchange(),
            routing_key: topo.queue("status-sync"),
            payload: serde_json::json!({"message_id": id, "action": "status-sync", "params": {"mode": "changes"}, "filler": "x".repeat(400)}),
            headers: Default::default(),
        })
        .await
        .unwrap();

    let listed = env.json(&["dlq", "list", "status-sync"]);
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["message_id"], id.to_string());
    assert!(rows[0]["payload"].as_str().unwrap().chars().count() <= 161);
    // Listing does not consume.
    let table = env.ok(&["dlq", "list", "status-sync", "--limit", "5"]);
    assert!(table.contains(&id.to_string()), "{table}");
    env.fails(&["dlq", "list", "shipping"], "unknown action \"shipping\"");

    let out = env.ok(&["dlq", "replay", "status-sync"]);
    assert!(out.contains("1 message(s) sent back"), "{out}");
    assert!(
        env.json(&["dlq", "list", "status-sync"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let got = ch
        .basic_get(
            topo.queue("status-sync").as_str().into(),
            bus::lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("replayed into the work queue");
    assert_eq!(
        got.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(id.to_string())
    );
    let v = env.json(&["dlq", "replay", "status-sync"]);
    assert_eq!(v["replayed"], 0);
    let _ = bus::close(&conn).await;
    env.cleanup(&["status-sync"]).await;
}

/// Waits for the next outbox row not in `seen`, then plays a run for it.
async fn play_run(
    pool: PgPool,
    shop: Uuid,
    action: &'static str,
    outcome: store::runs::RunStatus,
    error: Option<&'static str>,
) {
    let command: Uuid = loop {
        let row: Option<Uuid> = sqlx::query_scalar(
            "SELECT o.id FROM outbox o WHERE o.routing_key = $1 AND NOT EXISTS (SELECT 1 FROM action_runs r WHERE r.command_id = o.id)",
        )
        .bind(action)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some(id) = row {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut conn = pool.acquire().await.unwrap();
    let run = store::runs::insert(
        &mut conn,
        &store::runs::NewRun {
            shop_id: shop,
            action,
            mode: None,
            status: store::runs::RunStatus::Running,
            command_id: Some(command),
            requested_by: Some("test"),
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    store::runs::save_progress(
        &mut conn,
        run,
        store::runs::RunStatus::Waiting,
        &store::runs::Progress {
            counts: serde_json::json!({"pages": 1, "orders": 3}),
            amazon_calls: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store::runs::finish(
        &mut conn,
        run,
        outcome,
        None,
        &serde_json::json!({"pages": 2, "orders": 5}),
        4,
        error,
    )
    .await
    .unwrap();
}

fn ctl_async(env: &Env, args: &[&str]) -> tokio::task::JoinHandle<Output> {
    let mut c = env.command(args, &[]);
    tokio::task::spawn_blocking(move || c.output().expect("run ctl"))
}

#[sqlx::test(migrations = "../../migrations")]
async fn trigger_wait_and_dedupe(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    let shop = shop_id(&pool, "acme").await;

    // Succeeded: exit 0, the final counts printed; a waiting (quota) phase counts as in progress.
    let player = tokio::spawn(play_run(
        pool.clone(),
        shop,
        "order-ingest",
        store::runs::RunStatus::Succeeded,
        None,
    ));
    let out = ctl_async(
        &env,
        &[
            "trigger",
            "order-ingest",
            "--shop",
            "acme",
            "--mode",
            "hours",
            "--hours",
            "6",
            "--wait",
            "--timeout",
            "60",
        ],
    )
    .await
    .unwrap();
    player.await.unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("succeeded") && t.contains("orders 5"), "{t}");

    // Failed: non-zero with the run's error; --json carries the runs.
    let player = tokio::spawn(play_run(
        pool.clone(),
        shop,
        "status-sync",
        store::runs::RunStatus::Failed,
        Some("Amazon answered 403 Unauthorized"),
    ));
    let out = ctl_async(
        &env,
        &[
            "--json",
            "trigger",
            "status-sync",
            "--shop",
            "acme",
            "--wait",
            "--timeout",
            "60",
        ],
    )
    .await
    .unwrap();
    player.await.unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("403 Unauthorized"), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["runs"][0]["amazon_calls"], 4);

    // No service answers: gives up after --timeout, non-zero.
    let out = env.ctl_with(
        &[
            "trigger",
            "shipment-feedback",
            "--shop",
            "acme",
            "--wait",
            "--timeout",
            "2",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("no outcome"), "{}", text(&out));
    // feed-poller keeps no runs: --wait is refused before anything is queued.
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    env.fails(
        &["trigger", "feed-poller", "--shop", "acme", "--wait"],
        "feed-poller records no runs",
    );
    let still: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, still);
    env.fails(
        &["trigger", "feed-poller", "--shop", "acme", "--timeout", "5"],
        "--wait",
    );

    // Dedupe key: same id twice, one outbox row; another key or action gives another id.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    let args = [
        "trigger",
        "inventory-sync",
        "--shop",
        "acme",
        "--dedupe-key",
        "20261128T0915",
    ];
    let first = env.ok(&args);
    let out = env.ctl_with(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let id1 = first.lines().next().unwrap().trim().to_owned();
    let id2 = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(id1, id2);
    assert!(text(&out).contains("already queued"), "{}", text(&out));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE id = $1")
        .bind(id1.parse::<Uuid>().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let other = env.ok(&[
        "trigger",
        "inventory-sync",
        "--shop",
        "acme",
        "--dedupe-key",
        "20261128T0930",
    ]);
    assert_ne!(other.lines().next().unwrap().trim(), id1);
    let v = env.json(&[
        "trigger",
        "feed-poller",
        "--shop",
        "acme",
        "--dedupe-key",
        "20261128T0915",
    ]);
    assert_ne!(v["message_id"], id1.as_str());
    assert_eq!(v["duplicate"], false);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after - before, 3);
    env.fails(
        &[
            "trigger",
            "feed-poller",
            "--shop",
            "acme",
            "--dedupe-key",
            " ",
        ],
        "dedupe key",
    );

    env.cleanup(&[
        "order-ingest",
        "status-sync",
        "shipment-feedback",
        "feed-poller",
        "inventory-sync",
    ])
    .await;
}
