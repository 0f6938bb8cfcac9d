//! `ctl stock` and `ctl external-product` through the real binary on a fresh database.

mod common;

use sqlx::PgPool;

use common::{Env, text};

#[sqlx::test(migrations = "../../migrations")]
async fn stock_and_mapping_commands_validate_at_entry(pool: PgPool) {
    let env = Env::new(&pool).await;
    let run = |args: &[&str]| env.ctl(args);

    env.add_shop("acme");
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

/// Two shops sell one product: JP 70 %, AU 30 %, safety stock 2, free stock 10. `share` refuses
/// values out of range naming them, `list` shows share, safety stock and what is sent.
#[sqlx::test(migrations = "../../migrations")]
async fn shares_of_one_product_across_shops(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme-jp");
    env.add_shop("acme-au");
    sqlx::query(
        "INSERT INTO products (id, shop_id, code, name) SELECT gen_random_uuid(), id, 'P1', 'Product 1' FROM shops WHERE code = 'acme-jp'",
    )
    .execute(&pool)
    .await
    .unwrap();
    env.ok(&["stock", "set", "P1", "10", "--shop", "acme-jp"]);
    env.ok(&[
        "external-product",
        "map",
        "SKU-JP",
        "P1",
        "--shop",
        "acme-jp",
    ]);
    // The AU shop has no product P1 of its own: it maps the JP shop's.
    env.fails(
        &[
            "external-product",
            "map",
            "SKU-AU",
            "P1",
            "--shop",
            "acme-au",
        ],
        "product \"P1\" of shop acme-au",
    );
    env.ok(&[
        "external-product",
        "map",
        "SKU-AU",
        "P1",
        "--shop",
        "acme-au",
        "--product-shop",
        "acme-jp",
    ]);

    // No share yet: both are sent the whole free stock (today's behaviour).
    let rows = env.json(&["external-product", "list", "--shop", "acme-au"]);
    assert_eq!(rows[0]["to_send"], 10, "{rows}");
    assert_eq!(rows[0]["share_percent"], serde_json::Value::Null, "{rows}");

    // Refused at entry, naming the value and the valid range; nothing changed.
    let t = env.fails(
        &[
            "external-product",
            "share",
            "SKU-JP",
            "0",
            "--shop",
            "acme-jp",
        ],
        "share 0 % is out of range: a share is 1 to 100 %",
    );
    assert!(t.contains("nothing was changed"), "{t}");
    env.fails(
        &[
            "external-product",
            "share",
            "SKU-JP",
            "101",
            "--shop",
            "acme-jp",
        ],
        "1 to 100",
    );
    env.fails(
        &[
            "external-product",
            "share",
            "SKU-JP",
            "70",
            "--safety",
            "-1",
            "--shop",
            "acme-jp",
        ],
        "safety stock -1 is out of range",
    );
    env.fails(
        &[
            "external-product",
            "share",
            "NOPE",
            "70",
            "--shop",
            "acme-jp",
        ],
        "NOPE",
    );
    let shared: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM external_products WHERE share_percent IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(shared, 0);

    let t = env.ok(&[
        "external-product",
        "share",
        "SKU-JP",
        "70",
        "--safety",
        "2",
        "--shop",
        "acme-jp",
    ]);
    assert!(
        t.contains("share 70 %") && t.contains("safety stock 2"),
        "{t}"
    );
    env.ok(&[
        "external-product",
        "share",
        "SKU-AU",
        "30",
        "--safety",
        "2",
        "--shop",
        "acme-au",
    ]);
    let jp = env.json(&["external-product", "list", "--shop", "acme-jp"]);
    let au = env.json(&["external-product", "list", "--shop", "acme-au"]);
    assert_eq!(
        (
            &jp[0]["share_percent"],
            &jp[0]["safety_stock"],
            &jp[0]["to_send"]
        ),
        (&70.into(), &2.into(), &5.into()),
        "{jp}"
    );
    assert_eq!(
        (&au[0]["product"], &au[0]["free"], &au[0]["to_send"]),
        (&"P1".into(), &10.into(), &2.into()),
        "{au}"
    );
    let t = env.ok(&["external-product", "list", "--shop", "acme-au"]);
    assert!(t.contains("SKU-AU") && t.contains("30 %"), "{t}");

    // --clear: the whole free stock again (safety stock kept unless given).
    let t = env.ok(&[
        "external-product",
        "share",
        "SKU-AU",
        "--clear",
        "--safety",
        "0",
        "--shop",
        "acme-au",
    ]);
    assert!(t.contains("no share"), "{t}");
    let au = env.json(&["external-product", "list", "--shop", "acme-au"]);
    assert_eq!(au[0]["to_send"], 10, "{au}");
}
