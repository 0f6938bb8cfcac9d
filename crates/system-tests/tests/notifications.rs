//! Issue 19, end to end: Amazon (the simulator) delivers ORDER_CHANGE notifications to SQS
//! (moto) at least once and out of order; the listener turns them into status-sync work; the
//! status-sync service applies each order once by `getOrder`, without a single `searchOrders`.
//! Notifications dropped: the sweep (status-sync's differential poll) applies those changes and
//! raises the attention entry.

use std::time::{Duration, Instant};

use domain::window::ImportMode;
use notification_listener::{Listener, Settings};
use serde_json::Value;
use spapi_sim::{MarketplaceMix, OrderStatus, StatusChange};
use sqlx::PgPool;
use system_tests::{ANNOUNCE_GRACE, Svc, System, notify};

/// The destination (a moto queue) and shop A's ORDER_CHANGE subscription, as a seller sets them
/// up through Amazon's API; the connector's record of it. Returns the SQS client and queue URL.
async fn subscribe(sys: &System) -> (aws_sdk_sqs::Client, String) {
    let a = sys.a();
    let (sqs, url, arn) = notify::moto_queue("st-notifications").await;
    let seller = notify::Seller {
        shop_id: a.id,
        client_secret: &a.client_secret,
        refresh_token: &a.refresh_token,
    };
    notify::subscribe(
        &sys.pool,
        &sys.sim.base_url(),
        seller,
        &arn,
        &["ORDER_CHANGE"],
    )
    .await;
    (sqs, url)
}

/// `n` pending JP orders of shop A's seller on the simulator (seed `seed`), imported by the
/// order-ingest service; status-sync runs beside it.
async fn pending_orders_imported(sys: &mut System, n: usize, seed: u64) -> Vec<spapi_sim::Order> {
    let orders = sys.sim.sim().generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        n,
        seed,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 1.0,
        },
    );
    assert!(orders.iter().all(|o| o.status == OrderStatus::Pending));
    sys.start(Svc::OrderIngest);
    sys.start(Svc::StatusSync);
    let run = sys
        .ingest(sys.a().id, ImportMode::Hours { hours: 168 })
        .await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    orders
}

#[sqlx::test(migrations = "../../migrations")]
async fn notifications_delivered_twice_and_out_of_order_apply_each_order_once(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim = sys.sim.sim().clone();
    let orders = pending_orders_imported(&mut sys, 100, 19).await;

    let (sqs, url) = subscribe(&sys).await;

    // Every notification twice, in shuffled batches.
    let mut opts = sim.options();
    opts.notification_duplicate_rate = 1.0;
    opts.notification_reorder = true;
    sim.set_options(opts).unwrap();
    let searches_before = sim.call_counts().get("searchOrders").map_or(0, |c| c.calls);
    for o in &orders[..60] {
        sim.set_order_status(&o.order_id, StatusChange::Unshipped)
            .unwrap();
    }
    for o in &orders[60..80] {
        sim.set_order_status(
            &o.order_id,
            StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: None,
            },
        )
        .unwrap();
    }

    let listener = Listener::new(
        sys.pool.clone(),
        sqs.clone(),
        sys.topology.clone(),
        Settings {
            queue_url: url.clone(),
            dead_letter_queue_url: None,
            wait_seconds: 1,
            max_messages: 10,
            visibility_timeout: 30,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut received, mut duplicates) = (0, 0);
    loop {
        let p = listener.poll_once().await.expect("poll");
        received += p.received;
        duplicates += p.duplicates;
        let paid = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND payment_status = 'paid'",
                a.id
            ))
            .await;
        let canceled = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND status = 'canceled'",
                a.id
            ))
            .await;
        let counter = sim.notification_counter();
        if paid == 60
            && canceled == 20
            && p.received == 0
            && counter.pending == 0
            && received as u64 >= counter.total.sent
        {
            break;
        }
        if Instant::now() >= deadline {
            let runs: Vec<(String, Option<String>, Value, Option<String>)> = sqlx::query_as(
                "SELECT status, mode, counts, error FROM action_runs WHERE action = 'status-sync' ORDER BY started_at",
            )
            .fetch_all(&sys.pool)
            .await
            .unwrap();
            let outbox: Vec<(Value, bool)> =
                sqlx::query_as("SELECT payload, sent_at IS NOT NULL FROM outbox ORDER BY id")
                    .fetch_all(&sys.pool)
                    .await
                    .unwrap();
            panic!(
                "not settled: {paid} paid, {canceled} canceled, {received} received, {counter:?}\nruns: {runs:#?}\noutbox: {outbox:#?}"
            );
        }
    }
    let counter = sim.notification_counter();
    assert_eq!(counter.total.produced, 80, "{counter:?}");
    assert_eq!(
        counter.total.sent, 160,
        "every notification delivered twice"
    );
    assert_eq!((received, duplicates), (160, 80));

    // Each order applied once: the runs' counts add up to exactly the changes.
    sys.drain(Duration::from_secs(60)).await;
    let (paid, canceled): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum((counts->>'paid')::bigint), 0)::bigint, COALESCE(sum((counts->>'canceled')::bigint), 0)::bigint
           FROM action_runs WHERE shop_id = $1 AND action = 'status-sync' AND mode = 'orders'",
    )
    .bind(a.id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!((paid, canceled), (60, 20));
    let recorded = sys
        .count("SELECT count(*) FROM notifications_received WHERE outcome = 'queued'")
        .await;
    assert_eq!(recorded, 80);
    let searches = sim.call_counts().get("searchOrders").map_or(0, |c| c.calls);
    assert_eq!(
        searches, searches_before,
        "no searchOrders: getOrder per announced order"
    );
    sys.shutdown().await;
}

/// Polls the listener until `paid` instructions of shop A are paid and nothing is in flight.
async fn listen_until_paid(sys: &System, listener: &Listener, paid: i64) {
    let a = sys.a().id;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = listener.poll_once().await.expect("poll");
        let now_paid = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{a}' AND payment_status = 'paid'"
            ))
            .await;
        if now_paid == paid && p.received == 0 && sys.sim.sim().notification_counter().pending == 0
        {
            return;
        }
        assert!(Instant::now() < deadline, "{now_paid} of {paid} paid");
    }
}

/// Sets the simulator's drop rate for the notifications it delivers from now on.
fn drop_rate(sys: &System, rate: f64) {
    let sim = sys.sim.sim();
    let mut opts = sim.options();
    opts.notification_drop_rate = rate;
    sim.set_options(opts).unwrap();
}

/// Waits until the simulator dropped `dropped` notifications in all.
async fn wait_dropped(sys: &System, dropped: u64) {
    let sim = sys.sim.sim();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.notification_counter().total.dropped < dropped {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            sim.notification_counter()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Must show (issue 19): notifications dropped for 10 orders; the sweep — status-sync's
/// `lastUpdatedAfter` poll, run at a low cadence while the shop is subscribed — applies them
/// and raises one attention entry naming them. The 10 announced orders are applied by the
/// notifications and not named; 5 dropped just before the sweep are applied but not called
/// missed yet (their notification may still be on its way: the grace); a second sweep adds
/// nothing.
#[sqlx::test(migrations = "../../migrations")]
async fn dropped_notifications_are_applied_by_the_sweep_and_raise_attention(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim = sys.sim.sim().clone();
    let orders = pending_orders_imported(&mut sys, 30, 23).await;
    let (sqs, url) = subscribe(&sys).await;
    let listener = Listener::new(
        sys.pool.clone(),
        sqs,
        sys.topology.clone(),
        Settings {
            queue_url: url,
            dead_letter_queue_url: None,
            wait_seconds: 1,
            max_messages: 10,
            visibility_timeout: 30,
        },
    );
    let paid = |o: &spapi_sim::Order| sim.set_order_status(&o.order_id, StatusChange::Unshipped);

    // 10 payments whose notifications Amazon never delivers.
    drop_rate(&sys, 1.0);
    for o in &orders[..10] {
        paid(o).unwrap();
    }
    wait_dropped(&sys, 10).await;
    drop_rate(&sys, 0.0);
    // 10 payments announced as usual: the listener and status-sync apply them.
    for o in &orders[10..20] {
        paid(o).unwrap();
    }
    listen_until_paid(&sys, &listener, 10).await;
    // The dropped ones grow older than the grace; 5 more are dropped just before the sweep.
    tokio::time::sleep(
        (ANNOUNCE_GRACE + chrono::Duration::seconds(1))
            .to_std()
            .unwrap(),
    )
    .await;
    drop_rate(&sys, 1.0);
    for o in &orders[20..25] {
        paid(o).unwrap();
    }
    wait_dropped(&sys, 15).await;

    let sweep = sys.status_sync(a.id).await;
    assert_eq!(sweep.status.as_str(), "succeeded", "{sweep:?}");
    assert_eq!(sweep.counts["paid"], 15, "{sweep:?}");
    assert_eq!(sweep.counts["unannounced"], 10, "{sweep:?}");
    let paid_now = sys
        .count(&format!(
            "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND payment_status = 'paid'",
            a.id
        ))
        .await;
    assert_eq!(paid_now, 25);
    let entries: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT message, amazon_order_id FROM api_log WHERE shop_id = $1 AND code = 'notifications_missed'",
    )
    .bind(a.id)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let message = &entries[0].0;
    for o in &orders[..10] {
        assert!(
            message.contains(&o.order_id),
            "{} not named: {message}",
            o.order_id
        );
    }
    for o in &orders[10..25] {
        assert!(
            !message.contains(&o.order_id),
            "{} named: {message}",
            o.order_id
        );
    }
    assert!(message.contains("ctl notifications status"), "{message}");

    // Nothing left to apply: the next sweep changes nothing and raises nothing.
    let again = sys.status_sync(a.id).await;
    assert_eq!(again.counts["paid"], 0, "{again:?}");
    let entries = sys
        .count("SELECT count(*) FROM api_log WHERE code = 'notifications_missed'")
        .await;
    assert_eq!(entries, 1);
    // Each order applied once over every mode.
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum((counts->>'paid')::bigint), 0)::bigint FROM action_runs WHERE shop_id = $1 AND action = 'status-sync'",
    )
    .bind(a.id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(total, 25);
    sys.shutdown().await;
}

/// Messages in the queue, visible or not (received and not deleted yet).
async fn in_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> i64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// The listener program as a process against the system's database and bus prefix.
fn spawn_listener(sys: &System, queue_url: &str, env: &[(&str, &str)]) -> tokio::process::Child {
    let pe = system_tests::processes::ProcEnv::of(sys);
    let mut cmd =
        tokio::process::Command::new(system_tests::processes::binary("notification-listener"));
    cmd.env("DATABASE_URL", &pe.database_url)
        .env("AMQP_URL", &pe.amqp_url)
        .env("BUS_PREFIX", &pe.prefix)
        .env("SQS_QUEUE_URL", queue_url)
        .env("SQS_ENDPOINT", spapi_sim::default_sqs_endpoint())
        .env("AWS_REGION", "us-west-2")
        .env("SQS_WAIT_SECONDS", "1")
        .env("SQS_VISIBILITY_SECONDS", "3")
        .env("RUST_LOG", "warn")
        .env_remove(notification_listener::FAIL_POINT_ENV)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start notification-listener")
}

/// Must show (issue 19): the listener killed with SIGKILL between receiving and deleting loses
/// nothing and applies nothing twice. A fail point stops the program right after it committed
/// a receive's records and commands, before it deleted the messages from SQS; the test
/// SIGKILLs it there. The restarted listener receives those messages again (after their
/// visibility timeout), finds them recorded, writes no second command and deletes them.
#[sqlx::test(migrations = "../../migrations")]
async fn listener_sigkilled_between_commit_and_delete_loses_and_repeats_nothing(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim = sys.sim.sim().clone();
    let orders = pending_orders_imported(&mut sys, 20, 29).await;
    let (sqs, url) = subscribe(&sys).await;
    for o in &orders {
        sim.set_order_status(&o.order_id, StatusChange::Unshipped)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.notification_counter().total.sent < 20 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            sim.notification_counter()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let t0 = Instant::now();
    let mut held = spawn_listener(
        &sys,
        &url,
        &[(
            notification_listener::FAIL_POINT_ENV,
            notification_listener::HOLD_AFTER_COMMIT,
        )],
    );
    let recorded = "SELECT count(*) FROM notifications_received";
    let deadline = Instant::now() + Duration::from_secs(60);
    while sys.count(recorded).await == 0 {
        assert!(
            held.try_wait().unwrap().is_none(),
            "the listener exited before its fail point"
        );
        assert!(Instant::now() < deadline, "the listener committed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Committed, not deleted: SIGKILL it there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.start_kill().unwrap();
    held.wait().await.unwrap();
    let first_batch = sys.count(recorded).await;
    println!(
        "{:?} killed after the first batch ({first_batch})",
        t0.elapsed()
    );
    assert!((1..=10).contains(&first_batch), "{first_batch}");
    assert_eq!(
        in_queue(&sqs, &url).await,
        20,
        "the held batch is still in SQS"
    );

    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin_addr = format!("127.0.0.1:{admin_port}");
    let mut listener = spawn_listener(&sys, &url, &[("ADMIN_ADDR", &admin_addr)]);
    // Up to a minute more when the killed listener's own outbox relay had claimed its command
    // (the claim lease must run out before another relay publishes it).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let paid = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}' AND payment_status = 'paid'",
                a.id
            ))
            .await;
        if paid == 20 && in_queue(&sqs, &url).await == 0 {
            break;
        }
        assert!(
            listener.try_wait().unwrap().is_none(),
            "the listener exited"
        );
        assert!(Instant::now() < deadline, "{paid} of 20 paid");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{:?} all paid, queue empty", t0.elapsed());
    // Its admin server: the probes deploy/ declares, and the redelivered batch counted as
    // duplicates in /metrics.
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let (http, admin_addr) = (http.clone(), admin_addr.clone());
        async move {
            let r = http
                .get(format!("http://{admin_addr}{path}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/livez").await.0, 200);
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            r#"connector_notifications_total{{outcome="duplicate"}} {first_batch}"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"connector_notifications_total{{outcome="queued"}} {}"#,
            20 - first_batch
        )),
        "{metrics}"
    );
    // SIGTERM: it finishes the receive in hand and exits 0.
    let pid = listener.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let exited = tokio::time::timeout(Duration::from_secs(30), listener.wait())
        .await
        .expect("the listener stops within 30 s of SIGTERM")
        .unwrap();
    assert!(exited.success(), "{exited:?}");
    println!("{:?} stopped by SIGTERM", t0.elapsed());

    // Each notification recorded once, each order in exactly one status-sync command (a command
    // the runner writes again for later, when another run held the lease, has a later
    // `not_before` and is not counted), each payment applied once.
    assert_eq!(
        sys.count("SELECT count(*) FROM notifications_received WHERE outcome = 'queued'")
            .await,
        20
    );
    let commands: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key LIKE '%status-sync' AND payload::text LIKE '%status_sync_orders%' AND not_before <= created_at",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    let mut announced: Vec<String> = commands
        .iter()
        .flat_map(|c| {
            c["params"]["order_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    announced.sort();
    let mut expected: Vec<String> = orders.iter().map(|o| o.order_id.clone()).collect();
    expected.sort();
    assert_eq!(
        announced, expected,
        "every order in one command, none twice: {commands:#?}"
    );
    sys.drain(Duration::from_secs(60)).await;
    let applied: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum((counts->>'paid')::bigint), 0)::bigint FROM action_runs WHERE shop_id = $1 AND action = 'status-sync'",
    )
    .bind(a.id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(applied, 20);
    sys.shutdown().await;
}

/// Issue 20: while the shop is subscribed, order-ingest's differential run asks Amazon for the
/// orders created since its last run (new orders only: nothing goes through the order mirror),
/// and status-sync's sweep reads only cancellations from the mirror, then checks the unpaid
/// instructions with `getOrder`: a payment and a cancellation whose notifications were lost are
/// both applied, and the mirror holds the cancelled order alone.
#[sqlx::test(migrations = "../../migrations")]
async fn with_notifications_ingest_asks_for_new_orders_and_the_sweep_for_cancellations(
    pool: PgPool,
) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim = sys.sim.sim().clone();
    let _queue = subscribe(&sys).await;
    let orders = sim.generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        6,
        29,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 1.0,
        },
    );
    sys.start(Svc::OrderIngest);
    sys.start(Svc::StatusSync);
    let run = sys.ingest(a.id, ImportMode::Differential).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    assert_eq!(run.counts["new"], 6, "{run:?}");
    let mirror_sql = format!(
        "SELECT count(*) FROM order_mirror WHERE shop_id = '{}'",
        a.id
    );
    assert_eq!(
        sys.count(&mirror_sql).await,
        0,
        "the new-orders poll wrote the mirror"
    );

    // Amazon: 2 paid and 1 cancelled, every notification lost.
    drop_rate(&sys, 1.0);
    for o in &orders[..2] {
        sim.set_order_status(&o.order_id, StatusChange::Unshipped)
            .unwrap();
    }
    sim.set_order_status(
        &orders[2].order_id,
        StatusChange::Cancelled {
            cancelled_by: Some("BUYER".into()),
            reason: None,
        },
    )
    .unwrap();
    wait_dropped(&sys, 3).await;
    // The instructions' Amazon state grows older than the grace.
    tokio::time::sleep(
        (ANNOUNCE_GRACE + chrono::Duration::seconds(1))
            .to_std()
            .unwrap(),
    )
    .await;
    let get_order = |sim: &spapi_sim::Sim| sim.call_counts().get("getOrder").map_or(0, |c| c.calls);
    let before = get_order(&sim);
    let sweep = sys.status_sync(a.id).await;
    assert_eq!(sweep.status.as_str(), "succeeded", "{sweep:?}");
    assert_eq!(sweep.counts["paid"], 2, "{sweep:?}");
    assert_eq!(sweep.counts["canceled"], 1, "{sweep:?}");
    // One getOrder per unpaid instruction (the cancelled one is no longer open).
    assert_eq!(get_order(&sim) - before, 5, "{sweep:?}");
    assert_eq!(
        sys.count(&mirror_sql).await,
        1,
        "the sweep asked for more than cancellations"
    );
    let canceled: String = sqlx::query_scalar(
        "SELECT status FROM shipping_instructions WHERE shop_id = $1 AND amazon_order_id = $2",
    )
    .bind(a.id)
    .bind(&orders[2].order_id)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(canceled, "canceled");
    // The next sweep finds the checked ones checked: no getOrder until the grace passes.
    let before = get_order(&sim);
    let again = sys.status_sync(a.id).await;
    assert_eq!(again.counts["paid"], 0, "{again:?}");
    assert_eq!(get_order(&sim), before, "{again:?}");
}
