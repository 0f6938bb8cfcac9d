//! Issue 17: the seed's shipment rules exactly (late shipments, today per marketplace, the shipping method).

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{fast_feedback, fixture, tracking12};
use domain::shop::ShipmentStrategy;
use sqlx::PgPool;

/// 「出荷日がアクション実行日当日」: the automatic run keeps sending only the day's shipments, but
/// one shipped on an earlier day and still 印刷待ち is not lost without a word: one attention
/// entry (要対応) per instruction, with what to do; an operator's resend (recorded with their
/// name) makes the next run send it.
#[sqlx::test(migrations = "../../migrations")]
async fn a_shipment_that_missed_its_day_is_flagged_once_and_sent_after_a_resend(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let yesterday = fx.today().pred_opt().unwrap();
    let late_order = fx.sim_order_created(chrono::Duration::days(2));
    let late = fx
        .shipped_instruction(&late_order, yamato, &[&tracking12(1)], yesterday)
        .await;
    let today_order = fx.sim_order();
    fx.shipped_instruction(&today_order, yamato, &[&tracking12(2)], fx.today())
        .await;
    let service = fx.service(fast_feedback());

    let first = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((first.sent, first.late), (1, 1), "{first:?}");
    assert_eq!(fx.api_status(late).await.0, "awaiting_print");
    let entries = format!(
        "SELECT count(*) FROM api_log WHERE code = 'late_shipment' AND level = 'attention' \
         AND amazon_order_id = '{}' AND message LIKE '%resend it%'",
        late_order.order_id
    );
    assert_eq!(fx.count(&entries).await, 1);

    // Told once: the next run says nothing more about it.
    let second = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((second.sent, second.late), (0, 0), "{second:?}");
    assert_eq!(fx.count(&entries).await, 1);

    // An operator resends it: recorded with the name, sent by the next run.
    let mut conn = fx.pool.acquire().await.unwrap();
    let asked = store::resend::ask(&mut conn, fx.shop.id, &late_order.order_id, "alice")
        .await
        .unwrap();
    assert_eq!(asked, store::resend::Resend::Requested);
    let by: Option<String> =
        sqlx::query_scalar("SELECT resend_requested_by FROM shipping_instructions WHERE id = $1")
            .bind(late)
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(by.as_deref(), Some("alice"));
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'resend_requested' AND details->>'operator' = 'alice'")
            .await,
        1
    );
    let third = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(third.sent, 1, "{third:?}");
    assert_eq!(fx.api_status(late).await.0, "printed");
}

/// A shop selling in Japan and Australia: at 23:30 in Tokyo it is already tomorrow in Sydney, so
/// an Australian order shipped on Sydney's date is today's, and a Japanese one shipped on that
/// date is not (yet); an Australian order shipped on Tokyo's date is late.
#[sqlx::test(migrations = "../../migrations")]
async fn today_is_the_marketplaces_own(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let now = chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(2026, 12, 2, 23, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    let (dec2, dec3) = (day(2), day(3));
    let mut ids = Vec::new();
    for (n, (marketplace, shipped_on)) in [
        ("A39IBJ37TRP1C6", dec3), // AU, Sydney's today
        ("A1VC38T7YXB528", dec3), // JP, tomorrow in Tokyo: not yet
        ("A1VC38T7YXB528", dec2), // JP, Tokyo's today
        ("A39IBJ37TRP1C6", dec2), // AU, yesterday in Sydney: late
    ]
    .into_iter()
    .enumerate()
    {
        let order = fx.sim_order();
        let id = fx
            .shipped_instruction(&order, yamato, &[&tracking12(n)], shipped_on)
            .await;
        sqlx::query("UPDATE shipping_instructions SET marketplace_id = $2 WHERE id = $1")
            .bind(id)
            .bind(marketplace)
            .execute(&fx.pool)
            .await
            .unwrap();
        ids.push(id);
    }
    let mut conn = fx.pool.acquire().await.unwrap();
    let tz = fx.shop.time_zone;
    let targets = store::shipments::targets(&mut conn, fx.shop.id, tz, now)
        .await
        .unwrap();
    let mut got: Vec<_> = targets.iter().map(|t| t.id).collect();
    got.sort();
    assert_eq!(got, vec![ids[0], ids[2]]);
    let late = store::shipments::late(&mut conn, &[fx.shop.id], |_| tz, now)
        .await
        .unwrap();
    assert_eq!(late.iter().map(|l| l.id).collect::<Vec<_>>(), vec![ids[3]]);
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
}

/// 「コマースロボの「配送方法名」がAmazonの配送方法に連携されます」 and 「コマースロボの「外部連携先配送方法」で
/// 選択した配送方法がAmazonの配送業者に連携されます」: the feed carries our delivery-method name as
/// Amazon's shipping method and the carrier mapped from the external delivery method.
#[sqlx::test(migrations = "../../migrations")]
async fn the_delivery_method_name_is_amazons_shipping_method(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx
        .delivery_method("yamato-cool", "クール宅急便", Some("yamato"))
        .await;
    let order = fx.sim_order();
    fx.shipped_instruction(
        &order,
        yamato,
        &[&tracking12(7), &tracking12(8)],
        fx.today(),
    )
    .await;
    let report = fx
        .service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let feed = fx.sim.sim().feeds().pop().expect("a feed");
    let xml = feed.input.expect("the feed document");
    for expected in [
        "<ShippingMethod>クール宅急便</ShippingMethod>".to_owned(),
        "<CarrierCode>YamatoTransport</CarrierCode>".to_owned(),
        format!(
            "<ShipperTrackingNumber>{}</ShipperTrackingNumber>",
            tracking12(7)
        ),
    ] {
        assert!(xml.contains(&expected), "{expected} not in {xml}");
    }
    assert!(
        !xml.contains(&tracking12(8)),
        "only the first tracking number"
    );
}
