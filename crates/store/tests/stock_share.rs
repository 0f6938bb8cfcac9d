//! Stock shared by several shops (issue 21 item 3): the SKUs of two shops map one product; the
//! targets inventory-sync reads send each its share of free stock less the safety stock, and a
//! change of share or safety stock makes every SKU of the product due again.

use crypto::Keyring;
use domain::stock::{SafetyStock, SharePercent};
use domain::{Marketplace, shop::ShipmentStrategy};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};
use store::{catalog, inventory, read, shops};
use uuid::Uuid;

fn new_shop(code: &str, marketplace: Marketplace) -> shops::NewShop {
    shops::NewShop {
        code: code.parse().unwrap(),
        name: code.into(),
        seller_id: format!("A{}", code.to_uppercase()),
        marketplaces: vec![marketplace],
        time_zone: chrono_tz::Asia::Tokyo,
        sp_api_endpoint: "http://127.0.0.1:1".into(),
        lwa_endpoint: "http://127.0.0.1:1/auth/o2/token".into(),
        shipment_strategy: ShipmentStrategy::Feed,
        client_id: "amzn1.application-oa2-client.test".into(),
        client_secret: SecretString::from("secret"),
        refresh_token: SecretString::from("Atzr|refresh"),
    }
}

struct Fixture {
    jp: Uuid,
    au: Uuid,
    product: Uuid,
}

/// Shop jp owns product P1 (SKU-JP); shop au maps SKU-AU to the same product.
async fn fixture(conn: &mut PgConnection) -> Fixture {
    let keys = Keyring::for_testing();
    let jp = shops::insert(conn, &keys, &new_shop("jp", Marketplace::Japan))
        .await
        .unwrap()
        .shop
        .id;
    let au = shops::insert(conn, &keys, &new_shop("au", Marketplace::Australia))
        .await
        .unwrap()
        .shop
        .id;
    let p = catalog::insert_product(conn, jp, "P1", "Tea")
        .await
        .unwrap();
    inventory::set_on_hand(conn, jp, p.id, 10, None)
        .await
        .unwrap();
    inventory::map_sku(conn, jp, "SKU-JP", p.id, None)
        .await
        .unwrap();
    inventory::map_sku(conn, au, "SKU-AU", p.id, None)
        .await
        .unwrap();
    Fixture {
        jp,
        au,
        product: p.id,
    }
}

async fn quantity(conn: &mut PgConnection, shop: Uuid, full: bool) -> Option<i32> {
    let t = inventory::targets(conn, shop, full).await.unwrap();
    assert!(t.len() <= 1, "{t:?}");
    t.first().map(|t| t.quantity)
}

/// What a confirmed push would record: every SKU up to date.
async fn all_pushed(conn: &mut PgConnection) {
    sqlx::query(
        "UPDATE external_products e SET pushed_change_seq = s.change_seq, push_state = 'confirmed'
           FROM stock s WHERE s.product_id = e.product_id",
    )
    .execute(conn)
    .await
    .unwrap();
}

fn share(p: i64) -> Option<SharePercent> {
    Some(SharePercent::new(p).unwrap())
}

fn safety(n: i64) -> Option<SafetyStock> {
    Some(SafetyStock::new(n).unwrap())
}

#[sqlx::test(migrations = "../../migrations")]
async fn jp_70_au_30_safety_2_sends_5_and_2(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let fx = fixture(&mut conn).await;
    // No share: today's behaviour, each is sent the whole free stock.
    assert_eq!(quantity(&mut conn, fx.jp, true).await, Some(10));
    assert_eq!(quantity(&mut conn, fx.au, true).await, Some(10));

    all_pushed(&mut conn).await;
    assert_eq!(quantity(&mut conn, fx.jp, false).await, None);
    assert_eq!(quantity(&mut conn, fx.au, false).await, None);

    let m = inventory::set_share(&mut conn, fx.jp, "SKU-JP", share(70), safety(2))
        .await
        .unwrap();
    assert_eq!((m.share_percent, m.safety_stock), (Some(70), 2));
    // Setting JP's share makes both SKUs of the product due (AU's part depends on JP's).
    // AU alone holds no share yet: whole free stock; JP: 70 % of 10 − 2.
    assert_eq!(quantity(&mut conn, fx.jp, false).await, Some(5));
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(10));
    inventory::set_share(&mut conn, fx.au, "SKU-AU", share(30), safety(2))
        .await
        .unwrap();
    assert_eq!(quantity(&mut conn, fx.jp, false).await, Some(5));
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(2));

    // The screen's listing shows share, safety stock and what the next push sends.
    let rows = read::external_products::list(&mut conn, fx.au)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].product_code, "P1");
    assert_eq!(
        (
            rows[0].share_percent,
            rows[0].safety_stock,
            rows[0].free,
            rows[0].to_send
        ),
        (Some(30), 2, 10, 2)
    );

    // Safety only changed: due again; shares over 100 % are scaled down.
    all_pushed(&mut conn).await;
    inventory::set_share(&mut conn, fx.au, "SKU-AU", share(60), None)
        .await
        .unwrap();
    let m = inventory::mapping(&mut conn, fx.au, "SKU-AU")
        .await
        .unwrap();
    assert_eq!(m.safety_stock, 2, "safety kept when not given");
    // 8 available over 130 %: JP 8×70/130 = 4, AU 8×60/130 = 3.
    assert_eq!(quantity(&mut conn, fx.jp, false).await, Some(4));
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(3));

    // Free stock at the safety stock: every shop shows 0.
    inventory::set_on_hand(&mut conn, fx.jp, fx.product, 2, None)
        .await
        .unwrap();
    assert_eq!(quantity(&mut conn, fx.jp, false).await, Some(0));
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(0));

    // Clearing the share: back to the whole free stock, and the sibling is due again.
    inventory::set_on_hand(&mut conn, fx.jp, fx.product, 10, None)
        .await
        .unwrap();
    all_pushed(&mut conn).await;
    inventory::set_share(&mut conn, fx.au, "SKU-AU", None, safety(0))
        .await
        .unwrap();
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(10));
    assert_eq!(quantity(&mut conn, fx.jp, false).await, Some(5));

    // Unmapping a sharing SKU makes the others due; an unknown SKU is a clear error.
    all_pushed(&mut conn).await;
    assert!(
        inventory::unmap_sku(&mut conn, fx.jp, "SKU-JP")
            .await
            .unwrap()
    );
    assert_eq!(quantity(&mut conn, fx.au, false).await, Some(10));
    let e = inventory::set_share(&mut conn, fx.jp, "SKU-JP", share(10), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("SKU-JP"), "{e}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_database_refuses_shares_and_safety_out_of_range(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    fixture(&mut conn).await;
    for (share, safety) in [(Some(0), 0), (Some(101), 0), (None, -1)] {
        let r = sqlx::query(
            "UPDATE external_products SET share_percent = $1, safety_stock = $2 WHERE sku = 'SKU-JP'",
        )
        .bind(share.map(|s: i16| s))
        .bind(safety)
        .execute(&mut *conn)
        .await;
        assert!(r.is_err(), "{share:?} {safety} accepted");
    }
}

/// Over random sequences of stock changes on the real database: JP 70 % and AU 30 % with safety
/// stock 2 are never sent more than free − 2 together, and 5 / 2 whenever free stock is 10.
#[sqlx::test(migrations = "../../migrations")]
async fn never_more_than_free_less_safety_over_any_sequence(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let fx = fixture(&mut conn).await;
    inventory::set_share(&mut conn, fx.jp, "SKU-JP", share(70), safety(2))
        .await
        .unwrap();
    inventory::set_share(&mut conn, fx.au, "SKU-AU", share(30), safety(2))
        .await
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(12));
    let changes = proptest::collection::vec(-15i64..15, 1..25);
    for _ in 0..12 {
        let seq = changes.new_tree(&mut runner).unwrap().current();
        inventory::set_on_hand(&mut conn, fx.jp, fx.product, 10, None)
            .await
            .unwrap();
        assert_eq!(quantity(&mut conn, fx.jp, true).await, Some(5));
        assert_eq!(quantity(&mut conn, fx.au, true).await, Some(2));
        let mut on_hand = 10i64;
        for d in seq {
            on_hand = (on_hand + d).max(0);
            inventory::set_on_hand(&mut conn, fx.jp, fx.product, on_hand as i32, None)
                .await
                .unwrap();
            let jp = quantity(&mut conn, fx.jp, true).await.unwrap();
            let au = quantity(&mut conn, fx.au, true).await.unwrap();
            assert!(
                i64::from(jp + au) <= (on_hand - 2).max(0),
                "free {on_hand}: JP {jp} + AU {au}"
            );
            if on_hand == 10 {
                assert_eq!((jp, au), (5, 2));
            }
        }
    }
}
