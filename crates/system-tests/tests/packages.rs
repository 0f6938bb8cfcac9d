//! Every package, per shop (issue 21 item 2), against the simulator: a shop that sends every
//! package has each one confirmed with its own carrier, tracking number and items (feed and
//! confirmShipment); the default (the seed's rule) still sends one package with the first
//! tracking number; packages that do not fit the order are refused before anything is sent; a
//! package Amazon refuses fails its instruction although the others were accepted.

#[path = "../../shipment-feedback/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Fixture, fast_feedback, fixture, tracking12};
use domain::packages::{Package, PackageItem};
use domain::shop::ShipmentStrategy;
use spapi_sim::{ItemSpec, OrderSpec, OrderStatus};
use sqlx::PgPool;
use uuid::Uuid;

const A: &str = "11111111111111";
const B: &str = "22222222222222";

/// An unshipped order at the simulator: item A × 3 and item B × 1.
fn order(fx: &Fixture, a_quantity: u32) -> spapi_sim::Order {
    fx.sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            created_time: Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
            items: vec![
                ItemSpec {
                    seller_sku: Some("SKU-A".into()),
                    quantity: Some(a_quantity),
                    order_item_id: Some(A.into()),
                    ..Default::default()
                },
                ItemSpec {
                    seller_sku: Some("SKU-B".into()),
                    quantity: Some(1),
                    order_item_id: Some(B.into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .unwrap()
}

fn package(number: u16, tracking: String, carrier: Option<&str>, items: &[(&str, u32)]) -> Package {
    Package {
        number,
        tracking_number: tracking,
        external_delivery_method: carrier.map(str::to_owned),
        items: items
            .iter()
            .map(|(id, q)| PackageItem {
                order_item_id: (*id).to_owned(),
                quantity: *q,
            })
            .collect(),
    }
}

/// Three packages: A × 2 by Yamato, A × 1 by Sagawa, B × 1 by Yamato.
fn three(n: usize) -> Vec<Package> {
    vec![
        package(1, tracking12(n), None, &[(A, 2)]),
        package(2, tracking12(n + 1), Some("sagawa"), &[(A, 1)]),
        package(3, tracking12(n + 2), None, &[(B, 1)]),
    ]
}

/// A shipped instruction of `order` with `packages` recorded (tracking numbers in package
/// order, as `store::wms::ship_packages` records them).
async fn shipped(fx: &Fixture, order: &spapi_sim::Order, packages: &[Package]) -> Uuid {
    let yamato = fx
        .delivery_method(
            &format!("yamato-{}", Uuid::now_v7().simple()),
            "宅急便",
            Some("yamato"),
        )
        .await;
    let tracking: Vec<&str> = packages
        .iter()
        .map(|p| p.tracking_number.as_str())
        .collect();
    let id = fx
        .shipped_instruction(order, yamato, &tracking, fx.today())
        .await;
    let mut conn = fx.pool.acquire().await.unwrap();
    store::packages::record(&mut conn, id, packages)
        .await
        .unwrap();
    id
}

async fn every_package(fx: &Fixture, on: bool) {
    let mut conn = fx.pool.acquire().await.unwrap();
    store::packages::set_send_every_package(&mut conn, fx.shop.id, on)
        .await
        .unwrap();
}

fn poller(fx: &Fixture) -> feed_poller::Poller {
    feed_poller::Poller::new(
        fx.pool.clone(),
        fx.keys.clone(),
        fx.api(),
        bus::Topology::new(format!("t{}", Uuid::now_v7().simple()), 5),
        feed_poller::Settings {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_millis(500),
            ..Default::default()
        },
    )
}

async fn poll_until_final(fx: &Fixture) {
    let p = poller(fx);
    for _ in 0..100 {
        p.poll(fx.shop.id, None).await.unwrap();
        if fx
            .count("SELECT count(*) FROM feed_submissions WHERE state = 'submitted'")
            .await
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("feeds not final in time");
}

/// A package Amazon holds: tracking number, carrier code, carrier name, items.
type Held = (String, String, Option<String>, Vec<(String, u32)>);

/// The packages Amazon holds for an order, sorted.
fn amazon_packages(fx: &Fixture, order_id: &str) -> Vec<Held> {
    let mut out: Vec<_> = fx
        .sim
        .sim()
        .order(order_id)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| {
            let mut items: Vec<(String, u32)> = p
                .items
                .into_iter()
                .map(|i| (i.order_item_id, i.quantity))
                .collect();
            items.sort();
            (p.tracking_number, p.carrier_code, p.carrier_name, items)
        })
        .collect();
    out.sort();
    out
}

fn expected_three(n: usize) -> Vec<Held> {
    let mut v = vec![
        (
            tracking12(n),
            "YamatoTransport".to_owned(),
            None,
            vec![(A.to_owned(), 2)],
        ),
        (
            tracking12(n + 1),
            "SagawaExpress".to_owned(),
            None,
            vec![(A.to_owned(), 1)],
        ),
        (
            tracking12(n + 2),
            "YamatoTransport".to_owned(),
            None,
            vec![(B.to_owned(), 1)],
        ),
    ];
    v.sort();
    v
}

#[sqlx::test(migrations = "../../migrations")]
async fn three_packages_by_feed_and_one_in_the_default_mode(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let service = fx.service(fast_feedback());

    // Default (the seed's rule): one package, the first tracking number, the whole order.
    let seed_order = order(&fx, 3);
    let seed_id = shipped(&fx, &seed_order, &three(10)).await;
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx).await;
    let held = amazon_packages(&fx, &seed_order.order_id);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, tracking12(10));
    assert_eq!(held[0].3, vec![(A.to_owned(), 3), (B.to_owned(), 1)]);
    assert_eq!(fx.api_status(seed_id).await.0, "shipped");

    // Every package: three messages in one feed, three packages at Amazon with their items.
    every_package(&fx, true).await;
    let every_order = order(&fx, 3);
    let every_id = shipped(&fx, &every_order, &three(20)).await;
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((run.sent, run.refused), (3, 0), "{run:?}");
    assert_eq!(
        fx.count(&format!(
            "SELECT count(DISTINCT feed_submission_id) FROM feed_messages WHERE instruction_id = '{every_id}'"
        ))
        .await,
        1,
        "an instruction's packages go in one feed"
    );
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx).await;
    assert_eq!(
        amazon_packages(&fx, &every_order.order_id),
        expected_three(20)
    );
    assert_eq!(fx.api_status(every_id).await.0, "shipped");
    let status = fx.sim.sim().order(&every_order.order_id).unwrap().status;
    assert_eq!(status, OrderStatus::Shipped);
}

#[sqlx::test(migrations = "../../migrations")]
async fn three_packages_by_confirm_shipment(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::ConfirmShipment).await;
    every_package(&fx, true).await;
    let o = order(&fx, 3);
    let id = shipped(&fx, &o, &three(30)).await;
    let run = fx
        .service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    assert_eq!((run.sent, run.refused, run.failed), (1, 0, 0), "{run:?}");
    assert_eq!(amazon_packages(&fx, &o.order_id), expected_three(30));
    let refs: Vec<String> = fx
        .sim
        .sim()
        .order(&o.order_id)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| p.package_reference_id)
        .collect();
    assert_eq!(refs, vec!["1", "2", "3"]);
    assert_eq!(fx.api_status(id).await.0, "shipped");
}

/// Packages that ship more than was ordered are refused before anything is sent, with what is
/// wrong; a package Amazon refuses (its order changed at Amazon) fails the instruction although
/// the other package was accepted.
#[sqlx::test(migrations = "../../migrations")]
async fn packages_that_do_not_fit_are_refused_and_one_refused_by_amazon_fails_the_instruction(
    pool: PgPool,
) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    every_package(&fx, true).await;
    let service = fx.service(fast_feedback());
    let over = order(&fx, 3);
    let over_id = shipped(
        &fx,
        &over,
        &[
            package(1, tracking12(40), None, &[(A, 2)]),
            package(2, tracking12(41), None, &[(A, 2)]),
        ],
    )
    .await;
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((run.sent, run.refused), (0, 1), "{run:?}");
    let (status, error) = fx.api_status(over_id).await;
    assert_eq!(status, "awaiting_print");
    let error = error.unwrap();
    assert!(
        error.contains(&format!("item {A}: 4 packed over all packages, 3 ordered")),
        "{error}"
    );
    assert!(fx.sim.sim().feeds().is_empty(), "nothing sent");

    // Our lines say A × 3, Amazon's order only A × 1: the second package of A is refused by
    // Amazon, the first accepted; the instruction fails with Amazon's message.
    let changed = order(&fx, 1);
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let packages = [
        package(1, tracking12(50), None, &[(A, 1)]),
        package(2, tracking12(51), None, &[(A, 2)]),
    ];
    let tracking: Vec<&str> = packages
        .iter()
        .map(|p| p.tracking_number.as_str())
        .collect();
    let instruction = fx
        .shipped_instruction(&changed, yamato, &tracking, fx.today())
        .await;
    sqlx::query("UPDATE instruction_lines SET quantity = 3 WHERE instruction_id = $1 AND amazon_order_item_id = $2")
        .bind(instruction)
        .bind(A)
        .execute(&fx.pool)
        .await
        .unwrap();
    let mut conn = fx.pool.acquire().await.unwrap();
    store::packages::record(&mut conn, instruction, &packages)
        .await
        .unwrap();
    drop(conn);
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(run.sent, 2, "{run:?}");
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx).await;
    assert_eq!(amazon_packages(&fx, &changed.order_id).len(), 1);
    let (status, error) = fx.api_status(instruction).await;
    assert_eq!(status, "failed", "{error:?}");
    assert!(error.unwrap().contains("Amazon refused the shipment"));
}

/// An allocated instruction of `order` (nothing has left yet), its lines as ordered.
async fn allocated(fx: &Fixture, order: &spapi_sim::Order) -> Uuid {
    let yamato = fx
        .delivery_method(
            &format!("yamato-{}", Uuid::now_v7().simple()),
            "宅急便",
            Some("yamato"),
        )
        .await;
    let id = fx
        .shipped_instruction(order, yamato, &["000000000000"], fx.today())
        .await;
    sqlx::query(
        "UPDATE shipping_instructions SET status = 'allocated', tracking_numbers = '{}', shipped_on = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&fx.pool)
    .await
    .unwrap();
    id
}

/// `ctl ship --package` as the warehouse records it: the packages that left today.
async fn ship(
    fx: &Fixture,
    order: &spapi_sim::Order,
    packages: &[Package],
) -> Result<store::wms::PackagesShipped, store::StoreError> {
    let mut tx = fx.pool.begin().await.unwrap();
    let shipped =
        store::wms::ship_packages(&mut tx, fx.shop.id, &order.order_id, packages, fx.today())
            .await?;
    tx.commit().await.unwrap();
    Ok(shipped)
}

/// (WMS status, API status) of an instruction.
async fn statuses(fx: &Fixture, id: Uuid) -> (String, String) {
    sqlx::query_as("SELECT status, api_status FROM shipping_instructions WHERE id = $1")
        .bind(id)
        .fetch_one(&fx.pool)
        .await
        .unwrap()
}

/// Each package's state at our side: (number, API status).
async fn package_states(fx: &Fixture, id: Uuid) -> Vec<(i16, String)> {
    sqlx::query_as(
        "SELECT package_no, api_status FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no",
    )
    .bind(id)
    .fetch_all(&fx.pool)
    .await
    .unwrap()
}

/// confirmShipment calls the simulator answered so far.
fn confirm_calls(fx: &Fixture) -> u64 {
    fx.sim
        .sim()
        .call_counts()
        .get("confirmShipment")
        .map_or(0, |c| c.calls)
}

/// Package reference ids Amazon holds for an order, in the order it got them.
fn amazon_refs(fx: &Fixture, order_id: &str) -> Vec<String> {
    fx.sim
        .sim()
        .order(order_id)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| p.package_reference_id)
        .collect()
}

/// A partial shipment, day by day, with `strategy`: line A leaves first (Amazon: one package,
/// the order partially shipped; ours: allocated, 一部出荷済み), a second package of A beyond
/// what remains is refused naming the item, then line B leaves (only that package is sent;
/// Amazon holds both with their items, the order shipped; ours: 出荷済み), and nothing more can
/// be added.
async fn partial_shipment_day_by_day(fx: &Fixture, n: usize) {
    every_package(fx, true).await;
    let service = fx.service(fast_feedback());
    let strategy = fx.shop.shipment_strategy;
    let o = order(fx, 3);
    let id = allocated(fx, &o).await;
    let settle = async || {
        if strategy == ShipmentStrategy::Feed {
            fx.wait_sim_feeds_done().await;
            poll_until_final(fx).await;
        }
    };

    // Day 1: item A × 2 of 3 leaves; B and one A stay.
    let day1 = ship(fx, &o, &[package(1, tracking12(n), None, &[(A, 2)])])
        .await
        .unwrap();
    assert_eq!(day1.packages[0].number, 1);
    assert_eq!(day1.remaining, vec![(A.to_owned(), 1), (B.to_owned(), 1)]);
    assert_eq!(
        statuses(fx, id).await,
        ("allocated".into(), "awaiting_print".into())
    );
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((run.targets, run.sent, run.refused), (1, 1, 0), "{run:?}");
    settle().await;
    assert_eq!(
        amazon_packages(fx, &o.order_id),
        vec![(
            tracking12(n),
            "YamatoTransport".to_owned(),
            None,
            vec![(A.to_owned(), 2)]
        )]
    );
    assert_eq!(amazon_refs(fx, &o.order_id), vec!["1"]);
    assert_eq!(
        fx.sim.sim().order(&o.order_id).unwrap().status,
        OrderStatus::PartiallyShipped
    );
    assert_eq!(
        statuses(fx, id).await,
        ("allocated".into(), "partially_shipped".into())
    );
    assert_eq!(package_states(fx, id).await, vec![(1, "shipped".into())]);
    if strategy == ShipmentStrategy::Feed {
        // The API log names the package, not the order, as confirmed.
        let said: Vec<String> = sqlx::query_scalar(
            "SELECT message FROM api_log WHERE action = 'feed-poller' AND amazon_order_id = $1",
        )
        .bind(&o.order_id)
        .fetch_all(&fx.pool)
        .await
        .unwrap();
        assert_eq!(said, vec!["package 1 confirmed by Amazon".to_owned()]);
    }
    // Nothing new: a later run sends nothing again.
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((run.targets, run.sent), (0, 0), "{run:?}");

    // Day 2: two more of A would be more than remains: refused naming the item, nothing changed.
    let over = ship(fx, &o, &[package(1, tracking12(n + 1), None, &[(A, 2)])])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        over.contains(&format!(
            "item {A}: 2 more packed, only 1 of the 3 ordered remain (2 already in package 1)"
        )),
        "{over}"
    );
    assert_eq!(package_states(fx, id).await.len(), 1);

    // The rest leaves: A × 1 and B × 1 by Sagawa, package 2.
    let rest = ship(
        fx,
        &o,
        &[package(
            1,
            tracking12(n + 2),
            Some("sagawa"),
            &[(A, 1), (B, 1)],
        )],
    )
    .await
    .unwrap();
    assert_eq!((rest.packages[0].number, rest.earlier), (2, 1));
    assert!(rest.remaining.is_empty());
    assert_eq!(
        statuses(fx, id).await,
        ("shipped".into(), "awaiting_print".into())
    );
    let confirmations_before = confirm_calls(fx);
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((run.targets, run.sent, run.refused), (1, 1, 0), "{run:?}");
    if strategy == ShipmentStrategy::ConfirmShipment {
        assert_eq!(
            confirm_calls(fx) - confirmations_before,
            1,
            "package 1 is not confirmed again"
        );
    }
    if strategy == ShipmentStrategy::Feed {
        let sent: Vec<(Option<i16>,)> = sqlx::query_as(
            "SELECT package_no FROM feed_messages WHERE instruction_id = $1 ORDER BY feed_submission_id, message_id",
        )
        .bind(id)
        .fetch_all(&fx.pool)
        .await
        .unwrap();
        assert_eq!(
            sent,
            vec![(Some(1),), (Some(2),)],
            "package 1 is not sent again"
        );
    }
    settle().await;
    let mut expected = vec![
        (
            tracking12(n),
            "YamatoTransport".to_owned(),
            None,
            vec![(A.to_owned(), 2)],
        ),
        (
            tracking12(n + 2),
            "SagawaExpress".to_owned(),
            None,
            vec![(A.to_owned(), 1), (B.to_owned(), 1)],
        ),
    ];
    expected.sort();
    assert_eq!(amazon_packages(fx, &o.order_id), expected);
    assert_eq!(amazon_refs(fx, &o.order_id), vec!["1", "2"]);
    assert_eq!(
        fx.sim.sim().order(&o.order_id).unwrap().status,
        OrderStatus::Shipped
    );
    assert_eq!(statuses(fx, id).await, ("shipped".into(), "shipped".into()));
    assert_eq!(
        package_states(fx, id).await,
        vec![(1, "shipped".into()), (2, "shipped".into())]
    );

    // The order has left whole: a further package is refused.
    let more = ship(fx, &o, &[package(1, tracking12(n + 3), None, &[(B, 1)])])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        more.contains("it left whole with packages 1, 2; no package can be added"),
        "{more}"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn partial_shipment_by_feed(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    partial_shipment_day_by_day(&fx, 60).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn partial_shipment_by_confirm_shipment(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::ConfirmShipment).await;
    partial_shipment_day_by_day(&fx, 70).await;
}

/// A later package Amazon refuses (our lines say A × 3, Amazon's order A × 1 and B × 1, and
/// package 1 took A's one): package 2 fails with Amazon's message while package 1 stays
/// confirmed, the instruction fails and stays allocated; an operator's resend sends package 2
/// only.
#[sqlx::test(migrations = "../../migrations")]
async fn a_refused_later_package_fails_alone_and_only_it_is_resent(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    every_package(&fx, true).await;
    let service = fx.service(fast_feedback());
    let o = order(&fx, 1);
    let id = allocated(&fx, &o).await;
    sqlx::query("UPDATE instruction_lines SET quantity = 3 WHERE instruction_id = $1 AND amazon_order_item_id = $2")
        .bind(id)
        .bind(A)
        .execute(&fx.pool)
        .await
        .unwrap();
    ship(&fx, &o, &[package(1, tracking12(80), None, &[(A, 1)])])
        .await
        .unwrap();
    service.run(fx.shop.id, None, "test").await.unwrap();
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx).await;
    assert_eq!(
        statuses(&fx, id).await,
        ("allocated".into(), "partially_shipped".into())
    );

    ship(&fx, &o, &[package(1, tracking12(81), None, &[(A, 1)])])
        .await
        .unwrap();
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    fx.wait_sim_feeds_done().await;
    poll_until_final(&fx).await;
    assert_eq!(amazon_packages(&fx, &o.order_id).len(), 1);
    let (status, error) = fx.api_status(id).await;
    assert_eq!(status, "failed", "{error:?}");
    assert!(error.unwrap().contains("Amazon refused the shipment"));
    let states: Vec<(i16, String, Option<String>)> = sqlx::query_as(
        "SELECT package_no, api_status, api_error FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no",
    )
    .bind(id)
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(
        (states[0].0, states[0].1.as_str(), states[0].2.as_deref()),
        (1, "shipped", None)
    );
    assert_eq!((states[1].0, states[1].1.as_str()), (2, "failed"));
    assert!(states[1].2.is_some(), "Amazon's message kept: {states:?}");
    assert_eq!(statuses(&fx, id).await.0, "allocated");

    // The operator resends: only package 2 goes again.
    let mut conn = fx.pool.acquire().await.unwrap();
    let asked = store::resend::ask(&mut conn, fx.shop.id, &o.order_id, "alice")
        .await
        .unwrap();
    drop(conn);
    assert_eq!(asked, store::resend::Resend::Requested);
    let run = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(run.sent, 1, "{run:?}");
    let sent: Vec<(Option<i16>,)> = sqlx::query_as(
        "SELECT package_no FROM feed_messages WHERE instruction_id = $1 ORDER BY feed_submission_id, message_id",
    )
    .bind(id)
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(sent, vec![(Some(1),), (Some(2),), (Some(2),)]);
}
