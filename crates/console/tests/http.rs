//! The console over plain HTTP: sign-in, triggers refused or queued through the outbox, shop
//! isolation, PII masking, schedule changes, and every page rendering (escaped) on a seeded
//! database.

mod common;

use chrono::{Duration, Utc};
use common::*;
use sqlx::PgPool;

fn local(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[sqlx::test(migrations = "../../migrations")]
async fn sign_in_is_required_and_checked(pool: PgPool) {
    shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);

    let r = c.get("/runs?shop=acme-jp").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/login?next=%2Fruns%3Fshop%3Dacme-jp")
    );

    let r = c
        .post(
            "/login",
            &[("username", "alice"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body
            .contains("ユーザー名またはパスワードが正しくありません")
    );
    let r = c
        .post("/login", &[("username", "nobody"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 401);

    let r = c
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/runs?shop=acme-jp"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/runs?shop=acme-jp"));
    let r = c.get("/runs?shop=acme-jp").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("alice (test)"));

    // The session is stored hashed, never as the cookie value.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM console_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);

    // Sign-out needs the CSRF token, then ends the session.
    assert_eq!(c.post("/logout", &[("csrf", "forged")]).await.status, 403);
    let csrf = c.csrf().await;
    assert_eq!(c.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(c.get("/").await.status, 303);
}

/// Issue 17 (sign-in throttling): after 5 failed sign-ins for a user name within 15 minutes the
/// next attempt waits (429 with Retry-After, even with the right password) with a growing
/// delay; the failures are recorded without the password, and a success clears them.
#[sqlx::test(migrations = "../../migrations")]
async fn failed_sign_ins_are_throttled_with_a_growing_delay(pool: PgPool) {
    shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    let wrong = "hunter2-wrong";
    let attempt = async |c: &mut Client, password: &str| {
        c.post("/login", &[("username", "alice"), ("password", password)])
            .await
    };
    for _ in 0..5 {
        assert_eq!(attempt(&mut c, wrong).await.status, 401);
    }
    let throttled = attempt(&mut c, PASSWORD).await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(
        throttled.body.contains("秒後にもう一度お試しください"),
        "{}",
        throttled.body
    );
    let (stored, leaked): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE username = 'alice' AND address = '127.0.0.1'),
                count(*) FILTER (WHERE username LIKE '%hunter2%' OR address LIKE '%hunter2%')
         FROM sign_in_failures",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 5, "the throttled attempt is not a failure");
    assert_eq!(leaked, 0, "no password stored");

    // Time passes (the failures moved back in the table): after the 2 s delay one more attempt
    // is allowed; a 6th failure doubles the wait to 4 s.
    let age = async |secs: i32| {
        sqlx::query("UPDATE sign_in_failures SET at = at - make_interval(secs => $1)")
            .bind(f64::from(secs))
            .execute(&pool)
            .await
            .unwrap();
    };
    age(3).await;
    assert_eq!(attempt(&mut c, wrong).await.status, 401);
    age(2).await;
    assert_eq!(attempt(&mut c, PASSWORD).await.status, 429, "4 s now");
    age(3).await;
    let r = c
        .post(
            "/login",
            &[("username", "alice"), ("password", PASSWORD), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sign_in_failures WHERE username = 'alice'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, 0, "a success clears the user's failures");
}

/// Issue 17, 外部商品: map a SKU, set and clear its handling days, export the mapping as CSV
/// (UTF-8 and Shift_JIS) and import it back; a bad line anywhere saves nothing and is named;
/// every change is API-logged with the operator; CSRF and shop access hold.
#[sqlx::test(migrations = "../../migrations")]
async fn external_products_are_mapped_exported_and_imported(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    shop(&pool, "other-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    user(&pool, "bob", &["other-jp"]).await;
    let mut conn = pool.acquire().await.unwrap();
    for (code, name) in [("P001", "緑茶 500ml"), ("P002", "ほうじ茶 <2L>")] {
        store::catalog::insert_product(&mut conn, acme, code, name)
            .await
            .unwrap();
    }
    let srv = start(pool.clone(), "").await;
    let mut bob = Client::new(&srv.base);
    bob.sign_in("bob").await;
    assert_eq!(bob.get("/external-products?shop=acme-jp").await.status, 404);

    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let mapped = async || -> Vec<(String, String, Option<i16>)> {
        sqlx::query_as(
            "SELECT e.sku, p.code, e.handling_days FROM external_products e JOIN products p ON p.id = e.product_id ORDER BY e.sku",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let page = c.get("/external-products?shop=acme-jp").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="external-products""#));

    let form = |sku: &'static str, product: &'static str, days: &'static str| {
        [
            ("shop", "acme-jp"),
            ("sku", sku),
            ("product", product),
            ("handling_days", days),
        ]
    };
    let post = async |c: &mut Client, path: &str, fields: &[(&str, &str)], csrf: &str| {
        let mut all = vec![("csrf", csrf)];
        all.extend_from_slice(fields);
        c.post(path, &all).await
    };
    assert_eq!(
        post(
            &mut c,
            "/external-products/map",
            &form("SKU-1", "P001", "3"),
            "forged"
        )
        .await
        .status,
        403
    );
    let unknown = post(
        &mut c,
        "/external-products/map",
        &form("SKU-1", "P999", ""),
        &csrf,
    )
    .await;
    assert_eq!(unknown.status, 422);
    assert!(unknown.body.contains("P999"), "{}", unknown.body);
    let days = post(
        &mut c,
        "/external-products/map",
        &form("SKU-1", "P001", "31"),
        &csrf,
    )
    .await;
    assert_eq!(days.status, 422);
    assert!(days.body.contains("0〜30"), "{}", days.body);
    assert!(mapped().await.is_empty(), "nothing saved");
    let ok = post(
        &mut c,
        "/external-products/map",
        &form("SKU-1", "P001", "3"),
        &csrf,
    )
    .await;
    assert_eq!(ok.status, 303);
    assert_eq!(
        mapped().await,
        vec![("SKU-1".into(), "P001".into(), Some(3))]
    );
    let cleared = post(
        &mut c,
        "/external-products/handling",
        &[("shop", "acme-jp"), ("sku", "SKU-1"), ("handling_days", "")],
        &csrf,
    )
    .await;
    assert_eq!(cleared.status, 303);
    assert_eq!(mapped().await[0].2, None);
    let page = c.get("/external-products?shop=acme-jp").await.body;
    assert!(page.contains("SKU-1") && page.contains("緑茶 500ml"));

    // Export in Shift_JIS, as a Japanese spreadsheet saves it.
    let csv = c
        .get("/external-products/export?shop=acme-jp&encoding=shift_jis")
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.body,
        "sku,product_code,handling_days,share_percent,safety_stock\r\nSKU-1,P001,,,0\r\n"
    );

    // A file with bad lines: nothing saved, each line named.
    let sjis = |text: &str| encoding_rs::SHIFT_JIS.encode(text).0.into_owned();
    let bad = sjis("SKU,品番,出荷作業日数\r\nSKU-2,P002,5\r\nSKU-3,P404,\r\nSKU-4,P001,99\r\n");
    let fields = [
        ("csrf", csrf.as_str()),
        ("shop", "acme-jp"),
        ("encoding", "shift_jis"),
    ];
    let refused = c
        .post_file("/external-products/import", &fields, &bad)
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains(r#"id="import-errors""#),
        "{}",
        refused.body
    );
    for line in ["行 3", "行 4", "P404"] {
        assert!(refused.body.contains(line), "{line}: {}", refused.body);
    }
    assert_eq!(mapped().await.len(), 1, "nothing saved");

    let good = sjis("SKU,品番,出荷作業日数\r\nSKU-2,P002,5\r\nSKU-1,P002,\r\n");
    let imported = c
        .post_file("/external-products/import", &fields, &good)
        .await;
    assert_eq!(imported.status, 303, "{}", imported.body);
    assert_eq!(
        mapped().await,
        vec![
            ("SKU-1".into(), "P002".into(), None),
            ("SKU-2".into(), "P002".into(), Some(5)),
        ]
    );
    // With the stock share columns: SKU-2 gets 70 % and a safety stock of 2; SKU-1 not shared.
    let shared =
        sjis("SKU,品番,出荷作業日数,配分率,安全在庫\r\nSKU-2,P002,5,70,2\r\nSKU-1,P002,,,\r\n");
    let imported = c
        .post_file("/external-products/import", &fields, &shared)
        .await;
    assert_eq!(imported.status, 303, "{}", imported.body);
    let shares: Vec<(String, Option<i16>, i32)> = sqlx::query_as(
        "SELECT sku, share_percent, safety_stock FROM external_products WHERE shop_id = $1 ORDER BY sku",
    )
    .bind(acme)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        shares,
        vec![("SKU-1".into(), None, 0), ("SKU-2".into(), Some(70), 2)]
    );
    let exported = c.get("/external-products/export?shop=acme-jp").await.body;
    assert!(exported.contains("SKU-2,P002,5,70,2\r\n"), "{exported}");

    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE action = 'console' AND details->>'operator' = 'alice' \
         AND code IN ('external_product_mapped', 'handling_days_changed', 'external_products_imported')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 4);
}

/// Issue 17, 配送方法 / 外部連携先配送方法 / 変換ロボット: a delivery method and a carrier mapping
/// saved from the page (bad ones refused with why, nothing saved; each change API-logged with
/// the operator), and the rules tried on an imported order as `ctl rules test` does.
#[sqlx::test(migrations = "../../migrations")]
async fn delivery_methods_carriers_and_rules_on_one_page(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let order = "503-3333333-1111111";
    instruction(&pool, acme, order, "山田 太郎", Utc::now()).await;
    let mut conn = pool.acquire().await.unwrap();
    let cool = store::catalog::upsert_delivery_method(&mut conn, acme, "cool", "クール便", None)
        .await
        .unwrap();
    let conditions = domain::delivery_rules::RuleConditions {
        states: vec!["東京都".into()],
        ..Default::default()
    };
    store::catalog::add_rule(&mut conn, acme, 10, "東京はクール便", &conditions, cool.id)
        .await
        .unwrap();
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let post = async |c: &mut Client, path: &str, fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str()), ("shop", "acme-jp")];
        all.extend_from_slice(fields);
        c.post(path, &all).await
    };

    let saved = post(
        &mut c,
        "/delivery/methods",
        &[
            ("code", "yamato"),
            ("name", "宅急便"),
            ("external", "yamato"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303);
    let page = c.get("/delivery?shop=acme-jp").await.body;
    assert!(page.contains("宅急便") && page.contains(r#"id="delivery-methods""#));

    let mappings = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM carrier_mappings WHERE shop_id IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let other = post(
        &mut c,
        "/delivery/carriers",
        &[("external", "seino"), ("code", "Other")],
    )
    .await;
    assert_eq!(other.status, 422);
    assert!(
        other.body.contains("needs a carrier name"),
        "{}",
        other.body
    );
    let pattern = post(
        &mut c,
        "/delivery/carriers",
        &[("external", "seino"), ("code", "Seino"), ("pattern", "([")],
    )
    .await;
    assert_eq!(pattern.status, 422);
    assert!(pattern.body.contains("not a valid regular expression"));
    assert_eq!(mappings().await, 0, "nothing saved");
    let ok = post(
        &mut c,
        "/delivery/carriers",
        &[
            ("external", "seino"),
            ("code", "Other"),
            ("name", "西濃運輸"),
            ("pattern", "^[0-9]{10}$"),
        ],
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(mappings().await, 1);
    let table = c.get("/delivery?shop=acme-jp").await.body;
    assert!(table.contains("西濃運輸") && table.contains(r#"id="carrier-mappings""#));
    // Issue 21 item 5: a JP shop sees JP's built-ins (badged JP) and the international ones, not
    // Australia's or Singapore's; each row says what Amazon is sent.
    let carriers_table = table
        .split(r#"id="carrier-mappings""#)
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap();
    assert!(carriers_table.contains("YamatoTransport") && carriers_table.contains(">JP<"));
    assert!(!carriers_table.contains("Ninja Van"));
    assert!(!carriers_table.contains("Sendle") && !carriers_table.contains("Couriers Please"));
    assert!(
        carriers_table.contains(r#"<td class="sent-as">Other: 西濃運輸</td>"#),
        "{carriers_table}"
    );
    assert_eq!(
        post(
            &mut c,
            "/delivery/carriers/remove",
            &[("external", "seino")]
        )
        .await
        .status,
        303
    );
    assert_eq!(mappings().await, 0);
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE action = 'console' AND details->>'operator' = 'alice'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 3);

    // 変換ロボット: the rule matches the order (shipped to 東京都).
    let trial = c
        .get(&format!("/delivery?shop=acme-jp&try={order}"))
        .await
        .body;
    assert!(trial.contains(r#"id="rule-trial""#), "{trial}");
    assert!(trial.contains("→ cool"), "{trial}");
    let unknown = c
        .get("/delivery?shop=acme-jp&try=503-0000000-0000000")
        .await
        .body;
    assert!(unknown.contains("is not imported"), "{unknown}");

    // Rules added and removed from the page; impossible or clashing ones refused.
    let rules = async || -> Vec<(i32, String)> {
        sqlx::query_as("SELECT position, name FROM delivery_rules ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let rule = |position: &'static str, min: &'static str, max: &'static str| {
        [
            ("position", position),
            ("name", "大口は佐川"),
            ("method", "yamato"),
            ("marketplaces", "JP"),
            ("min_total", min),
            ("max_total", max),
            ("prime", ""),
        ]
    };
    let impossible = post(&mut c, "/delivery/rules", &rule("5", "9000", "100")).await;
    assert_eq!(impossible.status, 422);
    assert!(
        impossible.body.contains("no order could match"),
        "{}",
        impossible.body
    );
    let clash = post(&mut c, "/delivery/rules", &rule("10", "", "")).await;
    assert_eq!(clash.status, 422);
    assert!(
        clash.body.contains("already at position 10"),
        "{}",
        clash.body
    );
    let mut bad_market = rule("5", "", "").to_vec();
    bad_market[3] = ("marketplaces", "JP,XX");
    let refused = post(&mut c, "/delivery/rules", &bad_market).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("XX"), "{}", refused.body);
    assert_eq!(rules().await.len(), 1, "nothing saved");
    let added = post(&mut c, "/delivery/rules", &rule("5", "10,000", "")).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(rules().await[0], (5, "大口は佐川".to_owned()));
    let removed = post(&mut c, "/delivery/rules/remove", &[("position", "5")]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(rules().await, vec![(10, "東京はクール便".to_owned())]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_week_range_is_refused_and_nothing_is_published(pool: PgPool) {
    shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let now = Utc::now();
    let (from, to) = (
        local(now - Duration::days(21)),
        local(now - Duration::days(7)),
    );
    let range = [
        ("csrf", csrf.as_str()),
        ("shop", "acme-jp"),
        ("action", "order-ingest"),
        ("mode", "range"),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ];

    let r = c.post("/actions", &range).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"id="refused""#), "{}", r.body);
    assert!(r.body.contains("範囲が長すぎます"), "{}", r.body);
    assert!(r.body.contains("最大7日間"));
    assert!(r.body.contains("何も送信していません"));
    assert_eq!(outbox_count(&pool).await, 0);

    // The same in English.
    let r = c.get("/actions?lang=en").await;
    assert_eq!(r.status, 200);
    let r = c.post("/actions", &range).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at most 7 days"), "{}", r.body);
    assert!(r.body.contains("Nothing was sent."));

    // Hours outside 1-168, an inverted range, a missing end, a forged CSRF token: refused too.
    for form in [
        vec![("mode", "hours"), ("hours", "200")],
        vec![("mode", "hours"), ("hours", "0")],
        vec![("mode", "hours"), ("hours", "six")],
        vec![
            ("mode", "range"),
            ("from", to.as_str()),
            ("to", from.as_str()),
        ],
        vec![("mode", "range"), ("from", from.as_str())],
    ] {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("shop", "acme-jp"),
            ("action", "order-ingest"),
        ];
        f.extend(form);
        let r = c.post("/actions", &f).await;
        assert_eq!(r.status, 422, "{f:?}: {}", r.body);
    }
    let mut forged = range.to_vec();
    forged[0] = ("csrf", "forged");
    assert_eq!(c.post("/actions", &forged).await.status, 403);
    assert_eq!(outbox_count(&pool).await, 0, "nothing may be published");

    // A one-week range and an hours import are queued, recorded with the operator.
    let week = local(now - Duration::days(14));
    let r = c
        .post(
            "/actions",
            &[
                ("csrf", csrf.as_str()),
                ("shop", "acme-jp"),
                ("action", "order-ingest"),
                ("mode", "range"),
                ("from", week.as_str()),
                ("to", from.as_str()),
            ],
        )
        .await;
    assert_eq!(
        r.status, 422,
        "14 → 21 days back is a week the other way round"
    );
    let week_end = local(now - Duration::days(7));
    let r = c
        .post(
            "/actions",
            &[
                ("csrf", csrf.as_str()),
                ("shop", "acme-jp"),
                ("action", "order-ingest"),
                ("mode", "range"),
                ("from", week.as_str()),
                ("to", week_end.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = c
        .post(
            "/actions",
            &[
                ("csrf", csrf.as_str()),
                ("shop", "acme-jp"),
                ("action", "order-ingest"),
                ("mode", "hours"),
                ("hours", "6"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let rows: Vec<(String, String, serde_json::Value)> =
        sqlx::query_as("SELECT exchange, routing_key, payload FROM outbox ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (exchange, key, payload) in &rows {
        assert_eq!(exchange, "commands");
        assert_eq!(key, "order-ingest");
        assert_eq!(payload["requested_by"], "alice");
    }
    assert_eq!(rows[1].2["params"]["mode"], "hours");
    assert_eq!(rows[1].2["params"]["hours"], 6);
    let page = c.get(r.location.as_deref().unwrap()).await;
    assert!(page.body.contains(r#"id="queued""#), "{}", page.body);
}

#[sqlx::test(migrations = "../../migrations")]
async fn operators_see_only_their_shops(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    let other = shop(&pool, "other-au", "AU", "Australia/Sydney").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let mine = instruction(
        &pool,
        acme,
        "503-0000000-0000001",
        "Alice Buyer",
        Utc::now(),
    )
    .await;
    let theirs = instruction(
        &pool,
        other,
        "249-0000000-0000002",
        "Other Buyer",
        Utc::now(),
    )
    .await;
    log(&pool, acme, "order-ingest", "info", None, "acme message").await;
    log(
        &pool,
        other,
        "order-ingest",
        "error",
        None,
        "other shop's message",
    )
    .await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;

    for path in [
        "/shops/other-au".to_owned(),
        "/runs?shop=other-au".to_owned(),
        "/api-log?shop=other-au".to_owned(),
        "/instructions?shop=other-au".to_owned(),
        "/feeds?shop=other-au".to_owned(),
        "/actions?shop=other-au".to_owned(),
        "/?shop=other-au".to_owned(),
        format!("/instructions/{theirs}"),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("249-0000000-0000002"));
    }
    let r = c
        .post(
            &format!("/instructions/{theirs}/reveal"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404);
    let r = c
        .post(
            "/actions",
            &[
                ("csrf", &csrf),
                ("shop", "other-au"),
                ("action", "status-sync"),
                ("mode", "changes"),
            ],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(outbox_count(&pool).await, 0);

    let list = c.get("/instructions").await.body;
    assert!(list.contains("503-0000000-0000001") && !list.contains("249-0000000-0000002"));
    let logs = c.get("/api-log").await.body;
    assert!(logs.contains("acme message") && !logs.contains("other shop's message"));
    let shops = c.get("/shops").await.body;
    assert!(shops.contains("acme-jp") && !shops.contains("other-au"));
    assert_eq!(c.get(&format!("/instructions/{mine}")).await.status, 200);
}

/// Issue 17, item 1 (b): 要対応 lists a shipment that missed its day with a Resend button; the
/// resend is recorded with the operator's name (instruction and API log), needs the CSRF token,
/// and an operator who does not see the shop cannot resend it.
#[sqlx::test(migrations = "../../migrations")]
async fn late_shipment_is_listed_and_resent_by_the_operator(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    shop(&pool, "other-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    user(&pool, "bob", &["other-jp"]).await;
    let order = "503-2222222-1111111";
    let id = instruction(&pool, acme, order, "山田 太郎", Utc::now()).await;
    let two_days_ago = (Utc::now() - chrono::Duration::days(2)).date_naive();
    sqlx::query(
        "UPDATE shipping_instructions SET status = 'shipped', api_status = 'awaiting_print',
             tracking_numbers = '{400012345678}', shipped_on = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(two_days_ago)
    .execute(&pool)
    .await
    .unwrap();
    let srv = start(pool.clone(), "").await;

    let mut bob = Client::new(&srv.base);
    bob.sign_in("bob").await;
    let bob_csrf = bob.csrf().await;
    assert!(!bob.get("/attention").await.body.contains(order));
    let refused = bob
        .post(&format!("/shipments/{id}/resend"), &[("csrf", &bob_csrf)])
        .await;
    assert_eq!(refused.status, 404);

    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let page = c.get("/attention").await;
    assert!(
        page.body.contains(r#"id="attention-late""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(order) && page.body.contains("400012345678"));
    assert!(
        page.body
            .contains(&format!(r#"action="/shipments/{id}/resend""#))
    );
    assert_eq!(
        c.post(&format!("/shipments/{id}/resend"), &[("csrf", "forged")])
            .await
            .status,
        403
    );
    let done = c
        .post(&format!("/shipments/{id}/resend"), &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.location.unwrap();
    assert!(to.contains("result=requested"), "{to}");
    let flash = c.get(&to).await.body;
    assert!(flash.contains(r#"id="resend-flash""#), "{flash}");
    // No longer late: a resend is asked for.
    assert!(!flash.contains(r#"id="attention-late""#));
    let by: Option<String> =
        sqlx::query_scalar("SELECT resend_requested_by FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(by.as_deref(), Some("alice"));
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE code = 'resend_requested' AND details->>'operator' = 'alice' AND message LIKE '%alice%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 1);
}

async fn schedule_row(
    pool: &PgPool,
    shop: &str,
    action: &str,
    entry: &str,
) -> (String, bool, String) {
    sqlx::query_as(
        "SELECT sc.cron, sc.enabled, sc.updated_by FROM schedules sc JOIN shops s ON s.id = sc.shop_id
         WHERE s.code = $1 AND sc.action = $2 AND sc.entry = $3",
    )
    .bind(shop)
    .bind(action)
    .bind(entry)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn schedule_changes_logged(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM api_log WHERE code = 'schedule_changed'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The form of a cadence change of shop's order-ingest entry.
fn set_form<'a>(csrf: &'a str, shop: &'a str, cron: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("shop", shop),
        ("action", "order-ingest"),
        ("entry", "default"),
        ("op", "set"),
        ("cron", cron),
    ]
}

/// 自動実行: the shop's entries with their cadence; a change needs the CSRF token and the shop,
/// a bad cron expression shows the page again with why (in the operator's language) and saves
/// nothing, and a change is recorded with the operator's name on the entry and in the API log.
#[sqlx::test(migrations = "../../migrations")]
async fn schedules_are_changed_by_the_shop_operators_only(pool: PgPool) {
    shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    shop(&pool, "other-au", "AU", "Australia/Sydney").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;

    let page = c.get("/schedules").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        r#"<a href="/schedules" class="active">自動実行</a>"#,
        r#"id="schedule-order-ingest-default""#,
        "出荷指示取得（通常）",
        "出荷実績戻し（終業時）",
        r#"value="55 23 * * *""#,
        r#"value="5-59/15 * * * *""#,
        "Asia/Tokyo",
    ] {
        assert!(page.body.contains(needle), "{needle:?} not on the page");
    }
    assert_eq!(c.get("/schedules?shop=other-au").await.status, 404);
    let en = c.get("/schedules?lang=en").await.body;
    assert!(
        en.contains("<h1>Schedules</h1>")
            && en.contains("Shipping-instruction import (regular)")
            && en.contains("Shipment-result return (end of day)"),
        "{en}"
    );
    c.get("/schedules?lang=ja").await;

    let csrf = csrf.as_str();
    let before = schedule_row(&pool, "acme-jp", "order-ingest", "default").await;
    assert_eq!(
        c.post("/schedules", &set_form("forged", "acme-jp", "*/5 * * * *"))
            .await
            .status,
        403
    );
    // Not one of alice's shops.
    assert_eq!(
        c.post("/schedules", &set_form(csrf, "other-au", "*/5 * * * *"))
            .await
            .status,
        404
    );
    // A bad cron expression: the page again, with why and the typed value kept.
    let bad = c
        .post("/schedules", &set_form(csrf, "acme-jp", "*/5 * * *"))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains(r#"id="schedule-error""#), "{}", bad.body);
    assert!(
        bad.body
            .contains("「*/5 * * *」は実行間隔として使えません（項目が4個あります。5個必要です）")
            && bad.body.contains("何も保存していません"),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains(
            r#"value="*/5 * * *" required size="16" aria-label="cron" aria-invalid="true""#
        )
    );
    let en_bad = c
        .post(
            "/schedules?lang=en",
            &set_form(csrf, "acme-jp", "99 * * * *"),
        )
        .await;
    assert_eq!(en_bad.status, 422);
    assert!(
        en_bad
            .body
            .contains("&quot;99 * * * *&quot; is not a valid schedule")
            && en_bad.body.contains("Nothing was saved."),
        "{}",
        en_bad.body
    );
    c.get("/schedules?lang=ja").await;
    let unknown = c
        .post(
            "/schedules",
            &[
                ("csrf", csrf),
                ("shop", "acme-jp"),
                ("action", "order-import"),
                ("entry", "default"),
                ("op", "set"),
                ("cron", "*/5 * * * *"),
            ],
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .body
            .contains("unknown action &quot;order-import&quot;")
    );
    assert_eq!(
        schedule_row(&pool, "acme-jp", "order-ingest", "default").await,
        before
    );
    assert_eq!(
        schedule_changes_logged(&pool).await,
        0,
        "a refused change was logged"
    );

    // A valid change.
    let ok = c
        .post("/schedules", &set_form(csrf, "acme-jp", " */5  * * * * "))
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let to = ok.location.unwrap();
    assert!(to.contains("changed=order-ingest%2Fdefault"), "{to}");
    let after = c.get(&to).await.body;
    assert!(after.contains(r#"id="schedule-saved""#), "{after}");
    assert!(after.contains(r#"value="*/5 * * * *""#));
    assert_eq!(
        schedule_row(&pool, "acme-jp", "order-ingest", "default").await,
        ("*/5 * * * *".to_owned(), true, "alice".to_owned())
    );
    let (message, operator): (String, String) = sqlx::query_as(
        "SELECT message, details->>'operator' FROM api_log WHERE code = 'schedule_changed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(operator, "alice");
    assert!(
        message.contains("alice") && message.contains("*/15 * * * *"),
        "{message}"
    );

    // Pause the end-of-day run, and resume it.
    let pause = [
        ("csrf", csrf),
        ("shop", "acme-jp"),
        ("action", "shipment-feedback"),
        ("entry", "end-of-day"),
        ("op", "disable"),
    ];
    assert_eq!(c.post("/schedules", &pause).await.status, 303);
    assert!(
        !schedule_row(&pool, "acme-jp", "shipment-feedback", "end-of-day")
            .await
            .1
    );
    let paused = c.get("/schedules").await.body;
    let row = &paused[paused
        .find(r#"id="schedule-shipment-feedback-end-of-day""#)
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("停止中") && row.contains(r#"name="op" value="enable""#),
        "{row}"
    );
    let mut resume = pause;
    resume[4] = ("op", "enable");
    assert_eq!(c.post("/schedules", &resume).await.status, 303);
    assert!(
        schedule_row(&pool, "acme-jp", "shipment-feedback", "end-of-day")
            .await
            .1
    );
    assert_eq!(schedule_changes_logged(&pool).await, 3);
    // The other shop's entries never changed.
    assert_eq!(
        schedule_row(&pool, "other-au", "order-ingest", "default").await,
        ("*/15 * * * *".to_owned(), true, "defaults".to_owned())
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn personal_data_is_masked_until_revealed_and_the_reveal_is_logged(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let id = instruction(&pool, acme, "503-1111111-1111111", "山田 太郎", Utc::now()).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;

    let page = c.get(&format!("/instructions/{id}")).await;
    assert_eq!(page.status, 200);
    for pii in ["山田", "buyer-x@", "神宮前", "03-1234-5678", "150-0001"] {
        assert!(!page.body.contains(pii), "{pii} shown before reveal");
    }
    assert!(page.body.contains("●●●●●●"));
    assert!(page.body.contains(r#"id="reveal""#));
    // The order's amounts: total, shipping and COD fee, each its own (not in the line total),
    // in the currency's own form (issue 17: `¥18,790`, no minor unit for JPY).
    for amount in [
        "<dd>¥4,130</dd>",
        "<dd>¥500</dd>",
        "<dd>¥330</dd>",
        r#"<td class="num">¥1,650</td><td class="num">¥3,300</td>"#,
    ] {
        assert!(page.body.contains(amount), "{amount} not shown");
    }
    // Lines are there, escaped.
    assert!(page.body.contains("SKU-UNMAPPED-1"));
    assert!(page.body.contains("テスト商品 &lt;b&gt;太字&lt;/b&gt;"));
    let list = c.get("/instructions").await.body;
    assert!(!list.contains("山田"));

    assert_eq!(
        c.post(&format!("/instructions/{id}/reveal"), &[("csrf", "forged")])
            .await
            .status,
        403
    );
    let shown = c
        .post(&format!("/instructions/{id}/reveal"), &[("csrf", &csrf)])
        .await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("山田 太郎") && shown.body.contains("神宮前1-2-3"));

    let (message, details, order): (String, serde_json::Value, String) = sqlx::query_as(
        "SELECT message, details, amazon_order_id FROM api_log WHERE code = 'pii_revealed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(order, "503-1111111-1111111");
    assert!(message.contains("alice"));
    let all = format!("{message} {details}");
    for pii in ["山田", "神宮前", "buyer-x", "03-1234"] {
        assert!(!all.contains(pii), "PII {pii} in the API log");
    }
    // Masked again on the next plain view.
    assert!(
        !c.get(&format!("/instructions/{id}"))
            .await
            .body
            .contains("山田")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_page_renders_with_seeded_data_escaped(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let inst = instruction(&pool, acme, "503-2222222-2222222", "Hanako", Utc::now()).await;
    sqlx::query("UPDATE shipping_instructions SET api_status = 'failed', api_error = 'The tracking number <x> is invalid' WHERE id = $1")
        .bind(inst)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE shops SET auth_status = 'needs_reauthorization', auth_error = 'invalid_grant' WHERE id = $1")
        .bind(acme)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        r#"INSERT INTO action_runs (id, shop_id, action, mode, status, requested_by, counts, amazon_calls, started_at, finished_at)
           VALUES (gen_random_uuid(), $1, 'order-ingest', 'hours', 'succeeded', 'alice',
                   '{"new": 1, "calls": {"searchOrders": 2}, "continuations": 1, "duration_ms": 1500}', 2, now() - interval '1 day', now() - interval '1 day'),
                  (gen_random_uuid(), $1, 'status-sync', 'changes', 'failed', 'cron:sync',
                   '{"paid": 3, "canceled": 1, "calls": {"searchOrders": {"calls": 4, "throttled": 1, "limiter_wait_ms": 2500}}}', 4, now(), now())"#,
    )
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let feed = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO feed_submissions (id, shop_id, feed_type, marketplace_ids, state, amazon_feed_id, processing_status, created_at, finished_at)
         VALUES ($1, $2, 'POST_ORDER_FULFILLMENT_DATA', ARRAY['A1VC38T7YXB528'], 'done', '5001', 'DONE', now(), now()),
                (gen_random_uuid(), $2, 'JSON_LISTINGS_FEED', ARRAY['A1VC38T7YXB528'], 'submitted', '5002', 'IN_QUEUE', now() - interval '5 hours', NULL)",
    )
    .bind(feed)
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO feed_messages (feed_submission_id, message_id, instruction_id, amazon_order_id, result, result_code, result_message)
         VALUES ($1, 1, $2, '503-2222222-2222222', 'error', '18028', 'The data you provided for the tracking number is invalid. <Carrier>'),
                ($1, 2, NULL, '503-3', 'success', NULL, NULL)",
    )
    .bind(feed)
    .bind(inst)
    .execute(&pool)
    .await
    .unwrap();
    log(
        &pool,
        acme,
        "feed-poller",
        "error",
        Some("503-2222222-2222222"),
        "<script>alert(1)</script> 配送業者コードが無効です\n2行目",
    )
    .await;
    sqlx::query(
        "INSERT INTO api_log (shop_id, action, level, amazon_order_id, code, message)
         VALUES ($1, 'status-sync', 'attention', '503-2222222-2222222', 'amazon_cancelled_after_allocation', 'order 503-2222222-2222222: cancelled after allocation')",
    )
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    // Values an operator or Amazon may type with markup in them, on the new screens too.
    let mut conn = pool.acquire().await.unwrap();
    let p = store::catalog::insert_product(
        &mut conn,
        acme,
        "P<1>",
        "茶 \"<script>alert(1)</script>\" & 菓子",
    )
    .await
    .unwrap();
    store::inventory::map_sku(&mut conn, acme, "SKU-<b>&1", p.id, None)
        .await
        .unwrap();
    store::catalog::upsert_delivery_method(
        &mut conn,
        acme,
        "m<1>",
        "便 <script>alert(1)</script>",
        Some("x&y"),
    )
    .await
    .unwrap();
    let late = instruction(&pool, acme, "503-4444444-4444444", "Late", Utc::now()).await;
    sqlx::query("UPDATE shipping_instructions SET status = 'shipped', tracking_numbers = '{\"<script>alert(1)</script>\"}', shipped_on = (now() - interval '3 days')::date WHERE id = $1")
        .bind(late)
        .execute(&pool)
        .await
        .unwrap();

    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    for (path, needle) in [
        ("/external-products", "SKU-&lt;b&gt;&amp;1"),
        ("/external-products", "茶 &quot;&lt;script&gt;"),
        ("/delivery", "便 &lt;script&gt;alert(1)&lt;/script&gt;"),
        ("/delivery", "x&amp;y"),
        ("/attention", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("/", r#"<svg id="chart-orders""#),
        ("/?days=30", r#"<svg id="chart-feeds""#),
        ("/shops", "再認可が必要"),
        ("/shops/acme-jp", "invalid_grant"),
        ("/actions", "時間指定で取得"),
        ("/schedules", "55 23 * * *"),
        ("/runs", "cron:sync"),
        (
            "/runs?action=order-ingest&status=succeeded",
            "時間指定で取得",
        ),
        ("/instructions", "503-2222222-2222222"),
        (
            "/instructions?status=awaiting_shipment&payment=paid&api=failed&marketplace=JP",
            "503-2222222-2222222",
        ),
        (
            "/api-log",
            "&lt;script&gt;alert(1)&lt;/script&gt; 配送業者コードが無効です\n2行目",
        ),
        (
            "/api-log?level=error&order=503-2222222-2222222",
            "配送業者コードが無効です",
        ),
        ("/feeds", "POST_ORDER_FULFILLMENT_DATA"),
        ("/attention", "SKU-UNMAPPED-1"),
        ("/?lang=en", "Orders per day"),
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path} lacks {needle:?}");
        assert!(!r.body.contains("<script>alert"), "{path} is not escaped");
    }
    let f = c.get(&format!("/feeds/{feed}")).await;
    assert!(
        f.body
            .contains("The data you provided for the tracking number is invalid. &lt;Carrier&gt;")
    );
    let a = c.get("/attention?lang=ja").await.body;
    for id in [
        "reauth",
        "unmapped",
        "cancel-allocated",
        "failed-shipments",
        "stuck-feeds",
    ] {
        assert!(a.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(a.contains("The tracking number &lt;x&gt; is invalid"));
    // One stuck-feed threshold (domain::feed_stuck): the 5-hour-old feed is listed, under 3 hours.
    assert!(a.contains("送信から3時間以上"), "stuck-feed threshold");
    assert!(a.contains(r#"id="attention-stuck""#));
    // Run counts read as in `ctl runs` (store::read::runs::counts_summary).
    let runs = c.get("/runs").await.body;
    assert!(runs.contains("continuations 1 · new 1"), "{runs}");
    assert!(runs.contains("canceled 1 · paid 3"), "{runs}");
    let d = c.get("/").await.body;
    assert!(d.contains("searchOrders"), "calls per operation");
    assert_eq!(c.get("/no-such-page").await.status, 404);
}

/// Text that would run script, end an attribute or start an entity if it reached the page
/// unescaped: a `<script>`, double and single quotes and an ampersand, with `tag` saying which
/// field it was seeded into.
fn hostile(tag: &str) -> String {
    format!(r#"{tag} <script>alert(1)</script> "dq" 'sq' & amp"#)
}

/// [`hostile`] as the templates write it: `<`, `>`, `"` and `&` escaped (a single quote needs
/// nothing: every attribute value is double-quoted).
fn escaped(tag: &str) -> String {
    format!("{tag} &lt;script&gt;alert(1)&lt;/script&gt; &quot;dq&quot; 'sq' &amp; amp")
}

/// Issue 17 (templates): buyer name and address (revealed), SKUs, product names, delivery
/// method names, tracking numbers, Amazon's feed messages, API-log messages, shop and operator
/// names, run errors and the rest an operator, Amazon or a buyer typed are seeded with markup,
/// quotes and `&`; every page that shows them has the escaped text and never a raw `<script>`.
#[sqlx::test(migrations = "../../migrations")]
async fn hostile_text_is_escaped_on_every_page(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let exec = |sql: &'static str, binds: Vec<String>, id: uuid::Uuid| {
        let pool = pool.clone();
        async move {
            let mut q = sqlx::query(sql).bind(id);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&pool).await.unwrap();
        }
    };
    exec(
        "UPDATE shops SET name = $2, auth_status = 'needs_reauthorization', auth_error = $3 WHERE id = $1",
        vec![hostile("SHOP"), hostile("AUTH")],
        acme,
    )
    .await;
    sqlx::query("UPDATE console_users SET display_name = $1 WHERE username = 'alice'")
        .bind(hostile("OPERATOR"))
        .execute(&pool)
        .await
        .unwrap();
    exec(
        "UPDATE schedules SET updated_by = $2 WHERE shop_id = $1",
        vec![hostile("CHANGEDBY")],
        acme,
    )
    .await;

    // An instruction: buyer and address sealed as an import stores them, one unmapped line with a
    // hostile SKU, one mapped line (product name), a delivery method name, a tracking number and
    // Amazon's refusal.
    let order = "503-6666666-6666666";
    let inst = instruction(&pool, acme, order, &hostile("BUYER"), Utc::now()).await;
    let personal = store::pii::PersonalData {
        buyer_name: Some(hostile("BUYER")),
        buyer_email: Some("buyer-x@marketplace.amazon.co.jp".into()),
        ship_to_name: Some(hostile("SHIPTO")),
        ship_to_postal_code: Some("150-0001".into()),
        ship_to_state: Some("東京都".into()),
        ship_to_city: Some("渋谷区".into()),
        ship_to_address: Some(hostile("ADDRESS")),
        ship_to_phone: Some("03-1234-5678".into()),
        buyer_company: Some(hostile("COMPANY")),
        purchase_order_number: Some(hostile("PONUM")),
        delivery_preference: Some(hostile("PREF")),
        gift_messages: [("item-2".to_owned(), hostile("GIFTMSG"))].into(),
    };
    sqlx::query(
        "UPDATE shipping_instructions SET pii_enc = $2, delivery_method_name = $3, tracking_numbers = ARRAY[$4],
             api_status = 'failed', api_error = $5 WHERE id = $1",
    )
    .bind(inst)
    .bind(personal.seal(&crypto::Keyring::for_testing(), acme, inst))
    .bind(hostile("METHOD"))
    .bind(hostile("TRACK"))
    .bind(hostile("APIERR"))
    .execute(&pool)
    .await
    .unwrap();
    exec(
        "UPDATE instruction_lines SET sku = $2, title = $3 WHERE instruction_id = $1",
        vec![hostile("SKU"), hostile("TITLE")],
        inst,
    )
    .await;
    let mut conn = pool.acquire().await.unwrap();
    let product = store::catalog::insert_product(&mut conn, acme, "P-1", &hostile("PRODUCT"))
        .await
        .unwrap();
    store::inventory::map_sku(&mut conn, acme, &hostile("MAPPEDSKU"), product.id, None)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO instruction_lines (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, title,
             quantity, unit_price, line_total, product_id, is_gift, gift_wrap_level)
         VALUES ($1, $2, $3, 2, 'item-2', $4, 'plain', 1, 100, 100, $5, true, $6)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(inst)
    .bind(acme)
    .bind(hostile("MAPPEDSKU"))
    .bind(product.id)
    .bind(hostile("WRAP"))
    .execute(&pool)
    .await
    .unwrap();
    // A shipment that missed its day (要対応: late shipments).
    let late = instruction(&pool, acme, "503-7777777-7777777", "Late", Utc::now()).await;
    sqlx::query("UPDATE shipping_instructions SET status = 'shipped', tracking_numbers = ARRAY[$2], shipped_on = (now() - interval '3 days')::date WHERE id = $1")
        .bind(late)
        .bind(hostile("LATETRACK"))
        .execute(&pool)
        .await
        .unwrap();

    // Delivery methods, a carrier mapping and a rule.
    let method = store::catalog::upsert_delivery_method(
        &mut conn,
        acme,
        "hm",
        &hostile("METHOD"),
        Some(&hostile("EXTERNAL")),
    )
    .await
    .unwrap();
    store::catalog::add_rule(
        &mut conn,
        acme,
        10,
        &hostile("RULE"),
        &domain::delivery_rules::RuleConditions {
            skus: vec![hostile("RULESKU")],
            ..Default::default()
        },
        method.id,
    )
    .await
    .unwrap();
    drop(conn);

    // Runs (an error, who asked, an operation name from Amazon's counters), a feed with Amazon's
    // per-message result and an error, API-log entries (one needing attention).
    let counts = serde_json::json!({ "new": 1, "calls": { hostile("OPERATION"): 2 } });
    sqlx::query(
        "INSERT INTO action_runs (id, shop_id, action, mode, status, requested_by, counts, amazon_calls, error, started_at, finished_at)
         VALUES (gen_random_uuid(), $1, 'order-ingest', 'hours', 'failed', $2, $3, 2, $4, now(), now())",
    )
    .bind(acme)
    .bind(hostile("RUNBY"))
    .bind(counts)
    .bind(hostile("RUNERR"))
    .execute(&pool)
    .await
    .unwrap();
    let feed = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO feed_submissions (id, shop_id, feed_type, marketplace_ids, state, amazon_feed_id, processing_status, error, created_at, finished_at)
         VALUES ($1, $2, 'POST_ORDER_FULFILLMENT_DATA', ARRAY['A1VC38T7YXB528'], 'fatal', '5001', 'FATAL', $3, now(), now())",
    )
    .bind(feed)
    .bind(acme)
    .bind(hostile("FEEDERR"))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO feed_messages (feed_submission_id, message_id, instruction_id, amazon_order_id, sku, result, result_code, result_message)
         VALUES ($1, 1, $2, $3, $4, 'error', '18028', $5)",
    )
    .bind(feed)
    .bind(inst)
    .bind(order)
    .bind(hostile("FEEDSKU"))
    .bind(hostile("FEEDMSG"))
    .execute(&pool)
    .await
    .unwrap();
    log(
        &pool,
        acme,
        "feed-poller",
        "error",
        Some(order),
        &hostile("LOGMSG"),
    )
    .await;
    log(
        &pool,
        acme,
        "status-sync",
        "attention",
        Some(order),
        &hostile("ATTENTION"),
    )
    .await;
    sqlx::query("UPDATE api_log SET sku = $1")
        .bind(hostile("LOGSKU"))
        .execute(&pool)
        .await
        .unwrap();

    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let detail = format!("/instructions/{inst}");
    let feed_page = format!("/feeds/{feed}");
    let pages: &[(&str, &[&str])] = &[
        ("/", &["SHOP", "OPERATOR", "OPERATION"]),
        ("/?lang=en", &["SHOP", "OPERATOR", "OPERATION"]),
        ("/shops", &["SHOP", "AUTH"]),
        ("/shops/acme-jp", &["SHOP", "AUTH", "RUNERR", "RUNBY"]),
        ("/actions", &["SHOP", "OPERATOR"]),
        ("/schedules", &["SHOP", "CHANGEDBY"]),
        ("/runs", &["SHOP", "RUNERR", "RUNBY"]),
        ("/instructions", &["SHOP", "METHOD", "TRACK", "APIERR"]),
        (
            &detail,
            &[
                "METHOD",
                "TRACK",
                "APIERR",
                "SKU",
                "TITLE",
                "MAPPEDSKU",
                "PRODUCT",
                "LOGMSG",
                "LOGSKU",
            ],
        ),
        ("/api-log", &["SHOP", "LOGMSG", "ATTENTION", "LOGSKU"]),
        ("/feeds", &["SHOP", "FEEDERR"]),
        (&feed_page, &["FEEDERR", "FEEDSKU", "FEEDMSG"]),
        (
            "/attention",
            &[
                "SHOP",
                "AUTH",
                "SKU",
                "TRACK",
                "APIERR",
                "LATETRACK",
                "ATTENTION",
            ],
        ),
        ("/external-products", &["SHOP", "MAPPEDSKU", "PRODUCT"]),
        ("/delivery", &["SHOP", "METHOD", "EXTERNAL", "RULE"]),
    ];
    for (path, tags) in pages {
        let r = c.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        for tag in *tags {
            assert!(
                r.body.contains(&escaped(tag)),
                "{path} lacks the escaped {tag}: {}",
                r.body
            );
        }
        assert!(!r.body.contains("<script>alert"), "{path} is not escaped");
        assert!(!r.body.contains(r#""dq""#), "{path}: a raw quote");
        assert!(!r.body.contains("& amp"), "{path}: a raw ampersand");
    }
    // Masked until revealed; the reveal shows buyer and address escaped.
    let masked = c.get(&detail).await.body;
    assert!(!masked.contains("BUYER") && !masked.contains("ADDRESS"));
    assert!(
        !masked.contains("COMPANY") && !masked.contains("GIFTMSG") && !masked.contains("PONUM")
    );
    assert!(
        masked.contains(&escaped("WRAP")),
        "the gift wrap level is not personal"
    );
    let shown = c
        .post(&format!("{detail}/reveal"), &[("csrf", &csrf)])
        .await;
    assert_eq!(shown.status, 200);
    for tag in [
        "BUYER", "SHIPTO", "ADDRESS", "PRODUCT", "TRACK", "LOGMSG", "COMPANY", "PONUM", "PREF",
        "GIFTMSG", "WRAP",
    ] {
        assert!(shown.body.contains(&escaped(tag)), "reveal lacks {tag}");
    }
    assert!(
        !shown.body.contains("<script>alert"),
        "the reveal is not escaped"
    );
    // Refusals echo what was typed, escaped too.
    let refused = c
        .post(
            "/external-products/map",
            &[
                ("csrf", &csrf),
                ("shop", "acme-jp"),
                ("sku", "S-1"),
                ("product", &hostile("TYPED")),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    // (quoted as Rust's {:?} does, then escaped)
    assert!(
        refused.body.contains(
            "TYPED &lt;script&gt;alert(1)&lt;/script&gt; \\&quot;dq\\&quot; 'sq' &amp; amp"
        ),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("<script>alert"));
    // A value in the query string comes back in a form field, escaped.
    let filtered = c
        .get("/api-log?sku=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await
        .body;
    assert!(filtered.contains(r#"value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#));
    assert!(!filtered.contains("<script>alert"));
}

/// Issue 19: a shop's page shows its notification subscriptions, the last notification received
/// and the last 24 hours by outcome; an unsubscribed shop says how to subscribe. Another shop's
/// notifications do not show.
#[sqlx::test(migrations = "../../migrations")]
async fn shop_page_shows_its_notification_subscriptions(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    let other = shop(&pool, "other-au", "AU", "Australia/Sydney").await;
    user(&pool, "alice", &["acme-jp", "other-au"]).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;

    let r = c.get("/shops/acme-jp").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("未登録"), "{}", r.body);
    assert!(
        r.body
            .contains("ctl notifications subscribe acme-jp --sqs-arn ARN")
    );

    let mut conn = pool.acquire().await.unwrap();
    for (kind, sub) in [
        ("ORDER_CHANGE", "sub-oc-1"),
        ("FEED_PROCESSING_FINISHED", "sub-fpf-1"),
    ] {
        store::notifications::save_subscription(&mut conn, acme, kind, sub, "dest-1", None)
            .await
            .unwrap();
    }
    for (id, shop_id, subject, outcome) in [
        (
            "n-1",
            acme,
            "503-1111111-1111111",
            store::notifications::Outcome::Queued,
        ),
        (
            "n-2",
            acme,
            "503-2222222-2222222",
            store::notifications::Outcome::Queued,
        ),
        (
            "n-3",
            other,
            "249-3333333-3333333",
            store::notifications::Outcome::Ignored,
        ),
    ] {
        store::notifications::record(
            &mut conn,
            &store::notifications::Received {
                notification_id: id,
                notification_type: "ORDER_CHANGE",
                shop_id: Some(shop_id),
                subject: Some(subject),
                outcome,
                reason: None,
                event_time: Some(Utc::now()),
            },
        )
        .await
        .unwrap();
    }
    let r = c.get("/shops/acme-jp").await;
    assert_eq!(r.status, 200);
    for needle in [
        "sub-oc-1",
        "sub-fpf-1",
        "dest-1",
        "FEED_PROCESSING_FINISHED",
        "queued 2",
    ] {
        assert!(r.body.contains(needle), "{needle} missing");
    }
    assert!(!r.body.contains("未登録"));
    assert!(r.body.contains("ctl notifications unsubscribe acme-jp"));
    // The last one received is acme's own, not the other shop's.
    assert!(
        r.body.contains("503-1111111-1111111") || r.body.contains("503-2222222-2222222"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("249-3333333-3333333"));
    let r = c.get("/shops/other-au?lang=en").await;
    assert!(r.body.contains("ignored 1"), "{}", r.body);
    assert!(r.body.contains("Not subscribed"));
}

/// Issue 21 item 1: 要対応 lists the buyers' undecided cancellation requests with 承諾/拒否;
/// accepting cancels the instruction and queues Amazon's acknowledgement, declining releases the
/// hold, both recorded with the operator; CSRF is required, another shop's operator gets 404, and
/// a request decided already is said so without a change.
#[sqlx::test(migrations = "../../migrations")]
async fn cancel_requests_are_decided_on_the_attention_page(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    shop(&pool, "other-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    user(&pool, "bob", &["other-jp"]).await;
    let (accept_order, decline_order) = ("503-3333333-0000001", "503-3333333-0000002");
    let mut ids = Vec::new();
    for order in [accept_order, decline_order] {
        let id = instruction(&pool, acme, order, "山田 太郎", Utc::now()).await;
        sqlx::query(
            "UPDATE shipping_instructions SET status = 'hold', hold_reason = 'buyer_cancel_request',
                 cancel_requested_at = now(), cancel_request_reason = 'Order Created By Mistake' WHERE id = $1",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let srv = start(pool.clone(), "").await;

    let mut bob = Client::new(&srv.base);
    bob.sign_in("bob").await;
    let bob_csrf = bob.csrf().await;
    assert!(!bob.get("/attention").await.body.contains(accept_order));
    let path = |id: &uuid::Uuid, d: &str| format!("/cancel-requests/{id}/{d}");
    assert_eq!(
        bob.post(&path(&ids[0], "accept"), &[("csrf", &bob_csrf)])
            .await
            .status,
        404
    );

    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let page = c.get("/attention").await.body;
    assert!(page.contains(r#"id="attention-cancel-requests""#), "{page}");
    assert!(page.contains(accept_order) && page.contains("Order Created By Mistake"));
    assert!(page.contains(&format!(r#"action="/cancel-requests/{}/accept""#, ids[0])));
    assert_eq!(
        c.post(&path(&ids[0], "accept"), &[("csrf", "forged")])
            .await
            .status,
        403
    );
    let accepted = c.post(&path(&ids[0], "accept"), &[("csrf", &csrf)]).await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let to = accepted.location.unwrap();
    assert!(to.contains("decision=accepted"), "{to}");
    assert!(
        c.get(&to)
            .await
            .body
            .contains(r#"id="cancel-request-flash""#)
    );
    let declined = c.post(&path(&ids[1], "decline"), &[("csrf", &csrf)]).await;
    assert!(declined.location.unwrap().contains("decision=declined"));
    let state = async |id: uuid::Uuid| -> (String, Option<String>, Option<String>) {
        sqlx::query_as(
            "SELECT status, cancel_request_decided_by, cancel_ack FROM shipping_instructions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(
        state(ids[0]).await,
        (
            "canceled".into(),
            Some("alice".into()),
            Some("pending".into())
        )
    );
    assert_eq!(
        state(ids[1]).await,
        ("awaiting_shipment".into(), Some("alice".into()), None)
    );
    // Decided: no longer listed; deciding again changes nothing and says so.
    assert!(
        !c.get("/attention")
            .await
            .body
            .contains(r#"id="attention-cancel-requests""#)
    );
    let again = c.post(&path(&ids[1], "accept"), &[("csrf", &csrf)]).await;
    assert!(again.location.unwrap().contains("decision=stale"));
    assert_eq!(state(ids[1]).await.0, "awaiting_shipment");
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_log WHERE code IN ('cancel_request_accepted', 'cancel_request_declined') AND details->>'operator' = 'alice'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 2);
}

/// Issue 21 item 2: the packages the warehouse recorded are on the instruction's page, each
/// with its tracking number, carrier and contents (SKU × quantity); none recorded, no section.
#[sqlx::test(migrations = "../../migrations")]
async fn an_instructions_packages_are_shown_with_their_contents(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let order = "503-1111111-2222222";
    let id = instruction(&pool, acme, order, "山田 太郎", Utc::now()).await;
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let page = c.get(&format!("/instructions/{id}")).await.body;
    assert!(!page.contains(r#"id="packages""#));

    let item = format!("{order}-1");
    let package = |n: u16, tracking: &str, carrier: Option<&str>| domain::packages::Package {
        number: n,
        tracking_number: tracking.into(),
        external_delivery_method: carrier.map(str::to_owned),
        items: vec![domain::packages::PackageItem {
            order_item_id: item.clone(),
            quantity: 1,
        }],
    };
    let mut conn = pool.acquire().await.unwrap();
    let packages = [
        package(1, "400012345678", None),
        package(2, "123456789012", Some("sagawa")),
    ];
    store::packages::record(&mut conn, id, &packages)
        .await
        .unwrap();
    let page = c.get(&format!("/instructions/{id}")).await.body;
    let at = page.find(r#"id="packages""#).expect("a packages table");
    let table = &page[at..at + page[at..].find("</table>").unwrap()];
    for expected in [
        "400012345678",
        "123456789012",
        "sagawa",
        "SKU-UNMAPPED-1 × 1",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
}

/// Issue 21 item 2, partial shipments: an allocated instruction with packages is shown
/// partially shipped (一部出荷済み / Partially shipped), and for a shop that sends every package
/// each package says whether Amazon confirmed it.
#[sqlx::test(migrations = "../../migrations")]
async fn a_partially_shipped_instruction_shows_each_packages_state_at_amazon(pool: PgPool) {
    let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    let order = "503-1111111-2222223";
    let id = instruction(&pool, acme, order, "山田 太郎", Utc::now()).await;
    sqlx::query("UPDATE shipping_instructions SET status = 'allocated', api_status = 'partially_shipped' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let item = format!("{order}-1");
    let package = |n: u16, tracking: &str| domain::packages::Package {
        number: n,
        tracking_number: tracking.into(),
        external_delivery_method: None,
        items: vec![domain::packages::PackageItem {
            order_item_id: item.clone(),
            quantity: 1,
        }],
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    store::packages::set_send_every_package(&mut conn, acme, true)
        .await
        .unwrap();
    store::packages::add(
        &mut conn,
        id,
        &[package(1, "400012345678"), package(2, "400012345679")],
        day,
    )
    .await
    .unwrap();
    store::packages::set_confirmed(&mut conn, id, 1, Ok(()))
        .await
        .unwrap();
    drop(conn);
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let rows = |page: &str| -> Vec<String> {
        let at = page.find(r#"id="packages""#).expect("a packages table");
        let table = &page[at..at + page[at..].find("</table>").unwrap()];
        table
            .split("<tr>")
            .filter(|r| r.contains("4000123456"))
            .map(str::to_owned)
            .collect()
    };
    let ja = c.get(&format!("/instructions/{id}?lang=ja")).await.body;
    assert!(ja.contains(r#"id="partially-shipped""#), "{ja}");
    assert!(ja.contains("一部出荷済み（残りは未出荷）"));
    let r = rows(&ja);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        r[0].contains("400012345678") && r[0].contains("出荷済み"),
        "{}",
        r[0]
    );
    assert!(
        r[1].contains("400012345679") && r[1].contains("印刷待ち"),
        "{}",
        r[1]
    );
    assert!(r[0].contains("2026-12-03"), "{}", r[0]);
    let en = c.get(&format!("/instructions/{id}?lang=en")).await.body;
    assert!(en.contains("Partially shipped (the rest has not left)"));
    assert!(
        en.contains("Partially shipped (confirmed)"),
        "the API status"
    );
    let r = rows(&en);
    assert!(r[0].contains("Shipped (confirmed)"), "{}", r[0]);
    assert!(r[1].contains("Awaiting print"), "{}", r[1]);
}
