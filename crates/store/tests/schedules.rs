//! 自動実行 (schedules): the defaults every shop gets, operators' changes, and the scheduler's
//! claims (one fire per due slot, even with two schedulers at once).

use std::borrow::Cow;

use chrono::{DateTime, Duration, Utc};
use crypto::Keyring;
use domain::{
    messages::Action,
    schedule::{Cadence, DEFAULTS, Due, MAX_LATE},
    shop::ShipmentStrategy,
};
use secrecy::SecretString;
use sqlx::PgPool;
use store::{
    StoreError,
    schedules::{self, Change, Claim},
    shops::{self, NewShop},
};
use uuid::Uuid;

fn new_shop(code: &str) -> NewShop {
    NewShop {
        code: code.parse().unwrap(),
        name: "Acme Japan".into(),
        seller_id: "A1SELLER".into(),
        marketplaces: vec![domain::Marketplace::Japan],
        time_zone: chrono_tz::Asia::Tokyo,
        sp_api_endpoint: "http://127.0.0.1:1".into(),
        lwa_endpoint: "http://127.0.0.1:1/auth/o2/token".into(),
        shipment_strategy: ShipmentStrategy::Feed,
        client_id: "amzn1.application-oa2-client.test".into(),
        client_secret: SecretString::from("secret"),
        refresh_token: SecretString::from("Atzr|refresh"),
    }
}

async fn add_shop(pool: &PgPool, code: &str) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    shops::insert(&mut conn, &Keyring::for_testing(), &new_shop(code))
        .await
        .unwrap()
        .shop
        .id
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 10:00 in Tokyo.
const T0: &str = "2026-11-28T01:00:00Z";

/// Moves every entry's watermark (the latest slot dealt with) to `t`.
async fn watermark(pool: &PgPool, t: DateTime<Utc>) {
    sqlx::query("UPDATE schedules SET last_slot = $1")
        .bind(t)
        .execute(pool)
        .await
        .unwrap();
}

async fn claim(pool: &PgPool, now: DateTime<Utc>) -> Vec<Claim> {
    let mut tx = pool.begin().await.unwrap();
    let claims = schedules::claim_due(&mut tx, now, MAX_LATE).await.unwrap();
    tx.commit().await.unwrap();
    claims
}

fn fired(claims: &[Claim]) -> Vec<(Action, &str, DateTime<Utc>)> {
    let mut v: Vec<_> = claims
        .iter()
        .filter_map(|c| match c.due {
            Due::Fire(slot) => Some((c.action, c.entry.as_str(), slot)),
            Due::Missed(_) => None,
        })
        .collect();
    v.sort_by_key(|(a, e, _)| (a.as_str(), e.to_string()));
    v
}

/// The rows are the default schedule, in its order.
fn assert_defaults(rows: &[schedules::Schedule]) {
    let got: Vec<(Action, &str, &str)> = rows
        .iter()
        .map(|r| (r.action, r.entry.as_str(), r.cron.as_str()))
        .collect();
    let want: Vec<(Action, &str, &str)> = DEFAULTS
        .iter()
        .map(|d| (d.action, d.entry, d.cron))
        .collect();
    assert_eq!(got, want);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_new_shop_gets_the_default_schedule(pool: PgPool) {
    let id = add_shop(&pool, "acme").await;
    let mut conn = pool.acquire().await.unwrap();
    let rows = schedules::list(&mut conn, &[id]).await.unwrap();
    assert_defaults(&rows);
    assert!(
        rows.iter()
            .all(|r| r.enabled && r.updated_by == "defaults" && r.last_fired_slot.is_none())
    );
    // Idempotent: the defaults are not created twice.
    assert_eq!(
        schedules::create_defaults(&mut conn, id, "defaults")
            .await
            .unwrap(),
        0
    );
}

/// Migration 20261202006000 gives the shops that exist before it the same entries as a new shop.
#[sqlx::test(migrations = false)]
async fn the_migration_gives_existing_shops_the_defaults(pool: PgPool) {
    let before = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            store::MIGRATOR
                .iter()
                .filter(|m| m.version < 20261202006000)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shops (id, code, name, seller_id, marketplaces, time_zone, sp_api_endpoint, lwa_endpoint,
                            lwa_client_id, lwa_client_secret_enc, lwa_refresh_token_enc)
         VALUES ($1, 'old', 'Old', 'A1OLD', '{JP}', 'Asia/Tokyo', 'http://x', 'http://x', 'c', '\\x00', '\\x00')",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    store::MIGRATOR.run(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let rows = schedules::list(&mut conn, &[id]).await.unwrap();
    assert_defaults(&rows);
    assert!(
        rows.iter()
            .all(|r| r.enabled && r.updated_by == "migration")
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_due_slot_fires_once(pool: PgPool) {
    add_shop(&pool, "acme").await;
    let t0 = utc(T0);
    watermark(&pool, t0).await;
    // 10:16 in Tokyo: order-ingest (10:15), status-sync (10:10), inventory-sync (10:05) and
    // feed-poller (10:15) are due; hourly shipment-feedback's 10:00 slot is the watermark itself.
    let now = t0 + Duration::minutes(16);
    let claims = claim(&pool, now).await;
    assert_eq!(
        fired(&claims),
        vec![
            (Action::FeedPoller, "default", utc("2026-11-28T01:15:00Z")),
            (
                Action::InventorySync,
                "default",
                utc("2026-11-28T01:05:00Z")
            ),
            (Action::OrderIngest, "default", utc("2026-11-28T01:15:00Z")),
            (Action::StatusSync, "default", utc("2026-11-28T01:10:00Z")),
        ]
    );
    assert!(claims.iter().all(|c| c.shop_code == "acme"));
    // The same minute again, or the next one: nothing new.
    assert!(claim(&pool, now).await.is_empty());
    assert!(claim(&pool, now + Duration::minutes(1)).await.is_empty());
    // 10:20: feed-poller, inventory-sync (5, 20, 35, 50) and status-sync.
    let next = claim(&pool, t0 + Duration::minutes(20)).await;
    assert_eq!(
        fired(&next).iter().map(|(a, _, _)| *a).collect::<Vec<_>>(),
        vec![
            Action::FeedPoller,
            Action::InventorySync,
            Action::StatusSync
        ]
    );
    let mut conn = pool.acquire().await.unwrap();
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM shops")
        .fetch_all(&pool)
        .await
        .unwrap();
    let rows = schedules::list(&mut conn, &ids).await.unwrap();
    let ingest = rows
        .iter()
        .find(|r| r.action == Action::OrderIngest)
        .unwrap();
    assert_eq!(ingest.last_fired_slot, Some(utc("2026-11-28T01:15:00Z")));
    assert_eq!(ingest.last_fired_at, Some(now));
    assert_eq!(
        ingest.next_run(chrono_tz::Asia::Tokyo, t0 + Duration::minutes(20)),
        Some(utc("2026-11-28T01:30:00Z"))
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn missed_slots_fire_once_and_a_slot_too_late_is_passed_over(pool: PgPool) {
    let shop = add_shop(&pool, "acme").await;
    let t0 = utc(T0);
    // The scheduler was down from 22:00 the evening before (Tokyo) until 10:16.
    watermark(&pool, t0 - Duration::hours(12)).await;
    let now = t0 + Duration::minutes(16);
    let claims = claim(&pool, now).await;
    // One fire per entry, the latest slot, not 49 order-ingest runs.
    assert_eq!(
        fired(&claims),
        vec![
            (Action::FeedPoller, "default", utc("2026-11-28T01:15:00Z")),
            (
                Action::InventorySync,
                "default",
                utc("2026-11-28T01:05:00Z")
            ),
            (Action::OrderIngest, "default", utc("2026-11-28T01:15:00Z")),
            (
                Action::ShipmentFeedback,
                "default",
                utc("2026-11-28T01:00:00Z")
            ),
            (Action::StatusSync, "default", utc("2026-11-28T01:10:00Z")),
        ]
    );
    // The 23:55 end-of-day run is 10 hours late: passed over, with a warning in the API log.
    let missed: Vec<&Claim> = claims
        .iter()
        .filter(|c| matches!(c.due, Due::Missed(_)))
        .collect();
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].entry, "end-of-day");
    assert_eq!(missed[0].due.slot(), utc("2026-11-27T14:55:00Z"));
    let (level, message): (String, String) = sqlx::query_as(
        "SELECT level, message FROM api_log WHERE code = 'schedule_missed' AND shop_id = $1",
    )
    .bind(shop)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(level, "warning");
    assert!(
        message.contains("2026-11-27 23:55 JST") && message.contains("shipment-feedback"),
        "{message}"
    );
    // Not claimed again, and never marked as fired.
    assert!(claim(&pool, now).await.is_empty());
    let fired_slot: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_fired_slot FROM schedules WHERE action = 'shipment-feedback' AND entry = 'end-of-day'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(fired_slot, None);
}

#[sqlx::test(migrations = "../../migrations")]
async fn disabled_entries_and_inactive_shops_fire_nothing(pool: PgPool) {
    let paused = add_shop(&pool, "paused").await;
    let inactive = add_shop(&pool, "inactive").await;
    let mut conn = pool.acquire().await.unwrap();
    let changed = schedules::set_enabled(&mut conn, paused, None, None, false, "alice")
        .await
        .unwrap();
    assert_eq!(changed.len(), DEFAULTS.len());
    sqlx::query("UPDATE shops SET active = false WHERE id = $1")
        .bind(inactive)
        .execute(&pool)
        .await
        .unwrap();
    let t0 = utc(T0);
    watermark(&pool, t0).await;
    assert!(claim(&pool, t0 + Duration::minutes(16)).await.is_empty());

    // Enabled again: slots missed while it was disabled are not fired.
    let now = Utc::now();
    let changed = schedules::set_enabled(
        &mut conn,
        paused,
        Some(Action::OrderIngest),
        None,
        true,
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(changed, vec![(Action::OrderIngest, "default".to_owned())]);
    assert!(claim(&pool, now).await.is_empty());
    // A later slot fires.
    let claims = claim(&pool, now + Duration::minutes(15)).await;
    assert_eq!(
        fired(&claims)
            .iter()
            .map(|(a, _, _)| *a)
            .collect::<Vec<_>>(),
        vec![Action::OrderIngest]
    );
    assert_eq!(claims[0].shop_code, "paused");
    // Enabling what is enabled changes nothing; an unknown entry is an error.
    assert!(
        schedules::set_enabled(
            &mut conn,
            paused,
            Some(Action::OrderIngest),
            None,
            true,
            "alice"
        )
        .await
        .unwrap()
        .is_empty()
    );
    let err = schedules::set_enabled(
        &mut conn,
        paused,
        Some(Action::FeedPoller),
        Some("nightly"),
        true,
        "alice",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

/// Two schedulers tick at the same moment: the second waits for the first's rows, then finds
/// every slot claimed.
#[sqlx::test(migrations = "../../migrations")]
async fn two_schedulers_at_once_fire_a_slot_once(pool: PgPool) {
    add_shop(&pool, "acme").await;
    let t0 = utc(T0);
    watermark(&pool, t0).await;
    let now = t0 + Duration::minutes(16);
    let mut first = pool.begin().await.unwrap();
    let won = schedules::claim_due(&mut first, now, MAX_LATE)
        .await
        .unwrap();
    assert_eq!(fired(&won).len(), 4);
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let claims = schedules::claim_due(&mut tx, now, MAX_LATE).await.unwrap();
            tx.commit().await.unwrap();
            claims
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second scheduler did not wait for the first"
    );
    first.commit().await.unwrap();
    let lost = second.await.unwrap();
    assert!(lost.is_empty(), "claimed twice: {lost:?}");

    // A scheduler that rolls back (it crashed before its triggers were written) claims nothing:
    // the next tick fires the slot.
    watermark(&pool, t0).await;
    let mut crashed = pool.begin().await.unwrap();
    assert_eq!(
        schedules::claim_due(&mut crashed, now, MAX_LATE)
            .await
            .unwrap()
            .len(),
        4
    );
    crashed.rollback().await.unwrap();
    assert_eq!(fired(&claim(&pool, now).await).len(), 4);
}

#[sqlx::test(migrations = "../../migrations")]
async fn operators_changes_are_recorded_with_their_name(pool: PgPool) {
    let shop = add_shop(&pool, "acme").await;
    let mut conn = pool.acquire().await.unwrap();
    let every5: Cadence = "*/5 * * * *".parse().unwrap();
    let change = schedules::set_cron(
        &mut conn,
        shop,
        Action::OrderIngest,
        "default",
        &every5,
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(
        change,
        Change::Updated {
            previous: "*/15 * * * *".into()
        }
    );
    // The same again: nothing written.
    assert_eq!(
        schedules::set_cron(
            &mut conn,
            shop,
            Action::OrderIngest,
            "default",
            &every5,
            "bob"
        )
        .await
        .unwrap(),
        Change::Unchanged
    );
    // A second entry of an action.
    let nightly: Cadence = "0 3 * * *".parse().unwrap();
    assert_eq!(
        schedules::set_cron(
            &mut conn,
            shop,
            Action::InventorySync,
            "nightly-full",
            &nightly,
            "alice"
        )
        .await
        .unwrap(),
        Change::Created
    );
    let rows = schedules::list(&mut conn, &[shop]).await.unwrap();
    let ingest = rows
        .iter()
        .find(|r| r.action == Action::OrderIngest)
        .unwrap();
    assert_eq!(
        (ingest.cron.as_str(), ingest.updated_by.as_str()),
        ("*/5 * * * *", "alice")
    );
    assert_eq!(rows.len(), DEFAULTS.len() + 1);
    let logged: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT action, message, details FROM api_log WHERE code = 'schedule_changed' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(logged[0].0, "order-ingest");
    assert!(
        logged[0].1.contains("alice")
            && logged[0].1.contains("\"*/15 * * * *\"")
            && logged[0].1.contains("\"*/5 * * * *\""),
        "{}",
        logged[0].1
    );
    assert_eq!(logged[0].2["operator"], "alice");
    assert_eq!(logged[1].0, "inventory-sync");

    schedules::remove(
        &mut conn,
        shop,
        Action::InventorySync,
        "nightly-full",
        "alice",
    )
    .await
    .unwrap();
    assert!(matches!(
        schedules::remove(
            &mut conn,
            shop,
            Action::InventorySync,
            "nightly-full",
            "alice"
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
    // A bad entry name is refused before anything is written.
    assert!(
        schedules::set_cron(
            &mut conn,
            shop,
            Action::OrderIngest,
            "Bad Name",
            &every5,
            "alice"
        )
        .await
        .is_err()
    );
    assert_eq!(
        schedules::list(&mut conn, &[shop]).await.unwrap().len(),
        DEFAULTS.len()
    );
}
