//! Runs the real `ctl` binary against a fresh database and the local RabbitMQ.

mod common;

use sqlx::PgPool;

use common::{Env, text};

async fn outbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn shops_and_triggers(pool: PgPool) {
    let env = Env::new(&pool).await;
    let out = env.ctl(&[
        "shop",
        "add",
        "--skip-credential-check",
        "--code",
        "acme",
        "--name",
        "Acme",
        "--seller-id",
        "A1SELLER",
        "--marketplace",
        "JP",
        "--sp-api-endpoint",
        "http://127.0.0.1:8700",
        "--lwa-endpoint",
        "http://127.0.0.1:8700/auth/o2/token",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("CANARY"));

    let list = env.ctl(&["shop", "list"]);
    assert!(list.status.success());
    assert!(
        text(&list).contains("acme") && text(&list).contains("Asia/Tokyo"),
        "{}",
        text(&list)
    );
    let show = env.ctl(&["--json", "shop", "show", "acme"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["marketplaces"], serde_json::json!(["JP"]));
    assert!(!text(&show).contains("CANARY"));

    // Bad input: non-zero exit, a message naming the problem, nothing published.
    let from = "2026-10-01T00:00:00Z";
    let cases: [(&[&str], &str); 6] = [
        (
            &["trigger", "order-ingest", "--shop", "nope"],
            "unknown shop \"nope\"",
        ),
        (
            &[
                "trigger",
                "order-ingest",
                "--shop",
                "acme",
                "--mode",
                "range",
                "--from",
                from,
                "--to",
                "2026-10-09T00:00:00Z",
            ],
            "at most 7 days",
        ),
        (
            &[
                "trigger",
                "order-ingest",
                "--shop",
                "acme",
                "--mode",
                "range",
                "--from",
                "2026-10-05T00:00:00Z",
                "--to",
                from,
            ],
            "inverted",
        ),
        (
            &[
                "trigger",
                "order-ingest",
                "--shop",
                "acme",
                "--mode",
                "hours",
                "--hours",
                "-5",
            ],
            "1 to 168",
        ),
        (
            &[
                "trigger",
                "order-ingest",
                "--shop",
                "acme",
                "--mode",
                "hours",
                "--hours",
                "200",
            ],
            "1 to 168",
        ),
        (
            &["trigger", "status-sync", "--shop", "acme", "--hours", "3"],
            "order-ingest only",
        ),
    ];
    for (args, expected) in cases {
        let out = env.ctl(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    assert_eq!(
        outbox_rows(&pool).await,
        0,
        "a refused trigger wrote to the outbox"
    );

    // A valid trigger is published through the outbox and lands in the service's queue.
    let out = env.ctl(&[
        "trigger",
        "order-ingest",
        "--shop",
        "acme",
        "--mode",
        "hours",
        "--hours",
        "6",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id: uuid::Uuid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("prints the message id");
    let sent: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(sent.is_some(), "not marked sent");

    let conn = bus::connect(bus::DEFAULT_AMQP_URL, "ctl-test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let topo = bus::Topology::new(env.prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let got = ch
        .basic_get(
            topo.queue("order-ingest").as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("command in queue");
    let cmd: domain::messages::Command = serde_json::from_slice(&got.delivery.data).unwrap();
    assert_eq!(cmd.message_id, id);
    assert_eq!(
        cmd.params,
        domain::messages::CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Hours { hours: 6 }
        }
    );
    topo.delete_service(&ch, "order-ingest").await.unwrap();
    topo.delete_exchanges(&ch).await.unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn delivery_methods_select_a_mapped_carrier(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");

    let out = env.ctl(&[
        "delivery-method",
        "add",
        "--shop",
        "acme",
        "--code",
        "takkyubin",
        "--name",
        "ヤマト宅急便",
        "--external",
        "yamato",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // An external method without a carrier mapping is refused, naming the fix.
    let out = env.ctl(&[
        "delivery-method",
        "add",
        "--shop",
        "acme",
        "--code",
        "x",
        "--name",
        "X",
        "--external",
        "pigeon",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no carrier mapping") && text(&out).contains("ctl carrier add"),
        "{}",
        text(&out)
    );

    let out = env.ctl(&["--json", "delivery-method", "list", "--shop", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["code"], "takkyubin");
    assert_eq!(v[0]["name"], "ヤマト宅急便");
    assert_eq!(v[0]["external_delivery_method"], "yamato");
}
