//! The operator pages' read models (`store::read`), the console operators and the resend request.

use chrono::{Duration, Utc};
use crypto::Keyring;
use domain::{Marketplace, shop::ShipmentStrategy};
use secrecy::SecretString;
use sqlx::PgPool;
use store::{
    StoreError, api_log, operators,
    read::{self, runs::RunFilter},
    runs::{self, NewRun, RunStatus},
    shops::{self, NewShop},
};
use uuid::Uuid;

async fn shop(pool: &PgPool, code: &str) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewShop {
        code: code.parse().unwrap(),
        name: format!("Shop {code}"),
        seller_id: "A1SELLER".into(),
        marketplaces: vec![Marketplace::Japan],
        time_zone: chrono_tz::Asia::Tokyo,
        sp_api_endpoint: "http://127.0.0.1:1".into(),
        lwa_endpoint: "http://127.0.0.1:1/auth/o2/token".into(),
        shipment_strategy: ShipmentStrategy::Feed,
        client_id: "amzn1.application-oa2-client.test".into(),
        client_secret: SecretString::from("secret"),
        refresh_token: SecretString::from("Atzr|refresh"),
    };
    shops::insert(&mut conn, &Keyring::for_testing(), &new)
        .await
        .unwrap()
        .shop
        .id
}

/// A feed in `state`, created `created_h` hours ago and submitted `submitted_min` minutes ago.
async fn feed(
    pool: &PgPool,
    shop_id: Uuid,
    state: &str,
    created_h: i64,
    submitted_min: Option<i64>,
) -> Uuid {
    let id = Uuid::now_v7();
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO feed_submissions (id, shop_id, feed_type, marketplace_ids, state, created_at, submitted_at)
         VALUES ($1, $2, 'JSON_LISTINGS_FEED', ARRAY['A1VC38T7YXB528'], $3, $4, $5)",
    )
    .bind(id)
    .bind(shop_id)
    .bind(state)
    .bind(now - Duration::hours(created_h))
    .bind(submitted_min.map(|m| now - Duration::minutes(m)))
    .execute(pool)
    .await
    .unwrap();
    id
}

/// The one stuck-feed rule (`domain::feed_stuck`, 3 hours from submission) on the attention page
/// and its dashboard count: 2.5 hours after submission is not stuck (the console used to say so
/// after 2 hours from creation), 3 hours and more is.
#[sqlx::test(migrations = "../../migrations")]
async fn stuck_feeds_follow_the_one_threshold(pool: PgPool) {
    let acme = shop(&pool, "acme").await;
    let recent = feed(&pool, acme, "submitted", 5, Some(150)).await;
    let late = feed(&pool, acme, "submitted", 5, Some(185)).await;
    let never_sent = feed(&pool, acme, "pending", 4, None).await;
    let young = feed(&pool, acme, "pending", 2, None).await;
    let done = feed(&pool, acme, "done", 9, Some(500)).await;
    let mut conn = pool.acquire().await.unwrap();
    let now = Utc::now();
    let stuck: Vec<Uuid> = read::attention::stuck_feeds(&mut conn, &[acme], now)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert!(
        stuck.contains(&late) && stuck.contains(&never_sent),
        "{stuck:?}"
    );
    for id in [recent, young, done] {
        assert!(!stuck.contains(&id), "{id} is not stuck");
    }
    assert_eq!(
        read::attention::count(&mut conn, &[acme], now)
            .await
            .unwrap(),
        2
    );
    // An hour later the recently submitted and the young unsent one are stuck too.
    let later = now + Duration::hours(1);
    assert_eq!(
        read::attention::stuck_feeds(&mut conn, &[acme], later)
            .await
            .unwrap()
            .len(),
        4
    );
    // Another shop's feeds are not this operator's concern.
    assert!(
        read::attention::stuck_feeds(&mut conn, &[Uuid::now_v7()], now)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn list(pool: &PgPool, f: RunFilter<'_>) -> Vec<runs::Run> {
    let mut conn = pool.acquire().await.unwrap();
    read::runs::list(&mut conn, &f).await.unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn runs_filter_by_shops_action_and_outcome(pool: PgPool) {
    let acme = shop(&pool, "acme").await;
    let other = shop(&pool, "other").await;
    let mut conn = pool.acquire().await.unwrap();
    for (shop_id, action, status) in [
        (acme, "order-ingest", RunStatus::Succeeded),
        (acme, "status-sync", RunStatus::Failed),
        (other, "order-ingest", RunStatus::Rejected),
    ] {
        runs::insert(
            &mut conn,
            &NewRun {
                shop_id,
                action,
                mode: None,
                status,
                command_id: None,
                requested_by: Some("test"),
            },
        )
        .await
        .unwrap();
    }
    let acme_only = [acme];
    let both = [acme, other];
    let all = RunFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(&pool, all).await.len(), 3);
    assert_eq!(
        list(
            &pool,
            RunFilter {
                shops: Some(&acme_only),
                ..all
            }
        )
        .await
        .len(),
        2
    );
    let failed = list(
        &pool,
        RunFilter {
            shops: Some(&both),
            status: Some("failed"),
            ..all
        },
    )
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].action, "status-sync");
    let ingest = list(
        &pool,
        RunFilter {
            action: Some("order-ingest"),
            ..all
        },
    )
    .await;
    assert_eq!(ingest.len(), 2);
    assert!(ingest[0].started_at >= ingest[1].started_at, "newest first");
    // `runs::recent` is the same query with one shop.
    let recent = runs::recent(&mut conn, Some(acme), Some("order-ingest"), 10)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].shop_id, acme);
}

#[sqlx::test(migrations = "../../migrations")]
async fn api_log_filters_by_shop_set_and_code(pool: PgPool) {
    let acme = shop(&pool, "acme").await;
    let other = shop(&pool, "other").await;
    let mut conn = pool.acquire().await.unwrap();
    for (shop_id, code) in [
        (Some(acme), Some("feed_stuck")),
        (Some(acme), None),
        (Some(other), Some("feed_stuck")),
        (None, Some("feed_stuck")),
    ] {
        api_log::write(
            &mut conn,
            &api_log::Entry {
                code,
                ..api_log::Entry::new(shop_id, "feed-poller", api_log::Level::Attention, "m")
            },
        )
        .await
        .unwrap();
    }
    let q = |f: api_log::Filter| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            api_log::query(&mut conn, &f).await.unwrap()
        }
    };
    let mine = q(api_log::Filter {
        shop_ids: Some(vec![acme]),
        ..Default::default()
    })
    .await;
    assert_eq!(mine.len(), 2);
    let stuck = q(api_log::Filter {
        shop_ids: Some(vec![acme, other]),
        code: Some("feed_stuck".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(stuck.len(), 2, "entries with no shop are left out");
    assert_eq!(
        q(api_log::Filter {
            code: Some("feed_stuck".into()),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn operators_sessions_and_shops(pool: PgPool) {
    let acme = shop(&pool, "acme").await;
    shop(&pool, "other").await;
    let mut tx = pool.begin().await.unwrap();
    let err = operators::upsert(&mut tx, "alice", "Alice", "phc", &["nope".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what: "shop", key } if key == "nope"),
        "{err}"
    );
    drop(tx);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        operators::login(&mut conn, "alice")
            .await
            .unwrap()
            .is_none()
    );
    let id = operators::upsert(&mut conn, "alice", "Alice", "phc", &["acme".into()])
        .await
        .unwrap();
    let login = operators::login(&mut conn, "alice").await.unwrap().unwrap();
    assert_eq!((login.id, login.password_hash.as_str()), (id, "phc"));
    operators::open_session(
        &mut conn,
        b"token-hash",
        id,
        "csrf",
        Utc::now() + Duration::hours(1),
    )
    .await
    .unwrap();
    let user = operators::session_user(&mut conn, b"token-hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, user.csrf_token.as_str()), (id, "csrf"));
    assert!(!user.admin, "operators are not administrators by default");
    operators::set_admin(&mut conn, id, true).await.unwrap();
    let user = operators::session_user(&mut conn, b"token-hash")
        .await
        .unwrap()
        .unwrap();
    assert!(user.admin, "the role applies to the open session");
    let err = operators::set_admin(&mut conn, Uuid::now_v7(), true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::NotFound {
                what: "operator",
                ..
            }
        ),
        "{err}"
    );
    let seen: Vec<Uuid> = operators::shops_of(&mut conn, id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(seen, vec![acme]);
    // Updating the operator ends their sessions.
    operators::upsert(&mut conn, "alice", "Alice", "phc2", &[])
        .await
        .unwrap();
    assert!(
        operators::session_user(&mut conn, b"token-hash")
            .await
            .unwrap()
            .is_none()
    );
    operators::open_session(&mut conn, b"t2", id, "c2", Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    assert!(
        operators::session_user(&mut conn, b"t2")
            .await
            .unwrap()
            .unwrap()
            .admin,
        "an update keeps the role"
    );
    operators::close_session(&mut conn, b"t2").await.unwrap();
    assert!(
        operators::session_user(&mut conn, b"t2")
            .await
            .unwrap()
            .is_none()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_resend_puts_the_shipment_back_to_awaiting_print(pool: PgPool) {
    let acme = shop(&pool, "acme").await;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, status, api_status, api_error)
         VALUES ($1, $2, '503-1234567-1234567', 'shipped', 'failed', 'bad tracking number')",
    )
    .bind(id)
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        store::resend::shipment_state(&mut conn, acme, "503-0000000-0000000")
            .await
            .unwrap()
            .is_none()
    );
    let s = store::resend::shipment_state(&mut conn, acme, "503-1234567-1234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.id, s.status.as_str(), s.api_status.as_str()),
        (id, "shipped", "failed")
    );
    store::resend::request(&mut conn, id, "test").await.unwrap();
    let (api_status, api_error, asked): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT api_status, api_error, resend_requested_at IS NOT NULL FROM shipping_instructions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (api_status.as_str(), api_error, asked),
        ("awaiting_print", None, true)
    );
    assert!(
        store::carriers::check_pattern(&mut conn, "^[0-9]{12}$")
            .await
            .is_ok()
    );
    assert!(
        store::carriers::check_pattern(&mut conn, "([")
            .await
            .is_err()
    );
}
