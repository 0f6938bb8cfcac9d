//! Issue 17, dead letters in the console (デッドレター), against the local RabbitMQ with a queue
//! prefix of each test's own (deleted at the end): a message the service rejected sits in its
//! dead-letter queue; an operator who sees only some shops gets 403 and no menu entry; a console
//! administrator sees it (message id, reason, original routing key, the shop's code, the body
//! escaped) without removing it, and replays it to the work queue with the CSRF token, written to
//! the API log with the operator's name; a forged token or a non-administrator changes nothing;
//! a RabbitMQ that cannot be reached is said in the page.

mod common;

use std::time::Duration;

use bus::lapin::{
    Connection,
    options::{BasicGetOptions, BasicRejectOptions, QueueDeclareOptions},
    types::FieldTable,
};
use common::*;
use sqlx::PgPool;
use uuid::Uuid;

/// Text with markup, quotes and `&`, as in `http.rs`.
fn hostile(tag: &str) -> String {
    format!(r#"{tag} <script>alert(1)</script> "dq" 'sq' & amp"#)
}

/// Ready messages in `queue` (passive declare).
async fn ready(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = ch.close(200, "OK".into()).await;
    q.message_count()
}

/// Waits (10 s at most) until `queue` holds `n` ready messages: dead-lettering, and putting back
/// what a closed channel left unacknowledged, happen asynchronously in the broker.
async fn settle(conn: &Connection, queue: &str, n: u32) {
    for _ in 0..100 {
        if ready(conn, queue).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{queue} holds {} ready messages, expected {n}",
        ready(conn, queue).await
    );
}

/// Runs `body` and then deletes the prefix's queues and exchanges, also when `body` panics.
async fn with_topology<F>(prefix: &str, body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(body).await;
    delete_topology(prefix).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn replay_rows(pool: &PgPool) -> Vec<(Option<Uuid>, String, String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT shop_id, action, message, details FROM api_log WHERE code = 'dlq_replay' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn dead_letters_are_shown_to_admins_and_replayed(pool: PgPool) {
    let prefix = unique_prefix();
    let p = prefix.clone();
    with_topology(&prefix, async move {
        let prefix = p;
        let acme = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
        shop(&pool, "other-jp", "JP", "Asia/Tokyo").await;
        user(&pool, "alice", &["acme-jp"]).await;
        admin(&pool, "root", &["acme-jp"]).await;
        let srv = start(pool.clone(), &prefix).await;

        // A command the service rejected: published to order-ingest's work queue, fetched and
        // rejected without requeue, so RabbitMQ dead-letters it (reason `rejected`).
        let topo = bus::Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
        let conn = bus::connect(bus::DEFAULT_AMQP_URL, "console-test")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let queue = topo
            .declare_service(&ch, "order-ingest", &[])
            .await
            .unwrap();
        let dlq = topo.dlq("order-ingest");
        let id = Uuid::now_v7();
        let publisher = bus::Publisher::new(conn.clone()).await.unwrap();
        publisher
            .publish(&bus::OutgoingMessage {
                message_id: id,
                exchange: String::new(),
                routing_key: queue.clone(),
                payload: serde_json::json!({
                    "message_id": id,
                    "action": "order-ingest",
                    "shop_id": acme,
                    "params": {"note": hostile("PAYLOAD")},
                }),
                headers: Default::default(),
            })
            .await
            .unwrap();
        let got = loop {
            if let Some(got) = ch
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .unwrap()
            {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        got.delivery
            .acker
            .reject(BasicRejectOptions { requeue: false })
            .await
            .unwrap();
        settle(&conn, &dlq, 1).await;

        // An operator who sees only some shops: no menu entry, 403 on the page and the replay.
        let mut alice = Client::new(&srv.base);
        alice.sign_in("alice").await;
        let home = alice.get("/").await;
        assert_eq!(home.status, 200);
        assert!(!home.body.contains("/dead-letters"), "{}", home.body);
        assert!(!home.body.contains("デッドレター"));
        let r = alice.get("/dead-letters").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("コンソール管理者のみ"), "{}", r.body);
        assert!(!r.body.contains(&id.to_string()));
        let alice_csrf = alice.csrf().await;
        let r = alice
            .post(
                "/dead-letters/replay",
                &[("csrf", &alice_csrf), ("service", "order-ingest")],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);

        // The administrator: the menu entry, and the message, peeked (nothing removed).
        let mut root = Client::new(&srv.base);
        root.sign_in("root").await;
        let home = root.get("/").await;
        assert!(
            home.body
                .contains(r#"<a href="/dead-letters">デッドレター</a>"#),
            "{}",
            home.body
        );
        for _ in 0..2 {
            let r = root.get("/dead-letters").await;
            assert_eq!(r.status, 200, "{}", r.body);
            let b = &r.body;
            assert!(b.contains("<h1>デッドレター</h1>"), "{b}");
            let section = &b[b.find(r#"id="dlq-order-ingest""#).expect("section")..];
            let section = &section[..section.find("</section>").unwrap()];
            assert!(section.contains(&id.to_string()), "{section}");
            assert!(
                section.contains(r#"<b class="dlq-count">1</b>"#),
                "{section}"
            );
            assert!(
                section.contains(r#"<code class="reason">rejected</code>"#),
                "{section}"
            );
            assert!(
                section.contains(&format!("<code>{queue}</code>")),
                "{section}"
            );
            assert!(
                section.contains(r#"<td class="shop">acme-jp</td>"#),
                "{section}"
            );
            // The body as JSON (quotes escaped by serde, then by the template), never raw markup.
            assert!(
                section.contains(
                    r"PAYLOAD &lt;script&gt;alert(1)&lt;/script&gt; \&quot;dq\&quot; 'sq' &amp; amp"
                ),
                "{section}"
            );
            assert!(!b.contains("<script>alert"), "not escaped");
            assert!(!b.contains("& amp"), "a raw ampersand");
            // The other four services are there, empty.
            for other in [
                "status-sync",
                "shipment-feedback",
                "inventory-sync",
                "feed-poller",
            ] {
                let at = b
                    .find(&format!(r#"id="dlq-{other}""#))
                    .unwrap_or_else(|| panic!("section {other}"));
                assert!(b[at..].contains(r#"<b class="dlq-count">0</b>"#), "{other}");
            }
            settle(&conn, &dlq, 1).await;
        }
        let en = root.get("/dead-letters?lang=en").await;
        assert!(en.body.contains("<h1>Dead letters</h1>"), "{}", en.body);
        assert!(en.body.contains("rejected by the service"));
        assert_eq!(root.get("/?lang=ja").await.status, 200);

        // A forged CSRF token changes nothing.
        let r = root
            .post(
                "/dead-letters/replay",
                &[("csrf", "forged"), ("service", "order-ingest")],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        settle(&conn, &dlq, 1).await;
        assert_eq!(ready(&conn, &queue).await, 0);
        assert!(replay_rows(&pool).await.is_empty());
        // Only POST: a GET of the replay address is no replay.
        assert_eq!(root.get("/dead-letters/replay").await.status, 405);
        // An unknown service is not found.
        let csrf = root.csrf().await;
        let r = root
            .post(
                "/dead-letters/replay",
                &[("csrf", &csrf), ("service", "shipping")],
            )
            .await;
        assert_eq!(r.status, 404);

        // The replay: back in the work queue, the DLQ empty, the API log names the operator.
        let r = root
            .post(
                "/dead-letters/replay",
                &[("csrf", &csrf), ("service", "order-ingest")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let to = r.location.unwrap();
        assert_eq!(to, "/dead-letters?service=order-ingest&replayed=1&failed=0");
        settle(&conn, &queue, 1).await;
        assert_eq!(ready(&conn, &dlq).await, 0);
        let rows = replay_rows(&pool).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let (shop_id, action, message, details) = &rows[0];
        assert_eq!(*shop_id, None, "the DLQ is per service, not per shop");
        assert_eq!(action, "console");
        assert!(message.contains("root"), "{message}");
        assert_eq!(details["operator"], "root");
        assert_eq!(details["service"], "order-ingest");
        assert_eq!(details["replayed"], 1);
        assert_eq!(details["failed"], 0);
        let page = root.get(&to).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body
                .contains("出荷指示取得 (order-ingest): 1件を作業キューに戻しました。"),
            "{}",
            page.body
        );
        let section = &page.body[page.body.find(r#"id="dlq-order-ingest""#).unwrap()..];
        assert!(section.contains(r#"<b class="dlq-count">0</b>"#));
        let history = &page.body[page.body.find(r#"id="api-log""#).expect("replays")..];
        assert!(
            history.contains("dead letters of order-ingest replayed by root"),
            "{history}"
        );
        // The replayed message is the original one.
        let back = ch
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("replayed into the work queue");
        assert_eq!(
            back.delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            Some(id.to_string())
        );
        let _ = bus::close(&conn).await;
    })
    .await;
}

/// A RabbitMQ that cannot be reached: the page says so (503 with the reason), no bare error.
#[sqlx::test(migrations = "../../migrations")]
async fn unreachable_rabbitmq_is_said_in_the_page(pool: PgPool) {
    admin(&pool, "root", &[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let srv = start_with(
        pool.clone(),
        "test-console-unreachable-",
        &format!("amqp://guest:guest@127.0.0.1:{closed}/%2f"),
    )
    .await;
    let mut root = Client::new(&srv.base);
    root.sign_in("root").await;
    let r = root.get("/dead-letters").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains(r#"id="broker-unreachable""#), "{}", r.body);
    assert!(r.body.contains("RabbitMQ に接続できないため"), "{}", r.body);
    let csrf = root.csrf().await;
    let r = root
        .post(
            "/dead-letters/replay?lang=en",
            &[("csrf", &csrf), ("service", "status-sync")],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("RabbitMQ cannot be reached"), "{}", r.body);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM api_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 0, "nothing was replayed, nothing logged");
}
