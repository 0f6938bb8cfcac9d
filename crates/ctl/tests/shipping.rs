//! `ctl carrier`, `ctl allocate`, `ctl ship`, `ctl resend-shipment`, `ctl feeds` against a fresh
//! database (the real binary).

mod common;

use sqlx::PgPool;
use uuid::Uuid;

use common::Env;

#[sqlx::test(migrations = "../../migrations")]
async fn carriers_ship_and_resend(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");

    // Built-in defaults are seeded; a shop overrides one.
    let defaults = env.ok(&["carrier", "list"]);
    for c in [
        "YamatoTransport",
        "SagawaExpress",
        "Japan Post",
        "Seino",
        "Fukuyama",
        "Australia Post",
        "Australia Post-Consignment",
        "Australia Post-ArticleId",
        "Couriers Please",
        "Sendle",
        "StarTrack",
        "Singapore Post",
        "Ninja Van",
        "J&T Express",
    ] {
        assert!(defaults.contains(c), "{c} missing: {defaults}");
    }
    // Each default says the marketplaces it serves; a JP shop (acme) sees only JP's and the
    // international ones.
    let line = |out: &str, key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_owned()
    };
    assert!(line(&defaults, "sendle").contains(" AU "), "{defaults}");
    assert!(line(&defaults, "yamato").contains(" JP "), "{defaults}");
    assert!(line(&defaults, "dhl").contains(" all "), "{defaults}");
    let acme = env.ok(&["carrier", "list", "--shop", "acme"]);
    assert!(acme.contains("yamato ") && acme.contains("dhl "), "{acme}");
    assert!(
        !acme.contains("sendle ") && !acme.contains("ninja_van "),
        "{acme}"
    );
    // A default given to more marketplaces; a bad marketplace is refused naming the valid ones.
    env.ok(&[
        "carrier",
        "add",
        "sendle",
        "--code",
        "Sendle",
        "--markets",
        "AU,JP",
    ]);
    assert!(
        env.ok(&["carrier", "list", "--shop", "acme"])
            .contains("sendle ")
    );
    env.fails(
        &[
            "carrier",
            "add",
            "sendle",
            "--code",
            "Sendle",
            "--markets",
            "US",
        ],
        "expected JP, AU or SG",
    );
    // A carrier not on Amazon's list goes as Other with its name, and ctl says so.
    let note = env.ok(&[
        "carrier",
        "add",
        "kerry",
        "--code",
        "Kerry Express",
        "--shop",
        "acme",
    ]);
    assert!(
        note.contains("not on Amazon's carrier list") && note.contains("\"Kerry Express\""),
        "{note}"
    );
    env.ok(&[
        "carrier",
        "add",
        "yamato",
        "--code",
        "Other",
        "--name",
        "クロネコヤマト",
        "--pattern",
        "^[0-9]{12}$",
        "--shop",
        "acme",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "carrier", "list", "--shop", "acme"])).unwrap();
    let yamato = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["external_delivery_method"] == "yamato")
        .unwrap();
    assert_eq!(yamato["carrier_name"], "クロネコヤマト");
    env.fails(
        &["carrier", "add", "x", "--code", "Other"],
        "needs a carrier name",
    );
    env.fails(
        &["carrier", "add", "x", "--code", "DHL", "--pattern", "(["],
        "not a valid regular expression",
    );
    env.ok(&["carrier", "remove", "yamato", "--shop", "acme"]);
    env.fails(
        &["carrier", "remove", "yamato", "--shop", "acme"],
        "no carrier mapping",
    );

    // WMS: allocate, ship with two tracking numbers.
    let shop_id: Uuid = sqlx::query_scalar("SELECT id FROM shops WHERE code = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, marketplace_id, status) VALUES ($1, $2, '503-1111111-2222222', 'A1VC38T7YXB528', 'awaiting_shipment')",
    )
    .bind(id)
    .bind(shop_id)
    .execute(&pool)
    .await
    .unwrap();
    // An operator's hold (issue 17, item 4), and its release.
    let hold_state = async || -> (String, Option<String>) {
        sqlx::query_as("SELECT status, hold_reason FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    env.ok(&["hold", "--shop", "acme", "503-1111111-2222222"]);
    assert_eq!(hold_state().await, ("hold".into(), Some("operator".into())));
    env.ok(&["hold", "--shop", "acme", "503-1111111-2222222", "--release"]);
    assert_eq!(hold_state().await, ("awaiting_shipment".into(), None));
    env.fails(
        &["hold", "--shop", "acme", "503-1111111-2222222", "--release"],
        "not on hold",
    );
    env.fails(
        &[
            "ship",
            "--shop",
            "acme",
            "503-1111111-2222222",
            "--tracking",
            "123456789012",
        ],
        "allocate it first",
    );
    env.ok(&["allocate", "--shop", "acme", "503-1111111-2222222"]);
    env.ok(&[
        "ship",
        "--shop",
        "acme",
        "503-1111111-2222222",
        "--tracking",
        "123456789012,999999999999",
        "--date",
        "2026-11-27",
    ]);
    let (status, tracking, shipped_on): (String, Vec<String>, chrono::NaiveDate) = sqlx::query_as(
        "SELECT status, tracking_numbers, shipped_on FROM shipping_instructions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "shipped");
    assert_eq!(tracking, vec!["123456789012", "999999999999"]);
    env.fails(
        &["hold", "--shop", "acme", "503-1111111-2222222"],
        "not open",
    );
    assert_eq!(shipped_on.to_string(), "2026-11-27");

    // Resend: only failed (or refused) shipments; marks it a target again.
    sqlx::query("UPDATE shipping_instructions SET api_status = 'printed' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    env.fails(
        &["resend-shipment", "--shop", "acme", "503-1111111-2222222"],
        "still pending",
    );
    sqlx::query(
        "UPDATE shipping_instructions SET api_status = 'failed', api_error = 'x' WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    env.ok(&["resend-shipment", "--shop", "acme", "503-1111111-2222222"]);
    let (api_status, error, resend): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT api_status, api_error, resend_requested_at IS NOT NULL FROM shipping_instructions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (api_status.as_str(), error, resend),
        ("awaiting_print", None, true)
    );

    // Feeds: empty list, unknown feed.
    assert!(
        env.ok(&["feeds", "list", "--shop", "acme"])
            .contains("FEED TYPE")
    );
    env.fails(&["feeds", "show", "12345", "--shop", "acme"], "not found");
}

/// Issue 21 item 2: `ctl ship --package` records the packages as packed (refused with what is
/// wrong when they do not fit the order, nothing changed), and `ctl shop set
/// --send-every-package` switches the shop.
#[sqlx::test(migrations = "../../migrations")]
async fn ship_packages_and_the_every_package_switch(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    let shop_id: Uuid = sqlx::query_scalar("SELECT id FROM shops WHERE code = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, marketplace_id, status) VALUES ($1, $2, '503-1111111-3333333', 'A1VC38T7YXB528', 'allocated')",
    )
    .bind(id)
    .bind(shop_id)
    .execute(&pool)
    .await
    .unwrap();
    for (n, (item, qty)) in [("11111111111111", 3), ("22222222222222", 1)]
        .iter()
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO instruction_lines (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, quantity) VALUES ($1, $2, $3, $4, $5, 'SKU', $6)",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(shop_id)
        .bind(n as i32 + 1)
        .bind(item)
        .bind(qty)
        .execute(&pool)
        .await
        .unwrap();
    }
    let ship = |packages: &[&str]| {
        let mut args = vec!["ship", "--shop", "acme", "503-1111111-3333333"];
        for p in packages {
            args.extend(["--package", p]);
        }
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // Too many of item 1 over the packages: refused, naming the item; nothing shipped.
    let over = ship(&[
        "400000000001:11111111111111=2",
        "400000000002:11111111111111=2",
    ]);
    env.fails(
        &args(&over),
        "11111111111111: 4 packed over all packages, 3 ordered",
    );
    let bad = ship(&["400000000001"]);
    env.fails(&args(&bad), "expected TRACKING[@CARRIER]:ORDER_ITEM_ID=QTY");
    let status: String =
        sqlx::query_scalar("SELECT status FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "allocated");
    let ok = ship(&[
        "400000000001:11111111111111=2",
        "400000000002@sagawa:11111111111111=1",
        "400000000003:22222222222222=1",
    ]);
    env.ok(&args(&ok));
    let (status, tracking): (String, Vec<String>) =
        sqlx::query_as("SELECT status, tracking_numbers FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "shipped");
    assert_eq!(tracking, ["400000000001", "400000000002", "400000000003"]);
    let packages: Vec<(i16, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT package_no, external_delivery_method, items FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(packages.len(), 3);
    assert_eq!(packages[1].1.as_deref(), Some("sagawa"));
    assert_eq!(
        packages[0].2,
        serde_json::json!([{"order_item_id": "11111111111111", "quantity": 2}])
    );

    let every = async || -> bool {
        sqlx::query_scalar("SELECT send_every_package FROM shops WHERE code = 'acme'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(!every().await, "off by default");
    let said = env.ok(&[
        "shop",
        "set",
        "--shop",
        "acme",
        "--send-every-package",
        "true",
    ]);
    assert!(said.contains("every package"), "{said}");
    assert!(every().await);
    env.ok(&[
        "shop",
        "set",
        "--shop",
        "acme",
        "--send-every-package",
        "false",
    ]);
    assert!(!every().await);
    env.fails(
        &["shop", "set", "--shop", "acme"],
        "--keep-amazon-handling-time",
    );
}

/// Issue 21 item 2, partial shipments: for a shop that sends every package, `ctl ship
/// --package` with part of the order leaves the instruction allocated (一部出荷済み) and says
/// what is left; a later `ctl ship --package` adds the rest (numbers continue), checked with the
/// earlier packages (more than remains is refused naming the item); once the order left whole no
/// package can be added.
#[sqlx::test(migrations = "../../migrations")]
async fn ship_a_later_package_of_a_partially_shipped_order(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    env.ok(&[
        "shop",
        "set",
        "--shop",
        "acme",
        "--send-every-package",
        "true",
    ]);
    let shop_id: Uuid = sqlx::query_scalar("SELECT id FROM shops WHERE code = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, marketplace_id, status) VALUES ($1, $2, '503-1111111-5555555', 'A1VC38T7YXB528', 'allocated')",
    )
    .bind(id)
    .bind(shop_id)
    .execute(&pool)
    .await
    .unwrap();
    // Allocated stock of both lines: 10 on hand each, 3 and 1 allocated to this order.
    let mut products = Vec::new();
    for (n, (item, qty)) in [("11111111111111", 3), ("22222222222222", 1)]
        .iter()
        .enumerate()
    {
        let product = Uuid::now_v7();
        products.push(product);
        sqlx::query("INSERT INTO products (id, shop_id, code, name) VALUES ($1, $2, $3, 'P')")
            .bind(product)
            .bind(shop_id)
            .bind(format!("P{n}"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO stock (product_id, shop_id, on_hand, allocated) VALUES ($1, $2, 10, $3)",
        )
        .bind(product)
        .bind(shop_id)
        .bind(qty)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO instruction_lines (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, quantity, product_id) VALUES ($1, $2, $3, $4, $5, 'SKU', $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(shop_id)
        .bind(n as i32 + 1)
        .bind(item)
        .bind(qty)
        .bind(product)
        .execute(&pool)
        .await
        .unwrap();
    }
    let stock = async || -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        for p in &products {
            out.push(
                sqlx::query_as("SELECT on_hand, allocated FROM stock WHERE product_id = $1")
                    .bind(p)
                    .fetch_one(&pool)
                    .await
                    .unwrap(),
            );
        }
        out
    };
    let ship = |package: &str, date: &str| {
        vec![
            "ship",
            "--shop",
            "acme",
            "503-1111111-5555555",
            "--date",
            date,
            "--package",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([package.to_owned()])
        .collect::<Vec<_>>()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    /// (status, tracking numbers, [(package number, day it left)]).
    type State = (String, Vec<String>, Vec<(i16, Option<chrono::NaiveDate>)>);
    let state = async || -> State {
        let (status, tracking): (String, Vec<String>) = sqlx::query_as(
            "SELECT status, tracking_numbers FROM shipping_instructions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let packages = sqlx::query_as(
            "SELECT package_no, shipped_on FROM shipment_packages WHERE instruction_id = $1 ORDER BY package_no",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
        (status, tracking, packages)
    };
    let day1 = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let day2 = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();

    // Day 1: two of item 1 leave.
    let said = env.ok(&args(&ship("400000000011:11111111111111=2", "2026-12-03")));
    assert!(said.contains("partially shipped (一部出荷済み)"), "{said}");
    assert!(
        said.contains("still to ship: 11111111111111 × 1, 22222222222222 × 1"),
        "{said}"
    );
    assert_eq!(
        state().await,
        (
            "allocated".to_owned(),
            vec!["400000000011".to_owned()],
            vec![(1, Some(day1))]
        )
    );
    // What left has left on-hand and allocated; the rest stays allocated.
    assert_eq!(stock().await, vec![(8, 1), (10, 1)]);

    // A buyer's cancellation request cannot be accepted once part has left: refused, nothing
    // released.
    let request = "UPDATE shipping_instructions SET cancel_requested_at = $2 WHERE id = $1";
    let requested = Some(chrono::Utc::now());
    sqlx::query(request)
        .bind(id)
        .bind(requested)
        .execute(&pool)
        .await
        .unwrap();
    env.fails(
        &[
            "cancel-request",
            "accept",
            "--shop",
            "acme",
            "503-1111111-5555555",
        ],
        "has left in part (package 1)",
    );
    assert_eq!(stock().await, vec![(8, 1), (10, 1)]);
    assert_eq!(state().await.0, "allocated");
    sqlx::query(request)
        .bind(id)
        .bind(None::<chrono::DateTime<chrono::Utc>>)
        .execute(&pool)
        .await
        .unwrap();

    // Day 2: two more of item 1 is more than remains: refused naming the item, nothing changed.
    env.fails(
        &args(&ship("400000000012:11111111111111=2", "2026-12-04")),
        "item 11111111111111: 2 more packed, only 1 of the 3 ordered remain (2 already in package 1)",
    );
    assert_eq!(state().await.2.len(), 1);
    assert_eq!(stock().await, vec![(8, 1), (10, 1)]);

    // The rest leaves as package 2: the instruction is shipped on day 2.
    let said = env.ok(&args(&ship(
        "400000000013@sagawa:11111111111111=1,22222222222222=1",
        "2026-12-04",
    )));
    assert!(said.contains("shipped (出荷済み)"), "{said}");
    assert_eq!(
        state().await,
        (
            "shipped".to_owned(),
            vec!["400000000011".to_owned(), "400000000013".to_owned()],
            vec![(1, Some(day1)), (2, Some(day2))]
        )
    );
    let shipped_on: Option<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT shipped_on FROM shipping_instructions WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(shipped_on, Some(day2));
    // As the full ship would have left it: the whole order off on-hand and allocated.
    assert_eq!(stock().await, vec![(7, 0), (9, 0)]);

    // Nothing is left: a further package is refused.
    env.fails(
        &args(&ship("400000000014:22222222222222=1", "2026-12-04")),
        "it left whole with packages 1, 2; no package can be added",
    );
}

/// Issue 21 item 1: `ctl cancel-request accept|decline` decide a buyer's request (recorded with
/// the operator); an order without a request, or one decided already, is refused with why.
#[sqlx::test(migrations = "../../migrations")]
async fn cancel_requests_are_accepted_or_declined(pool: PgPool) {
    let env = Env::new(&pool).await;
    env.add_shop("acme");
    let shop_id: Uuid = sqlx::query_scalar("SELECT id FROM shops WHERE code = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    for (order, requested) in [
        ("503-1111111-4444441", true),
        ("503-1111111-4444442", true),
        ("503-1111111-4444443", false),
    ] {
        sqlx::query(
            "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, marketplace_id, status, hold_reason, cancel_requested_at)
             VALUES ($1, $2, $3, 'A1VC38T7YXB528', 'hold', 'buyer_cancel_request', CASE WHEN $4 THEN now() END)",
        )
        .bind(Uuid::now_v7())
        .bind(shop_id)
        .bind(order)
        .bind(requested)
        .execute(&pool)
        .await
        .unwrap();
    }
    let state = async |order: &str| -> (String, Option<String>, Option<String>, Option<String>) {
        sqlx::query_as(
            "SELECT status, cancel_request_decision, cancel_request_decided_by, cancel_ack FROM shipping_instructions WHERE amazon_order_id = $1",
        )
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let said = env.ok(&[
        "cancel-request",
        "accept",
        "--shop",
        "acme",
        "503-1111111-4444441",
        "--operator",
        "alice",
    ]);
    assert!(said.contains("cancelled"), "{said}");
    assert_eq!(
        state("503-1111111-4444441").await,
        (
            "canceled".into(),
            Some("accepted".into()),
            Some("alice".into()),
            Some("pending".into())
        )
    );
    env.ok(&[
        "cancel-request",
        "decline",
        "--shop",
        "acme",
        "503-1111111-4444442",
    ]);
    assert_eq!(
        state("503-1111111-4444442").await,
        (
            "awaiting_shipment".into(),
            Some("declined".into()),
            Some("ctl".into()),
            None
        )
    );
    env.fails(
        &[
            "cancel-request",
            "accept",
            "--shop",
            "acme",
            "503-1111111-4444441",
        ],
        "already accepted",
    );
    env.fails(
        &[
            "cancel-request",
            "decline",
            "--shop",
            "acme",
            "503-1111111-4444443",
        ],
        "has not asked to cancel",
    );
    env.fails(
        &[
            "cancel-request",
            "accept",
            "--shop",
            "acme",
            "503-9999999-9999999",
        ],
        "no instruction for order",
    );
}
