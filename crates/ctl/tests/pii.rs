//! `ctl keys rotate` and `ctl pii purge` against a fresh database (the real binary): buyer and
//! ship-to data written in clear (before encryption) is sealed and its plaintext cleared; the
//! data of instructions shipped 31 days ago is purged, 29 days ago kept (and still opens).

use std::process::Command;

use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrations = "../../migrations")]
async fn pii_purge_clears_shipments_older_than_the_retention(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let key = crypto::Keyring::generate_key(1);
    let keys = crypto::Keyring::parse(&key).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let shop = store::shops::insert(
        &mut conn,
        &keys,
        &store::shops::NewShop {
            code: "pii-shop".parse().unwrap(),
            name: "PII".into(),
            seller_id: "A1".into(),
            marketplaces: vec![domain::Marketplace::Japan],
            time_zone: chrono_tz::Asia::Tokyo,
            sp_api_endpoint: "http://127.0.0.1:1".into(),
            lwa_endpoint: "http://127.0.0.1:1/auth/o2/token".into(),
            shipment_strategy: domain::shop::ShipmentStrategy::Feed,
            client_id: "amzn1.application-oa2-client.test".into(),
            client_secret: secrecy::SecretString::from("secret"),
            refresh_token: secrecy::SecretString::from("Atzr|test"),
        },
    )
    .await
    .unwrap()
    .shop
    .id;
    drop(conn);
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
            .env(crypto::KEYS_ENV, &key)
            .output()
            .expect("run ctl")
    };
    // Rows written in clear are sealed; running it again finds nothing to do.
    for expected in [2, 0] {
        let out = run(&["--json", "keys", "rotate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["instructions"], expected, "{v}");
    }
    let clear: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shipping_instructions WHERE num_nonnulls(buyer_name, ship_to_address, ship_to_phone) > 0 OR pii_enc IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(clear, 0, "no plaintext left, every row sealed");
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
    let rows: Vec<(Uuid, String, Option<Vec<u8>>, bool)> = sqlx::query_as(
        "SELECT id, amazon_order_id, pii_enc, pii_purged_at IS NOT NULL FROM shipping_instructions ORDER BY amazon_order_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let (kept, purged) = (&rows[0], &rows[1]);
    assert_eq!((kept.1.as_str(), kept.3), ("503-0000000-0000029", false));
    assert_eq!(
        (purged.1.as_str(), &purged.2, purged.3),
        ("503-0000000-0000031", &None, true)
    );
    let mut conn = pool.acquire().await.unwrap();
    let data = store::pii::read(&mut conn, &keys, kept.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            data.buyer_name.as_deref(),
            data.ship_to_address.as_deref(),
            data.ship_to_phone.as_deref()
        ),
        (Some("Buyer"), Some("Address"), Some("03-0000-0000"))
    );
    assert_eq!(
        store::pii::read(&mut conn, &keys, purged.0).await.unwrap(),
        None
    );
    // Another key cannot open it.
    assert!(
        store::pii::read(&mut conn, &crypto::Keyring::for_testing(), kept.0)
            .await
            .is_err()
    );
}
