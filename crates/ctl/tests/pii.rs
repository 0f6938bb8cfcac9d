//! `ctl pii purge` against a fresh database (the real binary): buyer and ship-to data of
//! instructions shipped 31 days ago is purged, 29 days ago kept.

use std::process::Command;

use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrations = "../../migrations")]
async fn pii_purge_clears_shipments_older_than_the_retention(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let shop = Uuid::now_v7();
    sqlx::query(
        r#"INSERT INTO shops (id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint,
                              lwa_client_id, lwa_client_secret_enc, lwa_refresh_token_enc)
           VALUES ($1, 'pii-shop', 'PII', 'A1', '{JP}', 'Asia/Tokyo', 'http://x', 'http://x', 'id', '\x00', '\x00')"#,
    )
    .bind(shop)
    .execute(&pool)
    .await
    .unwrap();
    for (order, days) in [("503-0000000-0000031", 31), ("503-0000000-0000029", 29)] {
        sqlx::query(
            r#"INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, status, buyer_name, ship_to_address, ship_to_phone,
                                                 shipped_on, shipped_at)
               VALUES ($1, $2, $3, 'shipped', 'Buyer', 'Address', '03-0000-0000',
                       (now() - make_interval(days => $4))::date, now() - make_interval(days => $4))"#,
        )
        .bind(Uuid::now_v7())
        .bind(shop)
        .bind(order)
        .bind(days)
        .execute(&pool)
        .await
        .unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ctl"))
            .args(args)
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{db}"),
            )
            .output()
            .expect("run ctl")
    };
    let out = run(&["pii", "purge", "--older-than-days", "-1"]);
    assert!(!out.status.success(), "a negative retention is refused");
    let out = run(&["--json", "pii", "purge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["purged"], 1);
    assert_eq!(v["older_than_days"], 30);
    type PiiRow = (String, Option<String>, Option<String>, Option<String>, bool);
    let rows: Vec<PiiRow> = sqlx::query_as(
        "SELECT amazon_order_id, buyer_name, ship_to_address, ship_to_phone, pii_purged_at IS NOT NULL FROM shipping_instructions ORDER BY amazon_order_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "503-0000000-0000029".into(),
                Some("Buyer".into()),
                Some("Address".into()),
                Some("03-0000-0000".into()),
                false
            ),
            ("503-0000000-0000031".into(), None, None, None, true),
        ]
    );
}
