use chrono::Duration;
use crypto::Keyring;
use domain::{Marketplace, shop::ShipmentStrategy};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use store::{
    StoreError, api_log,
    runs::{self, NewRun, RunStatus},
    shops::{self, NewShop},
};
use uuid::Uuid;

fn new_shop(code: &str) -> NewShop {
    NewShop {
        code: code.parse().unwrap(),
        name: "Acme Japan".into(),
        seller_id: "A1SELLER".into(),
        marketplaces: vec![Marketplace::Japan],
        time_zone: chrono_tz::Asia::Tokyo,
        sp_api_endpoint: "http://127.0.0.1:1".into(),
        lwa_endpoint: "http://127.0.0.1:1/auth/o2/token".into(),
        shipment_strategy: ShipmentStrategy::Feed,
        client_id: "amzn1.application-oa2-client.test".into(),
        client_secret: SecretString::from("client-secret-CANARY-1"),
        refresh_token: SecretString::from("Atzr|refresh-CANARY-2"),
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn shop_credentials_are_encrypted_and_bound_to_the_row(pool: PgPool) {
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let shop = shops::insert(&mut conn, &keys, &new_shop("acme"))
        .await
        .unwrap();
    assert_eq!(shop.shop.code.as_str(), "acme");
    assert_eq!(shop.shop.marketplaces, vec![Marketplace::Japan]);

    // Nothing in the row holds the plaintext.
    let dump: String = sqlx::query_scalar("SELECT row_to_json(s)::text FROM shops s")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(!dump.contains("CANARY"), "plaintext secret stored: {dump}");
    let raw: Vec<u8> = sqlx::query_scalar("SELECT lwa_refresh_token_enc FROM shops")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(!raw.windows(6).any(|w| w == b"CANARY"));

    let creds = shops::credentials(&mut conn, &keys, shop.shop.id)
        .await
        .unwrap();
    assert_eq!(creds.refresh_token.expose_secret(), "Atzr|refresh-CANARY-2");
    assert!(
        !format!("{creds:?}").contains("CANARY"),
        "Debug prints a secret"
    );

    // Swap the ciphertexts between two shops: neither decrypts.
    let other = shops::insert(&mut conn, &keys, &new_shop("other"))
        .await
        .unwrap();
    sqlx::query("UPDATE shops SET lwa_refresh_token_enc = (SELECT lwa_refresh_token_enc FROM shops WHERE id = $1) WHERE id = $2")
        .bind(shop.shop.id)
        .bind(other.shop.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(matches!(
        shops::credentials(&mut conn, &keys, other.shop.id).await,
        Err(StoreError::Crypto(_))
    ));

    // Duplicate code is a clear error.
    let dup = shops::insert(&mut conn, &keys, &new_shop("acme"))
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate { .. }), "{dup}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn secret_rotation_and_key_rotation(pool: PgPool) {
    let v1 = Keyring::generate_key(1);
    let keys1 = Keyring::parse(&v1).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let shop = shops::insert(&mut conn, &keys1, &new_shop("acme"))
        .await
        .unwrap()
        .shop;

    shops::stage_client_secret(&mut conn, &keys1, shop.id, &SecretString::from("second"))
        .await
        .unwrap();
    let c = shops::credentials(&mut conn, &keys1, shop.id)
        .await
        .unwrap();
    assert_eq!(c.client_secret.expose_secret(), "client-secret-CANARY-1");
    assert_eq!(c.client_secret_next.unwrap().expose_secret(), "second");
    shops::promote_client_secret(&mut conn, &keys1, shop.id)
        .await
        .unwrap();
    let c = shops::credentials(&mut conn, &keys1, shop.id)
        .await
        .unwrap();
    assert_eq!(c.client_secret.expose_secret(), "second");
    assert!(c.client_secret_next.is_none());

    let keys12 = Keyring::parse(&format!("{v1},{}", Keyring::generate_key(2))).unwrap();
    assert_eq!(shops::rotate_keys(&mut conn, &keys12).await.unwrap(), 1);
    assert_eq!(shops::rotate_keys(&mut conn, &keys12).await.unwrap(), 0);
    let c = shops::credentials(&mut conn, &keys12, shop.id)
        .await
        .unwrap();
    assert_eq!(c.refresh_token.expose_secret(), "Atzr|refresh-CANARY-2");
    // The old key alone can no longer read the re-encrypted secrets.
    assert!(
        shops::credentials(&mut conn, &keys1, shop.id)
            .await
            .is_err()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_run_at_a_time_per_shop_and_action(pool: PgPool) {
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let shop = shops::insert(&mut conn, &keys, &new_shop("acme"))
        .await
        .unwrap()
        .shop;
    let run = |mode| NewRun {
        shop_id: shop.id,
        action: "order-ingest",
        mode,
        status: RunStatus::Running,
        command_id: None,
        requested_by: Some("t"),
    };
    let a = runs::insert(&mut conn, &run(Some("differential")))
        .await
        .unwrap();
    let b = runs::insert(&mut conn, &run(Some("hours"))).await.unwrap();
    assert!(
        runs::try_lease(
            &mut conn,
            shop.id,
            "order-ingest",
            a,
            "w1",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    assert!(
        !runs::try_lease(
            &mut conn,
            shop.id,
            "order-ingest",
            b,
            "w2",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    // Same run may renew; another action is independent.
    assert!(
        runs::try_lease(
            &mut conn,
            shop.id,
            "order-ingest",
            a,
            "w1",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    assert!(
        runs::try_lease(
            &mut conn,
            shop.id,
            "status-sync",
            b,
            "w2",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    runs::release_lease(&mut conn, shop.id, "order-ingest", a)
        .await
        .unwrap();
    assert!(
        runs::try_lease(
            &mut conn,
            shop.id,
            "order-ingest",
            b,
            "w2",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );
    // An expired lease is taken over.
    let c = runs::insert(&mut conn, &run(None)).await.unwrap();
    sqlx::query("UPDATE action_leases SET expires_at = now() - interval '1 second'")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(
        runs::try_lease(
            &mut conn,
            shop.id,
            "order-ingest",
            c,
            "w3",
            Duration::minutes(5)
        )
        .await
        .unwrap()
    );

    // Watermarks: only succeeded runs count.
    let t = chrono::Utc::now();
    runs::finish(
        &mut conn,
        a,
        RunStatus::Succeeded,
        Some(t),
        &serde_json::json!({"new": 3}),
        2,
        None,
    )
    .await
    .unwrap();
    runs::finish(
        &mut conn,
        b,
        RunStatus::Failed,
        Some(t + Duration::hours(1)),
        &serde_json::json!({}),
        1,
        Some("boom"),
    )
    .await
    .unwrap();
    let w = runs::last_watermark(&mut conn, shop.id, "order-ingest", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.timestamp_micros(), t.timestamp_micros());
    // A late progress write cannot reopen a finished run.
    runs::save_progress(&mut conn, a, RunStatus::Running, &runs::Progress::default())
        .await
        .unwrap();
    let got = runs::get(&mut conn, a).await.unwrap();
    assert!(got.finished_at.is_some());
    assert_eq!(got.status, "succeeded");
    assert_eq!(got.counts["new"], 3);
    assert_eq!(
        runs::recent(&mut conn, Some(shop.id), Some("order-ingest"), 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn api_log_filters(pool: PgPool) {
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let shop = shops::insert(&mut conn, &keys, &new_shop("acme"))
        .await
        .unwrap()
        .shop;
    let e = api_log::Entry {
        amazon_order_id: Some("503-1234567-1234567"),
        ..api_log::Entry::new(
            Some(shop.id),
            "order-ingest",
            api_log::Level::Attention,
            "SKU X is not mapped",
        )
    };
    api_log::write(&mut conn, &e).await.unwrap();
    api_log::write(
        &mut conn,
        &api_log::Entry::new(Some(shop.id), "status-sync", api_log::Level::Info, "ok"),
    )
    .await
    .unwrap();
    let all = api_log::query(
        &mut conn,
        &api_log::Filter {
            shop_id: Some(shop.id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].action, "status-sync", "newest first");
    let by_order = api_log::query(
        &mut conn,
        &api_log::Filter {
            amazon_order_id: Some("503-1234567-1234567".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_order.len(), 1);
    assert_eq!(by_order[0].level, "attention");
    let tail = api_log::query(
        &mut conn,
        &api_log::Filter {
            after_id: Some(all[1].id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(tail.len(), 1);
    let none = api_log::query(
        &mut conn,
        &api_log::Filter {
            shop_id: Some(Uuid::now_v7()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(none.is_empty());
}

/// `lease_new_run` for actions that finish within one message: a second run while the first
/// holds the lease is `Busy`; a copy of a trigger that already succeeded is a `Duplicate` (ended
/// `skipped`, lease given back) even when it only gets the lease after the first run finished.
#[sqlx::test(migrations = "../../migrations")]
async fn copies_of_one_trigger_run_once(pool: PgPool) {
    let keys = Keyring::for_testing();
    let mut conn = pool.acquire().await.unwrap();
    let shop = shops::insert(&mut conn, &keys, &new_shop("acme"))
        .await
        .unwrap()
        .shop;
    let action = "shipment-feedback";
    let trigger = Uuid::now_v7();
    let new_run = |command_id| NewRun {
        shop_id: shop.id,
        action,
        mode: None,
        status: RunStatus::Running,
        command_id,
        requested_by: Some("t"),
    };
    let ttl = Duration::minutes(5);
    let counts = serde_json::json!({});
    let first = runs::insert(&mut conn, &new_run(Some(trigger)))
        .await
        .unwrap();
    let copy = runs::insert(&mut conn, &new_run(Some(trigger)))
        .await
        .unwrap();
    let lease = |run, command| {
        let pool = pool.clone();
        let counts = counts.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            runs::lease_new_run(&mut conn, shop.id, action, run, command, "w", ttl, &counts)
                .await
                .unwrap()
        }
    };
    assert_eq!(lease(first, Some(trigger)).await, runs::NewRunLease::Leased);
    assert_eq!(lease(copy, Some(trigger)).await, runs::NewRunLease::Busy);
    assert!(
        !runs::command_succeeded(&mut conn, trigger, action)
            .await
            .unwrap()
    );
    runs::close_leased(&mut conn, shop.id, action, first, &counts, 1, None)
        .await
        .unwrap();
    assert!(
        runs::command_succeeded(&mut conn, trigger, action)
            .await
            .unwrap()
    );

    // A copy that checked before the first run finished, and gets the lease after it.
    let late = runs::insert(&mut conn, &new_run(Some(trigger)))
        .await
        .unwrap();
    assert_eq!(
        lease(late, Some(trigger)).await,
        runs::NewRunLease::Duplicate
    );
    let late_run = runs::get(&mut conn, late).await.unwrap();
    assert_eq!(late_run.status, "skipped");
    assert!(late_run.error.unwrap().contains("duplicate"));
    // The duplicate gave the lease back: a different trigger runs at once.
    let other = runs::insert(&mut conn, &new_run(Some(Uuid::now_v7())))
        .await
        .unwrap();
    assert_eq!(lease(other, None).await, runs::NewRunLease::Leased);
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM action_runs WHERE command_id = $1 AND status = 'succeeded'",
    )
    .bind(trigger)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(succeeded, 1);
}
