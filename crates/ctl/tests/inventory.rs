//! `ctl stock` and `ctl external-product` through the real binary on a fresh database.

use std::process::{Command, Output};

use sqlx::PgPool;

const TEST_KEYS: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

fn ctl(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctl"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("CONNECTOR_ENCRYPTION_KEYS", TEST_KEYS)
        .env("LWA_CLIENT_ID", "amzn1.application-oa2-client.test")
        .env("LWA_CLIENT_SECRET", "secret")
        .env("LWA_REFRESH_TOKEN", "Atzr|token")
        .output()
        .expect("run ctl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn stock_and_mapping_commands_validate_at_entry(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let run = |args: &[&str]| ctl(&url, args);

    let out = run(&[
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
    sqlx::query(
        "INSERT INTO products (id, shop_id, code, name) SELECT gen_random_uuid(), id, 'P1', 'Product 1' FROM shops WHERE code = 'acme'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let seq = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(change_seq) FROM stock")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    let out = run(&[
        "stock", "set", "P1", "10", "--shop", "acme", "--reason", "count",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("free 10"), "{}", text(&out));
    let s1 = seq().await;
    let out = run(&["stock", "adjust", "P1", "-3", "--shop", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("on hand 7"), "{}", text(&out));
    assert!(
        seq().await > s1,
        "an adjustment is a change inventory-sync pushes"
    );

    // Refused at entry, nothing changed.
    let out = run(&["stock", "set", "P1", "-1", "--shop", "acme"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be negative"), "{}", text(&out));
    let out = run(&["stock", "adjust", "P1", "-8", "--shop", "acme"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot be negative"), "{}", text(&out));
    let on_hand: i32 = sqlx::query_scalar("SELECT on_hand FROM stock")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(on_hand, 7);
    let changes: Vec<(String, i32)> = sqlx::query_as(
        "SELECT kind, delta_on_hand FROM stock_changes WHERE occurred_at <= now() ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(changes, vec![("set".into(), 10), ("adjust".into(), -3)]);

    let out = run(&[
        "external-product",
        "map",
        "SKU-1",
        "P1",
        "--shop",
        "acme",
        "--handling-days",
        "45",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("0 to 30"), "{}", text(&out));
    let mapped: i64 = sqlx::query_scalar("SELECT count(*) FROM external_products")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mapped, 0);

    let out = run(&[
        "external-product",
        "map",
        "SKU-1",
        "P1",
        "--shop",
        "acme",
        "--handling-days",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 day(s)"), "{}", text(&out));
    let out = run(&[
        "external-product",
        "set-handling-days",
        "SKU-1",
        "-2",
        "--shop",
        "acme",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("0 to 30"), "{}", text(&out));
    let out = run(&[
        "external-product",
        "set-handling-days",
        "SKU-1",
        "--clear",
        "--shop",
        "acme",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Amazon's own setting"),
        "{}",
        text(&out)
    );
    let out = run(&["external-product", "unmap", "SKU-1", "--shop", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["external-product", "unmap", "SKU-1", "--shop", "acme"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not mapped"), "{}", text(&out));
}
