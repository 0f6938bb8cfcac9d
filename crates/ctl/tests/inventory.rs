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
