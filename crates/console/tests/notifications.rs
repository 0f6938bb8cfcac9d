//! Subscribing a shop to Amazon's notifications from its console page, against the simulator
//! (Amazon's Notifications API with its grantless token): both subscriptions at Amazon and on
//! the page, status-sync's cadence the hourly sweep and the operator in the API log; a bad ARN,
//! a forged or missing CSRF token and another operator's shop change nothing; unsubscribing
//! deletes them at Amazon and restores the cadence.

mod common;

use common::*;
use spapi::notifications::NotificationType;
use spapi::{ClientConfig, Credentials, Endpoints, ShopConfig, SpApi};
use spapi_sim::SimConfig;
use sqlx::PgPool;

const ARN: &str = "arn:aws:sqs:us-west-2:000000000000:console-notifications";
const SELLER: &str = "A1SELLER";
const CLIENT_ID: &str = "amzn1.application-oa2-client.test";
const SECRET: &str = "secret-console-1";
const REFRESH: &str = "Atzr|console-refresh-1";

/// A shop whose SP-API endpoint is the simulator.
async fn sim_shop(pool: &PgPool, code: &str, base: &str) {
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
        .unwrap();
}

/// The shop's subscriptions at Amazon: (type, subscription id, destination id).
async fn at_amazon(amazon: &spapi::Shop) -> Vec<(String, String, String)> {
    let mut ids = Vec::new();
    for ty in [
        NotificationType::FeedProcessingFinished,
        NotificationType::OrderChange,
    ] {
        if let Some(s) = amazon.get_subscription(&ty, None).await.unwrap() {
            ids.push((ty.as_str().to_owned(), s.subscription_id, s.destination_id));
        }
    }
    ids
}

async fn recorded(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT notification_type, subscription_id FROM notification_subscriptions
          ORDER BY notification_type",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// acme-jp's status-sync default entry: (cron, updated by).
async fn status_sync(pool: &PgPool) -> (String, String) {
    sqlx::query_as(
        "SELECT sc.cron, sc.updated_by FROM schedules sc JOIN shops s ON s.id = sc.shop_id
          WHERE s.code = 'acme-jp' AND sc.action = 'status-sync' AND sc.entry = 'default'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// API-log entries of `code`: (message, operator in the details).
async fn logged(pool: &PgPool, code: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT message, details->>'operator' FROM api_log WHERE code = $1 ORDER BY created_at",
    )
    .bind(code)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn operators_subscribe_and_unsubscribe_a_shop_from_its_page(pool: PgPool) {
    let sim = spapi_sim::spawn(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    sim_shop(&pool, "acme-jp", &base).await;
    shop(&pool, "other-au", "AU", "Australia/Sydney").await;
    user(&pool, "alice", &["acme-jp"]).await;
    user(&pool, "bob", &["other-au"]).await;
    let amazon = SpApi::new(pool.clone(), ClientConfig::default())
        .unwrap()
        .shop(
            ShopConfig::new(SELLER, Credentials::new(CLIENT_ID, SECRET, REFRESH))
                .with_endpoints(Endpoints::simulator(&base).unwrap()),
        );
    let srv = start(pool.clone(), "").await;
    let mut c = Client::new(&srv.base);
    c.sign_in("alice").await;
    let csrf = c.csrf().await;
    let polling = status_sync(&pool).await.0;
    assert_eq!(polling, "*/10 * * * *");

    // The page offers the form to its operator.
    let page = c.get("/shops/acme-jp").await;
    assert_eq!(page.status, 200);
    for needle in [
        r#"action="/shops/acme-jp/notifications/subscribe""#,
        r#"name="sqs_arn""#,
        r#"name="sweep""#,
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing: {}",
            page.body
        );
    }
    let subscribe = "/shops/acme-jp/notifications/subscribe";
    let unchanged = |pool: PgPool| async move {
        assert_eq!(recorded(&pool).await, vec![]);
        assert_eq!(status_sync(&pool).await.0, "*/10 * * * *");
        assert!(logged(&pool, "notifications_subscribed").await.is_empty());
    };

    // A bad ARN: refused with why, the typed value kept, nothing changed (here or at Amazon).
    let hostile = "arn:aws:sqs:us-west-2:12345:<b>q</b>";
    let r = c
        .post(
            subscribe,
            &[("csrf", &csrf), ("sqs_arn", hostile), ("sweep", "")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("SQSキューのARNではありません"),
        "{}",
        r.body
    );
    assert!(r.body.contains("何も変更していません"), "{}", r.body);
    assert!(!r.body.contains("<b>q</b>"), "escaped");
    assert!(r.body.contains("&lt;b&gt;q&lt;/b&gt;"), "{}", r.body);
    let r = c
        .post(
            &format!("{subscribe}?lang=en"),
            &[
                ("csrf", &csrf),
                (
                    "sqs_arn",
                    "https://sqs.us-west-2.amazonaws.com/000000000000/q",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("is not an SQS queue ARN"), "{}", r.body);
    assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    assert_eq!(c.get("/shops/acme-jp?lang=ja").await.status, 200);
    // A bad sweep cadence: refused too.
    let r = c
        .post(
            subscribe,
            &[("csrf", &csrf), ("sqs_arn", ARN), ("sweep", "0 * * *")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("実行間隔として使えません"), "{}", r.body);
    // A forged or missing CSRF token: 403.
    for form in [
        vec![("csrf", "forged"), ("sqs_arn", ARN)],
        vec![("sqs_arn", ARN)],
    ] {
        let r = c.post(subscribe, &form).await;
        assert!(matches!(r.status, 403 | 422), "{}: {}", r.status, r.body);
    }
    // Another operator's shop: 404, and bob cannot reach acme's either.
    let r = c
        .post(
            "/shops/other-au/notifications/subscribe",
            &[("csrf", &csrf), ("sqs_arn", ARN)],
        )
        .await;
    assert_eq!(r.status, 404);
    let mut b = Client::new(&srv.base);
    b.sign_in("bob").await;
    let bob_csrf = b.csrf().await;
    let r = b
        .post(subscribe, &[("csrf", &bob_csrf), ("sqs_arn", ARN)])
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(b.get("/shops/acme-jp").await.status, 404);
    unchanged(pool.clone()).await;
    assert_eq!(at_amazon(&amazon).await, vec![]);

    // Subscribe (the sweep left empty: hourly).
    let r = c
        .post(
            subscribe,
            &[("csrf", &csrf), ("sqs_arn", ARN), ("sweep", "")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(
        to.starts_with("/shops/acme-jp?notifications=subscribed"),
        "{to}"
    );
    let held = at_amazon(&amazon).await;
    assert_eq!(held.len(), 2, "{held:?}");
    let recorded_now = recorded(&pool).await;
    assert_eq!(
        recorded_now,
        held.iter()
            .map(|(ty, id, _)| (ty.clone(), id.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        status_sync(&pool).await,
        ("0 * * * *".to_owned(), "alice".to_owned())
    );
    let log = logged(&pool, "notifications_subscribed").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].1.as_deref(), Some("alice"));
    assert!(log[0].0.contains("operator alice subscribed"), "{log:?}");
    assert!(log[0].0.contains(ARN), "{log:?}");
    let page = c.get(&to).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Amazonの通知"), "{}", page.body);
    assert!(page.body.contains("0 * * * *"), "{}", page.body);
    for (_, id, destination) in &held {
        assert!(page.body.contains(id.as_str()), "{id} not shown");
        assert!(page.body.contains(destination.as_str()));
    }
    assert!(
        page.body
            .contains(r#"action="/shops/acme-jp/notifications/unsubscribe""#)
    );
    let query = to.split('#').next().unwrap();
    let en = c.get(&format!("{query}&lang=en")).await;
    assert!(
        en.body.contains("Subscribed to Amazon's notifications"),
        "{}",
        en.body
    );

    assert_eq!(c.get("/shops/acme-jp?lang=ja").await.status, 200);

    // Unsubscribe: a forged token and another operator change nothing; then alice does it.
    let unsubscribe = "/shops/acme-jp/notifications/unsubscribe";
    let r = c.post(unsubscribe, &[("csrf", "forged")]).await;
    assert_eq!(r.status, 403);
    let r = b.post(unsubscribe, &[("csrf", &bob_csrf)]).await;
    assert_eq!(r.status, 404);
    assert_eq!(at_amazon(&amazon).await, held);
    let r = c.post(unsubscribe, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(
        to.starts_with("/shops/acme-jp?notifications=unsubscribed"),
        "{to}"
    );
    assert_eq!(at_amazon(&amazon).await, vec![]);
    assert_eq!(recorded(&pool).await, vec![]);
    assert_eq!(
        status_sync(&pool).await,
        ("*/10 * * * *".to_owned(), "alice".to_owned())
    );
    let log = logged(&pool, "notifications_unsubscribed").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].1.as_deref(), Some("alice"));
    let page = c.get(&to).await;
    assert!(page.body.contains("登録を解除しました"), "{}", page.body);
    assert!(page.body.contains("未登録"));
    // Again: nothing to do, said so.
    let r = c.post(unsubscribe, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().contains("notifications=unchanged"));
    assert_eq!(logged(&pool, "notifications_unsubscribed").await.len(), 1);
}
