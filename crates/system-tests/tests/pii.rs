//! PII: a canary buyer (unique name, address, phone, e-mail) planted at the simulator goes
//! through import, status sync, shipment feedback, the feed poller and inventory sync; then
//! every captured service log line, every table of the database (outbox payloads and headers,
//! inbox, api_log, action_runs, feed_messages, ...), the events log queue, every work queue and
//! every DLQ is searched. The canary appears nowhere in clear: the instruction holds it sealed
//! (`pii_enc`, opened with the keyring), and after the 30-day purge not at all. The shop's LWA client secret,
//! refresh token and any access token are searched the same way and must appear nowhere.

use std::time::Duration;

use chrono::Utc;
use domain::window::ImportMode;
use spapi_sim::{Address, Buyer, ItemSpec, OrderSpec, OrderStatus, StatusChange};
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::{Svc, System, capture, harness::sku};
use uuid::Uuid;

struct Canary {
    token: String,
    phone: String,
    email: String,
}

impl Canary {
    fn new() -> Canary {
        let t = Uuid::new_v4().simple().to_string();
        let digits: String = t
            .bytes()
            .filter(|b| b.is_ascii_digit())
            .chain(std::iter::repeat(b'7'))
            .take(8)
            .map(char::from)
            .collect();
        Canary {
            token: format!("CANARY{}", &t[..12]),
            phone: format!("+81-90-{}-{}", &digits[..4], &digits[4..]),
            email: format!("canary.{}@marketplace.amazon.co.jp", &t[12..24]),
        }
    }

    fn needles(&self) -> [&str; 3] {
        [&self.token, &self.phone, &self.email]
    }

    fn buyer(&self) -> Buyer {
        Buyer {
            name: format!("山田 {} 花子", self.token),
            email: self.email.clone(),
        }
    }

    fn address(&self) -> Address {
        Address {
            name: format!("{} 様", self.token),
            address_line1: format!("千代田区千代田1-1 {}", self.token),
            address_line2: Some(format!("{} ビル 3F", self.token)),
            city: "千代田区".into(),
            state_or_region: "東京都".into(),
            postal_code: "100-0001".into(),
            country_code: "JP".into(),
            phone: Some(self.phone.clone()),
        }
    }
}

/// Every (place, excerpt) holding a needle in clear.
async fn search_everywhere(sys: &System, needles: &[&str]) -> Vec<String> {
    let mut hits = vec![];
    // Logs of the in-process services.
    let logs = capture::text();
    for n in needles {
        if let Some(at) = logs.find(n) {
            let start = logs[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
            hits.push(format!("log: {}", &logs[start..(at + 80).min(logs.len())]));
        }
    }
    // Every table, every row, rendered as text (shipping_instructions included: its buyer and
    // ship-to data is sealed).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    for t in tables {
        let row_expr = "x::text";
        for n in needles {
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT left({row_expr}, 300) FROM \"{t}\" x WHERE {row_expr} LIKE '%' || $1 || '%' LIMIT 3"
            )))
            .bind(n)
            .fetch_all(&sys.pool)
            .await
            .unwrap();
            for f in found {
                hits.push(format!("table {t}: {f}"));
            }
        }
    }
    // Queues: events log, work queues, DLQs (bodies and headers).
    let mut queues = vec![sys.topology.events_log_queue()];
    for svc in Svc::ALL {
        queues.push(sys.topology.queue(svc.name()));
        queues.push(sys.topology.dlq(svc.name()));
    }
    for q in queues {
        for m in sys.peek_queue(&q).await {
            for n in needles {
                if m.contains(n) {
                    hits.push(format!(
                        "queue {q}: {}",
                        m.chars().take(300).collect::<String>()
                    ));
                }
            }
        }
    }
    hits
}

#[sqlx::test(migrations = "../../migrations")]
async fn pii_canary_is_found_nowhere_in_clear(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let unshipped = Canary::new();
    let pending = Canary::new();
    // The personal order details (issue 21 item 4) carry the canary too: a business buyer's
    // company and purchase order number, the delivery instructions and a gift message.
    let item = |c: &Canary| {
        vec![ItemSpec {
            seller_sku: Some(sku(3)),
            quantity: Some(2),
            gift_message: Some(format!("{} おめでとう", c.token)),
            gift_wrap_level: Some("STANDARD".into()),
            ..Default::default()
        }]
    };
    let business = |c: &Canary| {
        Some(spapi_sim::BusinessBuyer {
            company_name: Some(format!("{} 商事", c.token)),
            purchase_order_number: Some(format!("PO-{}", c.token)),
        })
    };
    let preference =
        |c: &Canary| Some(serde_json::json!({"addressInstruction": format!("{} 裏口", c.token)}));
    // UNSHIPPED: PII arrives with the import.
    let o1 = sys
        .sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            buyer: Some(unshipped.buyer()),
            address: Some(unshipped.address()),
            items: item(&unshipped),
            business: business(&unshipped),
            delivery_preference: preference(&unshipped),
            ..Default::default()
        })
        .unwrap();
    // PENDING: PII arrives with the status sync after payment.
    let o2 = sys
        .sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Pending),
            buyer: Some(pending.buyer()),
            address: Some(pending.address()),
            items: item(&pending),
            business: business(&pending),
            delivery_preference: preference(&pending),
            ..Default::default()
        })
        .unwrap();
    sys.start_all();
    assert_eq!(
        sys.ingest(a.id, ImportMode::Hours { hours: 2 })
            .await
            .status
            .as_str(),
        "succeeded"
    );
    sys.sim
        .sim()
        .set_order_status(&o2.order_id, StatusChange::Unshipped)
        .unwrap();
    assert_eq!(sys.status_sync(a.id).await.status.as_str(), "succeeded");
    assert_eq!(sys.ship_awaiting(&a, 10, None).await, 2);
    assert_eq!(sys.feedback(a.id).await.status.as_str(), "succeeded");
    assert_eq!(sys.inventory(a.id, true).await.status.as_str(), "succeeded");
    sys.drain(Duration::from_secs(60)).await;
    invariants::check(&sys, &Expect::default())
        .await
        .assert_ok();
    assert_eq!(sys.sim.sim().order(&o1.order_id).unwrap().packages.len(), 1);
    assert_eq!(sys.sim.sim().order(&o2.order_id).unwrap().packages.len(), 1);

    // Positive controls: the canaries are where they belong (sealed, and they open with the
    // keyring), the log capture works.
    let mut conn = sys.pool.acquire().await.unwrap();
    for (c, order) in [(&unshipped, &o1), (&pending, &o2)] {
        let id: Uuid = sqlx::query_scalar(
            "SELECT id FROM shipping_instructions WHERE amazon_order_id = $1 AND pii_enc IS NOT NULL",
        )
        .bind(&order.order_id)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        let p = store::pii::read(&mut conn, &crypto::Keyring::for_testing(), id)
            .await
            .unwrap()
            .unwrap();
        for (what, v) in [
            ("company", p.buyer_company.clone()),
            ("purchase order number", p.purchase_order_number.clone()),
            ("delivery preference", p.delivery_preference.clone()),
            ("gift message", p.gift_messages.values().next().cloned()),
        ] {
            assert!(v.unwrap_or_default().contains(&c.token), "{what} stored");
        }
        let (name, addr, phone, email) = (
            p.buyer_name,
            p.ship_to_address,
            p.ship_to_phone,
            p.buyer_email,
        );
        assert!(
            name.unwrap_or_default().contains(&c.token),
            "buyer name stored"
        );
        assert!(
            addr.unwrap_or_default().contains(&c.token),
            "address stored"
        );
        assert_eq!(phone.as_deref(), Some(c.phone.as_str()), "phone stored");
        assert_eq!(email.as_deref(), Some(c.email.as_str()), "email stored");
    }
    drop(conn);
    let logs = capture::text();
    assert!(
        logs.len() > 10_000,
        "log capture works ({} bytes)",
        logs.len()
    );
    assert!(
        logs.contains(&o1.order_id),
        "order ids are logged, so the capture sees service logs"
    );
    assert!(sys.count("SELECT count(*) FROM outbox").await > 0);
    assert!(sys.count("SELECT count(*) FROM api_log").await > 0);
    assert!(sys.count("SELECT count(*) FROM feed_messages").await > 0);

    let mut needles: Vec<&str> = unshipped.needles().to_vec();
    needles.extend(pending.needles());
    // Credentials: never logged, never in a message or a row in plaintext; access tokens
    // (`Atza|…`) neither.
    needles.extend([a.client_secret.as_str(), a.refresh_token.as_str(), "Atza|"]);
    let hits = search_everywhere(&sys, &needles).await;
    assert!(hits.is_empty(), "PII canary leaked:\n{}", hits.join("\n"));

    // 30 days later: the scheduled purge removes it from the instructions too.
    sqlx::query("UPDATE shipping_instructions SET shipped_at = now() - interval '31 days'")
        .execute(&sys.pool)
        .await
        .unwrap();
    let mut conn = sys.pool.acquire().await.unwrap();
    let n = store::pii::purge(&mut conn, chrono::Duration::days(30), Utc::now())
        .await
        .unwrap();
    drop(conn);
    assert_eq!(n, 2);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shipping_instructions x WHERE x::text LIKE '%' || $1 || '%' OR x::text LIKE '%' || $2 || '%'",
    )
    .bind(&unshipped.token)
    .bind(&pending.token)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "purged");
    sys.shutdown().await;
}

type PurgeRow = (
    Option<Vec<u8>>,
    Option<String>,
    Option<chrono::DateTime<Utc>>,
);

#[sqlx::test(migrations = "../../migrations")]
async fn pii_purge_keeps_29_day_old_shipments_and_clears_31_day_old_ones(pool: PgPool) {
    let sys = System::new(pool).await;
    let a = sys.a().clone();
    let mut ids = vec![];
    for (n, days, status) in [
        (1, 31, "shipped"),
        (2, 29, "shipped"),
        (3, 31, "canceled"),
        (4, 29, "canceled"),
        (5, 45, "awaiting_shipment"),
    ] {
        let id = Uuid::now_v7();
        sqlx::query(
            r#"INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, status, payment_status, pii_enc, ship_to_country,
                   shipped_on, shipped_at, updated_at)
               VALUES ($1, $2, $3, $4, 'paid', $6, 'JP',
                   CASE WHEN $4 = 'shipped' THEN (now() - make_interval(days => $5))::date END,
                   CASE WHEN $4 = 'shipped' THEN now() - make_interval(days => $5) END,
                   now() - make_interval(days => $5))"#,
        )
        .bind(id)
        .bind(a.id)
        .bind(format!("503-0000000-000000{n}"))
        .bind(status)
        .bind(days)
        .bind(
            store::pii::PersonalData {
                buyer_name: Some("Buyer".into()),
                ship_to_address: Some("addr".into()),
                ship_to_phone: Some("03-0000-0000".into()),
                ..Default::default()
            }
            .seal(&crypto::Keyring::for_testing(), a.id, id),
        )
        .execute(&sys.pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let mut conn = sys.pool.acquire().await.unwrap();
    let purged = store::pii::purge(&mut conn, chrono::Duration::days(30), Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 2);
    // Idempotent.
    assert_eq!(
        store::pii::purge(&mut conn, chrono::Duration::days(30), Utc::now())
            .await
            .unwrap(),
        0
    );
    drop(conn);
    for (id, expect_purged) in ids.iter().zip([true, false, true, false, false]) {
        let (sealed, country, purged_at): PurgeRow =
            sqlx::query_as("SELECT pii_enc, ship_to_country, pii_purged_at FROM shipping_instructions WHERE id = $1")
                .bind(id)
                .fetch_one(&sys.pool)
                .await
                .unwrap();
        assert_eq!(sealed.is_none(), expect_purged, "{id}");
        assert_eq!(purged_at.is_some(), expect_purged, "{id}");
        assert_eq!(
            country.as_deref(),
            Some("JP"),
            "country kept for statistics"
        );
    }
    sys.cleanup_bus().await;
}
