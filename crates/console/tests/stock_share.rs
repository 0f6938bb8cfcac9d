//! Issue 21 item 3 in the console: the 外部商品 screen shows each SKU's share of free stock,
//! safety stock and what the next push sends, and sets them (CSRF, values out of range refused
//! with why, nothing saved; API-logged with the operator).

mod common;

use common::*;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn share_and_safety_stock_are_shown_and_set(pool: PgPool) {
    let jp = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    let au = shop(&pool, "acme-au", "AU", "Australia/Sydney").await;
    user(&pool, "alice", &["acme-jp", "acme-au"]).await;
    let mut conn = pool.acquire().await.unwrap();
    let p = store::catalog::insert_product(&mut conn, jp, "P001", "緑茶 500ml")
        .await
        .unwrap();
    store::inventory::set_on_hand(&mut conn, jp, p.id, 10, None)
        .await
        .unwrap();
    store::inventory::map_sku(&mut conn, jp, "SKU-JP", p.id, None)
        .await
        .unwrap();
    let other = shop(&pool, "other-jp", "JP", "Asia/Tokyo").await;
    store::catalog::insert_product(&mut conn, other, "P001", "Not alice's")
        .await
        .unwrap();
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let shares = async || -> Vec<(String, Option<i16>, i32)> {
        sqlx::query_as(
            "SELECT sku, share_percent, safety_stock FROM external_products ORDER BY sku",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let post =
        async |c: &mut Client, shop: &str, sku: &str, share: &str, safety: &str, csrf: &str| {
            c.post(
                "/external-products/share",
                &[
                    ("csrf", csrf),
                    ("shop", shop),
                    ("sku", sku),
                    ("share_percent", share),
                    ("safety_stock", safety),
                ],
            )
            .await
        };

    // The AU shop maps the JP shop's product through the form; a shop the operator does not
    // see cannot be chosen.
    let map = async |c: &mut Client, product_shop: &str, csrf: &str| {
        c.post(
            "/external-products/map",
            &[
                ("csrf", csrf),
                ("shop", "acme-au"),
                ("sku", "SKU-AU"),
                ("product", "P001"),
                ("handling_days", ""),
                ("product_shop", product_shop),
            ],
        )
        .await
    };
    let r = map(&mut c, "other-jp", &csrf).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("other-jp"), "{}", r.body);
    let r = map(&mut c, "acme-au", &csrf).await;
    assert_eq!(r.status, 422, "acme-au has no P001");
    assert_eq!(map(&mut c, "acme-jp", &csrf).await.status, 303);
    let au_product: uuid::Uuid = sqlx::query_scalar(
        "SELECT product_id FROM external_products WHERE shop_id = $1 AND sku = 'SKU-AU'",
    )
    .bind(au)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(au_product, p.id);

    let page = c.get("/external-products?shop=acme-jp").await.body;
    assert!(page.contains(r#"id="share-form""#), "{page}");
    assert!(page.contains(r#"name="product_shop""#), "{page}");
    assert!(
        page.contains("配分率") && page.contains("安全在庫"),
        "{page}"
    );

    assert_eq!(
        post(&mut c, "acme-jp", "SKU-JP", "70", "2", "forged")
            .await
            .status,
        403
    );
    let r = post(&mut c, "acme-jp", "SKU-JP", "120", "2", &csrf).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("配分率「120」は1〜100"), "{}", r.body);
    let r = post(&mut c, "acme-jp", "SKU-JP", "70", "-1", &csrf).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("安全在庫「-1」"), "{}", r.body);
    let r = post(&mut c, "acme-jp", "SKU-NONE", "70", "2", &csrf).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("SKU-NONE"), "{}", r.body);
    assert_eq!(
        shares().await,
        vec![("SKU-AU".into(), None, 0), ("SKU-JP".into(), None, 0)],
        "nothing saved"
    );

    assert_eq!(
        post(&mut c, "acme-jp", "SKU-JP", "70", "2", &csrf)
            .await
            .status,
        303
    );
    assert_eq!(
        post(&mut c, "acme-au", "SKU-AU", "30", "2", &csrf)
            .await
            .status,
        303
    );
    assert_eq!(
        shares().await,
        vec![
            ("SKU-AU".into(), Some(30), 2),
            ("SKU-JP".into(), Some(70), 2)
        ]
    );
    // Each shop's screen: share, safety stock, what the next push sends (JP 5, AU 2).
    for (shop, share, to_send) in [("acme-jp", "70 %", "5"), ("acme-au", "30 %", "2")] {
        let page = c.get(&format!("/external-products?shop={shop}")).await.body;
        let cell = |class: &str, v: &str| format!(r#"<td class="num {class}">{v}</td>"#);
        for want in [
            cell("share", share),
            cell("safety", "2"),
            cell("to-send", to_send),
        ] {
            assert!(page.contains(&want), "{shop}: {want} in {page}");
        }
    }
    // English too.
    let en = c.get("/external-products?shop=acme-au&lang=en").await.body;
    for want in [
        "Stock share (one product sold by several shops)",
        "Safety stock",
        "To send",
    ] {
        assert!(en.contains(want), "{want} in {en}");
    }
    assert!(!en.contains("配分率"), "{en}");

    // Cleared: the whole free stock again.
    assert_eq!(
        post(&mut c, "acme-au", "SKU-AU", "", "0", &csrf)
            .await
            .status,
        303
    );
    let page = c.get("/external-products?shop=acme-au").await.body;
    assert!(
        page.contains(r#"<td class="num to-send">10</td>"#),
        "{page}"
    );
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE action = 'console' AND details->>'operator' = 'alice' \
         AND code = 'stock_share_changed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 3);
}
