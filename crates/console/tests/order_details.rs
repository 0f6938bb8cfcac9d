//! Issue 21 item 4, against the simulator and PostgreSQL: a scheduled-delivery, gift, Prime
//! business order imported (`getOrder`, the single-order import) with every detail on the
//! instruction, its lines and the console's task list and detail; the personal ones (company,
//! purchase order number, delivery preference, gift message) sealed and masked until revealed;
//! a delivery rule on Prime choosing its method, one on the time slot another's; and the
//! ship-by warning written once, before the time is missed.

mod common;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::*;
use domain::delivery_rules::RuleConditions;
use spapi::{ClientConfig, Credentials, Endpoints, ShopConfig, SpApi};
use spapi_sim::model::{BusinessBuyer, DeliveryWindow};
use spapi_sim::{ItemSpec, OrderSpec, OrderStatus, SimConfig};
use sqlx::PgPool;
use uuid::Uuid;

const SELLER: &str = "A1SELLER";
const CLIENT_ID: &str = "amzn1.application-oa2-client.details";
const SECRET: &str = "secret-details-1";
const REFRESH: &str = "Atzr|details-refresh-1";

async fn sim_shop(pool: &PgPool, code: &str, base: &str) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let new = store::shops::NewShop {
        code: code.parse().unwrap(),
        name: format!("Shop {code}"),
        seller_id: SELLER.into(),
        marketplaces: vec!["JP".parse().unwrap()],
        time_zone: "Asia/Tokyo".parse().unwrap(),
        sp_api_endpoint: base.to_owned(),
        lwa_endpoint: format!("{base}/auth/o2/token"),
        shipment_strategy: domain::shop::ShipmentStrategy::Feed,
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.to_owned().into(),
        refresh_token: REFRESH.to_owned().into(),
    };
    store::shops::insert(&mut conn, &crypto::Keyring::for_testing(), &new)
        .await
        .unwrap()
        .shop
        .id
}

fn tokyo(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_scheduled_gift_prime_business_order_shows_every_detail(pool: PgPool) {
    let running = spapi_sim::spawn(SimConfig::default()).await.unwrap();
    let base = running.base_url();
    let sim = running.sim();
    let shop_id = sim_shop(&pool, "acme-jp", &base).await;
    user(&pool, "alice", &["acme-jp"]).await;
    let keys = crypto::Keyring::for_testing();
    let amazon = SpApi::new(pool.clone(), ClientConfig::default())
        .unwrap()
        .shop(
            ShopConfig::new(SELLER, Credentials::new(CLIENT_ID, SECRET, REFRESH))
                .with_endpoints(Endpoints::simulator(&base).unwrap()),
        );

    // Rules: Prime → ヤマト宅急便, a time slot → 佐川 (時間帯指定), else ゆうパケット.
    let mut conn = pool.acquire().await.unwrap();
    let mut method = async |code: &str, name: &str| {
        store::catalog::upsert_delivery_method(&mut conn, shop_id, code, name, None)
            .await
            .unwrap()
    };
    let yamato = method("yamato", "ヤマト宅急便").await;
    let sagawa = method("sagawa-slot", "佐川 時間帯指定").await;
    let packet = method("yu-packet", "ゆうパケット").await;
    let mut conn = pool.acquire().await.unwrap();
    for (position, name, conditions, m) in [
        (
            10,
            "Prime",
            RuleConditions {
                prime: Some(true),
                ..Default::default()
            },
            &yamato,
        ),
        (
            20,
            "time slot",
            RuleConditions {
                time_slot: Some(true),
                ..Default::default()
            },
            &sagawa,
        ),
        (30, "default", RuleConditions::default(), &packet),
    ] {
        store::catalog::add_rule(&mut conn, shop_id, position, name, &conditions, m.id)
            .await
            .unwrap();
    }

    // The order: Prime, premium, business (company, PO), scheduled delivery, a gift item
    // with wrap and message, a delivery preference; ship-by in three hours.
    let now = Utc::now().trunc_subsecs(0);
    let slot = DeliveryWindow {
        start: now + Duration::days(2),
        end: now + Duration::days(2) + Duration::hours(3),
    };
    let ship_by = now + Duration::hours(3);
    let order = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            prime: Some(true),
            premium: Some(true),
            business: Some(BusinessBuyer {
                company_name: Some("株式会社サンプル商事".into()),
                purchase_order_number: Some("PO-2026-0042".into()),
            }),
            scheduled_delivery: Some(slot),
            delivery_preference: Some(serde_json::json!({
                "dropOffLocation": "RECEPTION",
                "addressInstruction": "受付に預けてください",
                "deliveryTime": {"businessHours": [{"dayOfWeek": "MON", "timeWindows": [
                    {"startTime": {"hour": 9, "minute": 0}, "endTime": {"hour": 17, "minute": 0}}]}]}
            })),
            latest_ship_date: Some(ship_by),
            items: vec![
                ItemSpec {
                    seller_sku: Some("SKU-GIFT-1".into()),
                    quantity: Some(1),
                    gift_message: Some("開店おめでとうございます".into()),
                    gift_wrap_level: Some("PREMIUM".into()),
                    ..Default::default()
                },
                ItemSpec {
                    seller_sku: Some("SKU-PLAIN-2".into()),
                    quantity: Some(2),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .unwrap();
    // A non-Prime order with a time slot, and a plain one.
    let slotted = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            prime: Some(false),
            scheduled_delivery: Some(slot),
            latest_ship_date: Some(now + Duration::days(5)),
            ..Default::default()
        })
        .unwrap();
    let plain = sim
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            prime: Some(false),
            service_level: Some("STANDARD".into()),
            latest_ship_date: Some(now + Duration::hours(30)),
            ..Default::default()
        })
        .unwrap();
    for o in [&order, &slotted, &plain] {
        let done = orders::import_order(
            &pool,
            &keys,
            &amazon,
            "events",
            shop_id,
            &o.order_id,
            "test",
        )
        .await
        .unwrap();
        assert_eq!(done.result, "new", "{}", done.message);
    }

    // The instruction and its lines carry every detail; the delivery methods follow the rules.
    let mut conn = pool.acquire().await.unwrap();
    let by = async |conn: &mut sqlx::PgConnection, id: &str| {
        store::instructions::by_order(conn, shop_id, id)
            .await
            .unwrap()
            .unwrap()
    };
    let inst = by(&mut conn, &order.order_id).await;
    assert!(inst.is_prime && inst.is_premium && inst.is_business && inst.is_gift);
    assert_eq!(inst.latest_ship_at, Some(ship_by));
    assert_eq!(inst.scheduled_delivery_from, Some(slot.start));
    assert_eq!(inst.scheduled_delivery_to, Some(slot.end));
    assert_eq!(inst.ship_service_level.as_deref(), Some("SCHEDULED"));
    assert_eq!(inst.delivery_method_id, Some(yamato.id), "Prime rule first");
    let lines = store::instructions::lines(&mut conn, inst.id)
        .await
        .unwrap();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].is_gift && !lines[1].is_gift);
    assert_eq!(lines[0].gift_wrap_level.as_deref(), Some("PREMIUM"));
    let slotted_inst = by(&mut conn, &slotted.order_id).await;
    assert!(!slotted_inst.is_prime && !slotted_inst.is_business && !slotted_inst.is_gift);
    assert_eq!(slotted_inst.delivery_method_id, Some(sagawa.id));
    let plain_inst = by(&mut conn, &plain.order_id).await;
    assert_eq!(plain_inst.delivery_method_id, Some(packet.id));
    assert_eq!(plain_inst.scheduled_delivery_from, None);

    // The personal details are sealed with the buyer's: not in any clear column.
    let p = store::pii::read(&mut conn, &keys, inst.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.buyer_company.as_deref(), Some("株式会社サンプル商事"));
    assert_eq!(p.purchase_order_number.as_deref(), Some("PO-2026-0042"));
    assert_eq!(
        p.gift_messages
            .get(&lines[0].amazon_order_item_id.clone().unwrap())
            .map(String::as_str),
        Some("開店おめでとうございます")
    );
    let preference = p.delivery_preference.clone().unwrap();
    assert!(
        preference.contains("RECEPTION") && preference.contains("MON 09:00-17:00"),
        "{preference}"
    );
    let clear: String = sqlx::query_scalar(
        "SELECT concat_ws(' ', (SELECT row_to_json(si)::text FROM shipping_instructions si WHERE id = $1),
                (SELECT string_agg(row_to_json(l)::text, ' ') FROM instruction_lines l WHERE instruction_id = $1),
                (SELECT string_agg(message || coalesce(details::text, ''), ' ') FROM api_log))",
    )
    .bind(inst.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    for secret in [
        "サンプル商事",
        "PO-2026-0042",
        "開店おめでとう",
        "受付に預け",
    ] {
        assert!(
            !clear.contains(secret),
            "{secret} stored or logged in clear"
        );
    }

    // The console: badges in the list, every detail on the page, personal ones masked.
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let list = c.get("/instructions").await.body;
    let row = list
        .split("<tr>")
        .find(|r| r.contains(&order.order_id))
        .expect("the order is listed");
    for flag in ["prime", "premium", "business", "gift", "scheduled"] {
        assert!(
            row.contains(&format!(r#"data-flag="{flag}""#)),
            "{flag} badge missing: {row}"
        );
    }
    assert!(row.contains("出荷期限間近"), "ship-by soon badge: {row}");
    assert!(row.contains("ヤマト宅急便"));
    let plain_row = list
        .split("<tr>")
        .find(|r| r.contains(&plain.order_id))
        .unwrap();
    assert!(!plain_row.contains("data-flag") && !plain_row.contains("出荷期限"));

    // 要対応 lists the order due within hours (not the others) and counts it.
    let attention = c.get("/attention").await.body;
    let section = attention
        .split(r#"id="attention-ship-by""#)
        .nth(1)
        .expect("the ship-by section has a table")
        .split("</table>")
        .next()
        .unwrap();
    assert!(section.contains(&order.order_id), "{section}");
    assert!(section.contains(&tokyo(ship_by)), "{section}");
    assert!(!section.contains(&plain.order_id) && !section.contains(&slotted.order_id));

    let page = c.get(&format!("/instructions/{}", inst.id)).await.body;
    for needle in [
        "ヤマト宅急便".to_owned(),
        "SCHEDULED".to_owned(),
        format!(
            r#"<span id="ship-by">{} – {}</span>"#,
            tokyo(order.earliest_ship_date),
            tokyo(ship_by)
        ),
        format!(
            r#"<span id="deliver-by">{} – {}</span>"#,
            tokyo(order.earliest_delivery_date),
            tokyo(order.latest_delivery_date)
        ),
        format!(
            r#"<span id="time-slot">{} – {}</span>"#,
            tokyo(slot.start),
            tokyo(slot.end)
        ),
        "包装".to_owned(),
        "PREMIUM".to_owned(),
        "会社名".to_owned(),
        "発注番号".to_owned(),
        "配達の希望".to_owned(),
    ] {
        assert!(page.contains(&needle), "{needle} missing");
    }
    for flag in ["prime", "premium", "business", "gift", "scheduled"] {
        assert!(page.contains(&format!(r#"data-flag="{flag}""#)), "{flag}");
    }
    for secret in [
        "サンプル商事",
        "PO-2026-0042",
        "開店おめでとう",
        "受付に預け",
    ] {
        assert!(!page.contains(secret), "{secret} shown before reveal");
    }
    let csrf = c.csrf().await;
    let shown = c
        .post(
            &format!("/instructions/{}/reveal", inst.id),
            &[("csrf", &csrf)],
        )
        .await
        .body;
    for secret in [
        "株式会社サンプル商事",
        "PO-2026-0042",
        "開店おめでとうございます",
        "受付に預けてください",
    ] {
        assert!(shown.contains(secret), "{secret} not shown after reveal");
    }

    // The rule trial on 配送方法 says what the rules saw, and which rule wins.
    let trial = c
        .get(&format!("/delivery?shop=acme-jp&try={}", slotted.order_id))
        .await
        .body;
    assert!(
        trial.contains("Prime いいえ") && trial.contains("日時指定 あり"),
        "{trial}"
    );
    assert!(trial.contains("→ sagawa-slot"), "{trial}");
    // A time-slot rule added from the console form is stored with its condition.
    let added = c
        .post(
            "/delivery/rules",
            &[
                ("csrf", &csrf),
                ("shop", "acme-jp"),
                ("position", "40"),
                ("name", "no slot"),
                ("method", "yu-packet"),
                ("prime", "false"),
                ("time_slot", "false"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT conditions FROM delivery_rules WHERE position = 40")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"prime": false, "time_slot": false})
    );

    // Ship-by warning: once, for the order due within the window only, before it is missed.
    let mut conn = pool.acquire().await.unwrap();
    let tz = chrono_tz::Asia::Tokyo;
    let n = orders::ship_by::notice(&mut conn, shop_id, tz, None, "status-sync", Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let again = orders::ship_by::notice(&mut conn, shop_id, tz, None, "status-sync", Utc::now())
        .await
        .unwrap();
    assert_eq!(again, 0, "written once");
    let entries: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT amazon_order_id, level, message FROM api_log WHERE code = 'ship_by_approaching'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), 1);
    let (id, level, message) = &entries[0];
    assert_eq!(id, &order.order_id);
    assert_eq!(level, "attention");
    assert!(message.contains(&tokyo(ship_by)), "{message}");
    // A day later the plain order is due too (the first is not warned again, the slotted one,
    // due in five days, not yet).
    let later = Utc::now() + Duration::hours(25);
    let n = orders::ship_by::notice(&mut conn, shop_id, tz, None, "status-sync", later)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let last: String = sqlx::query_scalar(
        "SELECT amazon_order_id FROM api_log WHERE code = 'ship_by_approaching' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(last, plain.order_id);

    // Purged with the buyer's data 30 days after shipment; the clear details stay.
    sqlx::query(
        "UPDATE shipping_instructions SET status = 'shipped', shipped_at = now() - interval '31 days' WHERE id = $1",
    )
    .bind(inst.id)
    .execute(&pool)
    .await
    .unwrap();
    let purged = store::pii::purge(&mut conn, Duration::days(30), Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(
        store::pii::read(&mut conn, &keys, inst.id)
            .await
            .unwrap()
            .is_none()
    );
    let kept = by(&mut conn, &order.order_id).await;
    assert!(kept.is_business && kept.is_gift && kept.latest_ship_at.is_some());
    let csrf = c.csrf().await;
    let after = c
        .post(
            &format!("/instructions/{}/reveal", inst.id),
            &[("csrf", &csrf)],
        )
        .await
        .body;
    assert!(after.contains(r#"id="pii-purged""#));
    for secret in [
        "サンプル商事",
        "PO-2026-0042",
        "開店おめでとう",
        "受付に預け",
    ] {
        assert!(
            !after.contains(secret),
            "{secret} still shown after the purge"
        );
    }
    running.shutdown().await;
}
