//! `ctl notifications subscribe|status|unsubscribe` with the real binary against the simulator
//! (Amazon's Notifications API with its grantless token) and a fresh database: both
//! subscriptions at Amazon and in the database, status-sync's cadence the hourly sweep while
//! subscribed and the polling again after; idempotent; a bad --sweep changes nothing.

mod common;

use std::process::Output;

use spapi::notifications::NotificationType;
use spapi::{ClientConfig, Credentials, Endpoints, ShopConfig, SpApi};
use spapi_sim::SimConfig;
use sqlx::PgPool;

use common::{Env, text};

const ARN: &str = "arn:aws:sqs:us-west-2:000000000000:ctl-notifications";
const SELLER: &str = "A1SELLER";

/// Runs the real binary off the runtime's thread (the simulator answers on this runtime).
async fn ctl(env: &Env, args: &[&str]) -> Output {
    let mut cmd = env.command(args, &[]);
    tokio::task::spawn_blocking(move || cmd.output().expect("run ctl"))
        .await
        .unwrap()
}

async fn ok(env: &Env, args: &[&str]) -> String {
    let out = ctl(env, args).await;
    assert!(out.status.success(), "ctl {args:?} failed: {}", text(&out));
    text(&out)
}

async fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ctl(env, &all).await;
    assert!(out.status.success(), "ctl {all:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ctl {all:?}: not JSON ({e}): {}", text(&out)))
}

async fn fails(env: &Env, args: &[&str], expected: &str) -> String {
    let out = ctl(env, args).await;
    let t = text(&out);
    assert!(!out.status.success(), "ctl {args:?} should fail: {t}");
    assert!(
        t.contains(expected),
        "ctl {args:?}: expected {expected:?} in {t}"
    );
    t
}

async fn order_ingest_cron(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT cron FROM schedules WHERE action = 'order-ingest' AND entry = 'default'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn status_sync_cron(pool: &PgPool) -> (String, String) {
    sqlx::query_as(
        "SELECT cron, updated_by FROM schedules WHERE action = 'status-sync' AND entry = 'default'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn recorded(pool: &PgPool) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT notification_type, subscription_id, destination_id, previous_cron
           FROM notification_subscriptions ORDER BY notification_type",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The shop's subscriptions at Amazon: (type, subscription id, destination id).
async fn at_amazon(amazon: &spapi::Shop) -> Vec<(String, String, String)> {
    let mut ids = Vec::new();
    for ty in [
        NotificationType::FeedProcessingFinished,
        NotificationType::OrderChange,
    ] {
        if let Some(s) = amazon.get_subscription(&ty, None).await.unwrap() {
            ids.push((ty.as_str().to_owned(), s.subscription_id, s.destination_id));
        }
    }
    ids
}

async fn logged(pool: &PgPool, code: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM api_log WHERE code = $1")
        .bind(code)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn subscribe_status_and_unsubscribe_against_the_simulator(pool: PgPool) {
    let sim = spapi_sim::spawn(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    let lwa = format!("{base}/auth/o2/token");
    let env = Env::new(&pool).await;
    ok(
        &env,
        &[
            "shop",
            "add",
            "--skip-credential-check",
            "--code",
            "acme",
            "--name",
            "Acme",
            "--seller-id",
            SELLER,
            "--marketplace",
            "JP",
            "--sp-api-endpoint",
            &base,
            "--lwa-endpoint",
            &lwa,
        ],
    )
    .await;
    // What Amazon (the simulator) holds, asked with the shop's credentials and its rate bucket.
    let api = SpApi::new(pool.clone(), ClientConfig::default()).unwrap();
    let amazon = api.shop(
        ShopConfig::new(
            SELLER,
            Credentials::new(
                "amzn1.application-oa2-client.test",
                "secret-CANARY-1",
                "Atzr|token-CANARY-2",
            ),
        )
        .with_endpoints(Endpoints::simulator(&base).unwrap()),
    );
    assert_eq!(status_sync_cron(&pool).await.0, "*/10 * * * *");

    // Refusals change nothing: a bad --sweep (named, with an example), a bad ARN, an unknown shop.
    let t = fails(
        &env,
        &[
            "notifications",
            "subscribe",
            "acme",
            "--sqs-arn",
            ARN,
            "--sweep",
            "0 * * *",
        ],
        "\"0 * * *\" is not a valid schedule",
    )
    .await;
    assert!(t.contains("e.g."), "{t}");
    fails(
        &env,
        &[
            "notifications",
            "subscribe",
            "acme",
            "--sqs-arn",
            "https://sqs.us-west-2.amazonaws.com/000000000000/q",
        ],
        "is not an SQS queue ARN",
    )
    .await;
    fails(
        &env,
        &["notifications", "subscribe", "nope", "--sqs-arn", ARN],
        "unknown shop \"nope\": see `ctl shop list`",
    )
    .await;
    assert_eq!(recorded(&pool).await, vec![]);
    assert_eq!(status_sync_cron(&pool).await.0, "*/10 * * * *");
    assert_eq!(at_amazon(&amazon).await, vec![]);
    assert_eq!(logged(&pool, "notifications_subscribed").await, 0);
    let out = ok(&env, &["notifications", "status", "acme"]).await;
    assert!(out.contains("not subscribed"), "{out}");

    // Subscribe: both subscriptions at Amazon and in the database; status-sync hourly.
    let first = json(
        &env,
        &["notifications", "subscribe", "acme", "--sqs-arn", ARN],
    )
    .await;
    assert_eq!(first["destination"]["created"], true, "{first}");
    assert_eq!(first["order_ingest"]["cron"], "*/5 * * * *", "{first}");
    let subs = first["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2);
    assert!(subs.iter().all(|s| s["created"] == true), "{first}");
    let destination = first["destination"]["destination_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = at_amazon(&amazon).await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().all(|(_, _, d)| *d == destination));
    let rows = recorded(&pool).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.0.clone(), r.1.clone(), r.2.clone()))
            .collect::<Vec<_>>(),
        held.iter()
            .map(|(t, s, d)| (t.clone(), s.clone(), d.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(rows[0].0, "FEED_PROCESSING_FINISHED");
    assert_eq!(rows[0].3, None);
    assert_eq!(rows[1].3.as_deref(), Some("*/10 * * * *"));
    assert_eq!(
        status_sync_cron(&pool).await,
        ("0 * * * *".to_owned(), "ctl".to_owned())
    );
    // order-ingest polls for new orders only, every 5 minutes (its default cadence before).
    assert_eq!(order_ingest_cron(&pool).await, "*/5 * * * *");
    assert_eq!(logged(&pool, "notifications_subscribed").await, 1);

    // Again: idempotent (the destination and both subscriptions reused, nothing new).
    let out = ok(
        &env,
        &["notifications", "subscribe", "acme", "--sqs-arn", ARN],
    )
    .await;
    assert!(
        out.contains(&format!("destination {destination}")) && out.contains("reused"),
        "{out}"
    );
    assert!(!out.contains("(created)"), "{out}");
    assert_eq!(at_amazon(&amazon).await, held);
    assert_eq!(recorded(&pool).await, rows, "the previous cadence is kept");
    assert_eq!(status_sync_cron(&pool).await.0, "0 * * * *");

    // A bad --sweep while subscribed changes nothing either.
    fails(
        &env,
        &[
            "notifications",
            "subscribe",
            "acme",
            "--sqs-arn",
            ARN,
            "--sweep",
            "61 * * * *",
        ],
        "\"61 * * * *\" is not a valid schedule",
    )
    .await;
    assert_eq!(status_sync_cron(&pool).await.0, "0 * * * *");

    // Status: the subscriptions, the cadence, what was received.
    sqlx::query(
        "INSERT INTO notifications_received (notification_id, notification_type, shop_id, subject, outcome)
         SELECT 'n1', 'ORDER_CHANGE', id, '503-1234567-1234567', 'queued' FROM shops WHERE code = 'acme'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let st = json(&env, &["notifications", "status", "acme"]).await;
    assert_eq!(st["subscribed"], true, "{st}");
    assert_eq!(st["subscriptions"].as_array().unwrap().len(), 2, "{st}");
    assert_eq!(st["status_sync"]["cron"], "0 * * * *", "{st}");
    assert_eq!(st["last_notification"]["subject"], "503-1234567-1234567");
    assert_eq!(st["last_24h"]["queued"], 1, "{st}");
    assert_eq!(st["last_24h"]["poison"], 0, "{st}");
    let out = ok(&env, &["notifications", "status", "acme"]).await;
    for expected in [
        "ORDER_CHANGE",
        "FEED_PROCESSING_FINISHED",
        &held[0].1,
        &held[1].1,
        "\"0 * * * *\" in Asia/Tokyo (the sweep",
        "last notification: ORDER_CHANGE 503-1234567-1234567 queued",
        "last 24 h: queued 1, ignored 0, poison 0",
    ] {
        assert!(out.contains(expected), "{expected:?} not in {out}");
    }

    // Unsubscribe: gone at Amazon and in the database; status-sync polls every 10 minutes again.
    let out = ok(&env, &["notifications", "unsubscribe", "acme"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(at_amazon(&amazon).await, vec![]);
    assert_eq!(recorded(&pool).await, vec![]);
    assert_eq!(status_sync_cron(&pool).await.0, "*/10 * * * *");
    assert_eq!(order_ingest_cron(&pool).await, "*/15 * * * *");
    assert_eq!(logged(&pool, "notifications_unsubscribed").await, 1);
    // Again: nothing to do.
    let out = ok(&env, &["notifications", "unsubscribe", "acme"]).await;
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(logged(&pool, "notifications_unsubscribed").await, 1);
    fails(
        &env,
        &["notifications", "unsubscribe", "nope"],
        "unknown shop \"nope\"",
    )
    .await;

    // An operator's own order-ingest cadence is left alone both ways.
    let own = "*/20 * * * *";
    let args = [
        "schedule",
        "set",
        "--shop",
        "acme",
        "--action",
        "order-ingest",
        "--cron",
        own,
    ];
    ok(&env, &args).await;
    let again = json(
        &env,
        &["notifications", "subscribe", "acme", "--sqs-arn", ARN],
    )
    .await;
    assert!(again["order_ingest"]["cron"].is_null(), "{again}");
    assert_eq!(order_ingest_cron(&pool).await, own);
    ok(&env, &["notifications", "unsubscribe", "acme"]).await;
    assert_eq!(order_ingest_cron(&pool).await, own);
}
