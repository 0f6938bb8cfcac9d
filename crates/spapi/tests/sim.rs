//! The client against the simulator (`spapi-sim`, an independent reading of Amazon's contract),
//! with the shared rate limiter in a fresh Postgres database per test.

use std::time::{Duration, Instant};

use chrono::Utc;
use spapi::feeds::{
    CreateFeedSpecification, GetFeedsParams, JSON_CONTENT_TYPE, JSON_LISTINGS_FEED,
    POST_ORDER_FULFILLMENT_DATA, ProcessingStatus, XML_CONTENT_TYPE,
};
use spapi::fulfillment_feed::{
    Carrier, FulfillmentItem, ShipmentConfirmation, build_fulfillment_feed,
};
use spapi::listings::{
    ListingsIncludedData, ListingsItemPatchRequest, PatchOptions, SubmissionStatus,
};
use spapi::listings_feed::{InventoryUpdate, ListingsFeedOptions, build_listings_feeds};
use spapi::orders::{FulfillmentStatus, IncludedData, SearchOrdersParams};
use spapi::orders_v0::{ConfirmShipmentOrderItem, ConfirmShipmentRequest, PackageDetail};
use spapi::reports::{MessageStatus, parse_processing_report};
use spapi::{
    AuthorizationKind, ClientConfig, Credentials, Endpoints, Error, ErrorClass, RetryPolicy, Shop,
    ShopConfig, SpApi, TransportKind,
};
use spapi_sim::{
    DEFAULT_SELLER_ID, Fault, FaultTrigger, MARKETPLACE_JP, OrderStatus, RunningSim, SimConfig,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const CLIENT_ID: &str = "amzn1.application-oa2-client.connector-test";

fn config(rate_scale: f64) -> ClientConfig {
    ClientConfig {
        rate_scale,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
        request_timeout: Duration::from_secs(5),
        max_limiter_wait: Duration::from_secs(10),
        ..ClientConfig::default()
    }
}

fn shop_config(sim: &RunningSim, refresh_token: &str) -> ShopConfig {
    ShopConfig::new(
        DEFAULT_SELLER_ID,
        Credentials::new(CLIENT_ID, "client-secret", refresh_token),
    )
    .with_endpoints(Endpoints::simulator(&sim.base_url()).unwrap())
}

async fn sim(config: SimConfig) -> RunningSim {
    spapi_sim::spawn(config).await.expect("simulator starts")
}

fn jp() -> Vec<String> {
    vec![MARKETPLACE_JP.to_owned()]
}

fn some_sku(sim: &RunningSim) -> String {
    sim.sim()
        .listings()
        .into_iter()
        .find(|l| l.seller_id == DEFAULT_SELLER_ID)
        .expect("the simulator seeds a catalog")
        .sku
}

fn sim_calls(sim: &RunningSim, op: &str) -> spapi_sim::CallCount {
    sim.sim().call_counts().get(op).cloned().unwrap_or_default()
}

/// Uploads `body`, creates a JP `feed_type` feed of it, lets the simulator finish it (DONE) and
/// returns its processing report's document.
async fn feed_result(
    shop: &Shop,
    sim: &spapi_sim::Sim,
    feed_type: &str,
    content_type: &str,
    body: Vec<u8>,
) -> spapi::feeds::FeedDocument {
    let doc = shop
        .prepare_feed_document(content_type, body)
        .await
        .unwrap();
    let created = shop
        .create_feed(&CreateFeedSpecification {
            feed_type: feed_type.into(),
            marketplace_ids: jp(),
            input_feed_document_id: doc.feed_document_id,
            feed_options: None,
        })
        .await
        .unwrap();
    sim.complete_feeds();
    let done = shop.get_feed(&created.feed_id).await.unwrap();
    assert_eq!(done.processing_status, ProcessingStatus::Done);
    shop.get_feed_document(done.result_feed_document_id.as_deref().unwrap())
        .await
        .unwrap()
}

async fn get_item(shop: &Shop, sku: &str) -> Result<spapi::listings::ListingsItem, Error> {
    shop.get_listings_item(
        sku,
        &jp(),
        &[ListingsIncludedData::FulfillmentAvailability],
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// LWA
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrations = "../../migrations")]
async fn token_is_refreshed_before_expiry_and_once_on_403(pool: PgPool) {
    let sim = sim(SimConfig {
        token_lifetime: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh-1"));
    let sku = some_sku(&sim);

    get_item(&shop, &sku).await.unwrap();
    assert_eq!(shop.token_refreshes(), 1);
    get_item(&shop, &sku).await.unwrap();
    assert_eq!(shop.token_refreshes(), 1, "cached");

    // A 2 s token is refreshed after half its life, before Amazon would refuse it.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    get_item(&shop, &sku).await.unwrap();
    assert_eq!(shop.token_refreshes(), 2, "refreshed ahead of expiry");
    assert_eq!(sim_calls(&sim, "getListingsItem").by_status.get(&403), None);

    // Amazon says the token is expired: refreshed once, the call succeeds.
    sim.sim().expire_access_tokens();
    let item = get_item(&shop, &sku).await.unwrap();
    assert_eq!(item.sku, sku);
    assert_eq!(shop.token_refreshes(), 3);
    assert_eq!(
        sim_calls(&sim, "getListingsItem").by_status.get(&403),
        Some(&1)
    );
    assert_eq!(sim_calls(&sim, "lwaToken").calls, 3);
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_calls_share_one_token_refresh(pool: PgPool) {
    let sim = sim(SimConfig::default()).await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let sku = some_sku(&sim);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        // Separate handles for the same credentials share the cache.
        let shop = api.shop(shop_config(&sim, "Atzr|shared"));
        let sku = sku.clone();
        tasks.push(tokio::spawn(async move { get_item(&shop, &sku).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(sim_calls(&sim, "lwaToken").calls, 1, "no stampede on LWA");
}

/// A service builds a new shop handle per message; the access token must survive the handle,
/// or every message would cost an LWA call.
#[sqlx::test(migrations = "../../migrations")]
async fn token_outlives_the_shop_handle(pool: PgPool) {
    let sim = sim(SimConfig::default()).await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let sku = some_sku(&sim);
    for _ in 0..5 {
        let shop = api.shop(shop_config(&sim, "Atzr|per-message"));
        get_item(&shop, &sku).await.unwrap();
        drop(shop);
    }
    assert_eq!(
        sim_calls(&sim, "lwaToken").calls,
        1,
        "one token for five messages"
    );
    // Other credentials get their own token.
    get_item(&api.shop(shop_config(&sim, "Atzr|another")), &sku)
        .await
        .unwrap();
    assert_eq!(sim_calls(&sim, "lwaToken").calls, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn invalid_grant_and_invalid_client_are_authorization_errors(pool: PgPool) {
    let sim = sim(SimConfig::default()).await;
    sim.sim().register_seller(
        CLIENT_ID,
        "client-secret",
        "Atzr|current",
        DEFAULT_SELLER_ID,
    );
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let sku = some_sku(&sim);

    // The seller revoked the authorization: the old refresh token is refused.
    let revoked = api.shop(shop_config(&sim, "Atzr|revoked"));
    let err = get_item(&revoked, &sku).await.unwrap_err();
    let Error::Authorization { kind, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(kind, &AuthorizationKind::InvalidGrant);
    assert!(!message.is_empty());
    assert!(err.needs_reauthorization());
    assert_eq!(err.class(), ErrorClass::Reauthorize);
    assert!(!err.is_retryable());
    assert!(
        !err.to_string().contains("Atzr|revoked"),
        "no secrets in messages"
    );
    assert_eq!(sim_calls(&sim, "lwaToken").calls, 1, "never retried");
    assert_eq!(sim_calls(&sim, "getListingsItem").calls, 0);
    // A second call asks LWA again (once), it does not loop.
    let err = revoked.authorize().await.unwrap_err();
    assert!(err.needs_reauthorization());
    assert_eq!(sim_calls(&sim, "lwaToken").calls, 2);

    // The client secret was rotated.
    let rotated = api.shop(
        ShopConfig::new(
            DEFAULT_SELLER_ID,
            Credentials::new(CLIENT_ID, "old-secret", "Atzr|current"),
        )
        .with_endpoints(Endpoints::simulator(&sim.base_url()).unwrap()),
    );
    let err = get_item(&rotated, &sku).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Authorization {
                kind: AuthorizationKind::InvalidClient,
                ..
            }
        ),
        "{err:?}"
    );

    // The right credentials work.
    let ok = api.shop(shop_config(&sim, "Atzr|current"));
    get_item(&ok, &sku).await.unwrap();
    assert!(!ok.uses_next_secret());

    // During a rotation the new secret is staged: once LWA refuses the old one, the client
    // switches to the staged one and keeps it.
    let staged = api.shop(
        ShopConfig::new(
            DEFAULT_SELLER_ID,
            Credentials::new(CLIENT_ID, "old-secret", "Atzr|current")
                .with_next_secret(Some("client-secret".to_owned().into())),
        )
        .with_endpoints(Endpoints::simulator(&sim.base_url()).unwrap()),
    );
    let before = sim_calls(&sim, "lwaToken").calls;
    get_item(&staged, &sku).await.unwrap();
    assert!(staged.uses_next_secret(), "the staged secret is in use");
    assert_eq!(
        sim_calls(&sim, "lwaToken").calls - before,
        2,
        "one refusal, one success"
    );
    assert!(
        !format!(
            "{:?}",
            Credentials::new(CLIENT_ID, "old-secret", "r")
                .with_next_secret(Some("nextsecret".to_owned().into()))
        )
        .contains("nextsecret"),
        "Debug redacts the staged secret"
    );
    // A staged secret that LWA refuses too is the same authorization error, not a loop.
    let both_wrong = api.shop(
        ShopConfig::new(
            DEFAULT_SELLER_ID,
            Credentials::new(CLIENT_ID, "old-secret", "Atzr|current")
                .with_next_secret(Some("also-wrong".to_owned().into())),
        )
        .with_endpoints(Endpoints::simulator(&sim.base_url()).unwrap()),
    );
    let before = sim_calls(&sim, "lwaToken").calls;
    let err = get_item(&both_wrong, &sku).await.unwrap_err();
    assert!(err.needs_reauthorization(), "{err:?}");
    assert_eq!(sim_calls(&sim, "lwaToken").calls - before, 2);
    assert!(!both_wrong.uses_next_secret());
}

// ---------------------------------------------------------------------------------------------
// Shared rate limiter
// ---------------------------------------------------------------------------------------------

/// getListingsItem: 5 rps, burst 10; ×2 in the simulator and the client.
const SCALE: f64 = 2.0;
const CALLS_PER_TASK: usize = 2;
const TASKS: usize = 25;

fn theoretical_secs() -> f64 {
    // Amazon's bucket: (calls − burst) / rate. The client keeps one token in reserve.
    ((TASKS * CALLS_PER_TASK) as f64 - 10.0) / (5.0 * SCALE)
}

async fn hammer(shops: Vec<Shop>, sku: String) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let shop = shops[n % shops.len()].clone();
        let sku = sku.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLS_PER_TASK {
                get_item(&shop, &sku).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

#[sqlx::test(migrations = "../../migrations")]
async fn parallel_tasks_get_zero_429s_at_the_bucket_rate(pool: PgPool) {
    let sim = sim(SimConfig {
        rate_scale: SCALE,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(pool, config(SCALE)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    shop.authorize().await.unwrap();
    let elapsed = hammer(vec![shop], some_sku(&sim)).await;

    let sim_count = sim_calls(&sim, "getListingsItem");
    assert_eq!(sim_count.throttled, 0, "{sim_count:?}");
    assert_eq!(sim_count.calls, (TASKS * CALLS_PER_TASK) as u64);
    let stats = api.stats();
    assert_eq!(stats.total_throttled(), 0);
    assert_eq!(
        stats.get("getListingsItem").calls,
        (TASKS * CALLS_PER_TASK) as u64
    );
    let theory = theoretical_secs();
    eprintln!("{TASKS} tasks × {CALLS_PER_TASK} calls: {elapsed:.2}s (bucket: {theory:.2}s)");
    assert!(
        elapsed >= theory - 0.1,
        "faster than the bucket allows: {elapsed:.2}s"
    );
    assert!(
        elapsed <= theory + 1.5,
        "too slow: {elapsed:.2}s vs {theory:.2}s"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_clients_with_their_own_pools_share_the_quota(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let sim = sim(SimConfig {
        rate_scale: SCALE,
        ..SimConfig::default()
    })
    .await;
    // Two "processes": two pools, two clients, one database.
    let pool_a = pool_options
        .clone()
        .max_connections(4)
        .connect_with(connect_options.clone())
        .await
        .unwrap();
    let pool_b = pool_options
        .max_connections(4)
        .connect_with(connect_options)
        .await
        .unwrap();
    let api_a = SpApi::new(pool_a, config(SCALE)).unwrap();
    let api_b = SpApi::new(pool_b, config(SCALE)).unwrap();
    let shop_a = api_a.shop(shop_config(&sim, "Atzr|refresh"));
    let shop_b = api_b.shop(shop_config(&sim, "Atzr|refresh"));
    shop_a.authorize().await.unwrap();
    shop_b.authorize().await.unwrap();
    let elapsed = hammer(vec![shop_a, shop_b], some_sku(&sim)).await;

    let sim_count = sim_calls(&sim, "getListingsItem");
    assert_eq!(sim_count.throttled, 0, "{sim_count:?}");
    assert_eq!(
        api_a.stats().total_throttled() + api_b.stats().total_throttled(),
        0
    );
    let calls =
        api_a.stats().get("getListingsItem").calls + api_b.stats().get("getListingsItem").calls;
    assert_eq!(calls, (TASKS * CALLS_PER_TASK) as u64);
    assert!(
        api_a.stats().get("getListingsItem").calls > 0
            && api_b.stats().get("getListingsItem").calls > 0
    );
    let theory = theoretical_secs();
    eprintln!("two clients: {elapsed:.2}s (bucket: {theory:.2}s)");
    assert!(
        elapsed >= theory - 0.1 && elapsed <= theory + 1.5,
        "{elapsed:.2}s"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn long_waits_become_throttled_errors(pool: PgPool) {
    let sim = sim(SimConfig::default()).await;
    let api = SpApi::new(
        pool,
        ClientConfig {
            max_limiter_wait: Duration::from_millis(500),
            ..config(1.0)
        },
    )
    .unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let params = SearchOrdersParams::created(Utc::now() - chrono::Duration::days(1), None);
    // searchOrders: burst 20 (19 kept by the client), then one call every ~3 minutes.
    for _ in 0..19 {
        shop.search_orders(&params).await.unwrap();
    }
    let started = Instant::now();
    let err = shop.search_orders(&params).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(400));
    let retry_at = err.retry_at().expect("throttled with a time");
    assert_eq!(err.class(), ErrorClass::Throttled);
    let ahead = (retry_at - Utc::now()).num_seconds();
    assert!((170..=180).contains(&ahead), "{ahead}");
    assert_eq!(sim_calls(&sim, "searchOrders").throttled, 0);
}

// ---------------------------------------------------------------------------------------------
// Retries and faults
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrations = "../../migrations")]
async fn transient_faults_are_retried_a_bounded_number_of_times(pool: PgPool) {
    let sim = sim(SimConfig {
        unlimited: true,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(
        pool,
        ClientConfig {
            request_timeout: Duration::from_millis(400),
            ..config(1.0)
        },
    )
    .unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let sku = some_sku(&sim);
    let s = sim.sim();
    shop.authorize().await.unwrap();
    let op = "getListingsItem";

    // A few failures are absorbed.
    for fault in [
        Fault::Status { status: 500 },
        Fault::Status { status: 503 },
        Fault::Status { status: 429 },
        Fault::MalformedJson,
        Fault::ConnectionReset,
        Fault::Latency { ms: 1500 },
    ] {
        api.take_stats();
        s.inject_fault(op, fault.clone(), FaultTrigger::Count(2))
            .unwrap();
        let item = get_item(&shop, &sku)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(item.sku, sku);
        let stats = api.take_stats().get(op);
        assert_eq!((stats.calls, stats.retries), (3, 2), "{fault:?}");
    }

    // Persistent failures end after max_retries + 1 attempts with a typed error.
    type Expected = fn(&Error) -> bool;
    let cases: Vec<(Fault, Expected)> = vec![
        (Fault::Status { status: 500 }, |e| {
            matches!(e, Error::Api { status: 500, .. })
        }),
        (Fault::Latency { ms: 1500 }, |e| {
            matches!(
                e,
                Error::Transport {
                    kind: TransportKind::Timeout,
                    ..
                }
            )
        }),
        (Fault::MalformedJson, |e| {
            matches!(e, Error::InvalidResponse { status: 200, .. })
        }),
        (Fault::ConnectionReset, |e| {
            matches!(e, Error::Transport { .. })
        }),
    ];
    for (fault, expected) in cases {
        api.take_stats();
        s.clear_faults();
        s.inject_fault(op, fault.clone(), FaultTrigger::Count(100))
            .unwrap();
        let err = get_item(&shop, &sku).await.unwrap_err();
        assert!(expected(&err), "{fault:?}: {err:?}");
        assert!(err.is_retryable(), "{fault:?}: the caller may try later");
        let stats = api.take_stats().get(op);
        assert_eq!((stats.calls, stats.retries), (4, 3), "{fault:?}");
    }
    s.clear_faults();
    // A 4xx is not retried.
    api.take_stats();
    s.inject_fault(op, Fault::Status { status: 400 }, FaultTrigger::Count(1))
        .unwrap();
    let err = get_item(&shop, &sku).await.unwrap_err();
    let Error::Api {
        status: 400,
        errors,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(!errors.is_empty() && !errors[0].code.is_empty());
    assert_eq!(api.take_stats().get(op).calls, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn create_feed_and_confirm_shipment_are_never_blindly_retried(pool: PgPool) {
    let sim = sim(SimConfig {
        unlimited: true,
        orders: 10,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(
        pool,
        ClientConfig {
            request_timeout: Duration::from_millis(400),
            ..config(1.0)
        },
    )
    .unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let s = sim.sim();
    // (An XML feed: JSON_LISTINGS_FEED has its own 5-per-5-minutes quota.)
    let order = s
        .orders()
        .into_iter()
        .find(|o| o.status == OrderStatus::Unshipped)
        .expect("an unshipped order");
    let feed = build_fulfillment_feed(
        DEFAULT_SELLER_ID,
        [(
            1,
            ShipmentConfirmation {
                amazon_order_id: order.order_id.clone(),
                merchant_fulfillment_id: None,
                fulfillment_date: Utc::now().fixed_offset(),
                carrier: Carrier::Code("YamatoTransport".into()),
                shipping_method: None,
                tracking_number: "123456789012".into(),
                cod_collection_method: None,
                items: vec![],
            },
        )],
        Utc::now(),
    );
    let doc = shop
        .prepare_feed_document(XML_CONTENT_TYPE, feed.xml.unwrap().into_bytes())
        .await
        .unwrap();
    let spec = CreateFeedSpecification {
        feed_type: POST_ORDER_FULFILLMENT_DATA.into(),
        marketplace_ids: vec![order.marketplace_id.clone()],
        input_feed_document_id: doc.feed_document_id.clone(),
        feed_options: None,
    };

    for fault in [
        Fault::Status { status: 500 },
        Fault::Status { status: 503 },
        Fault::MalformedJson,
        Fault::Latency { ms: 1500 },
    ] {
        api.take_stats();
        s.inject_fault("createFeed", fault.clone(), FaultTrigger::Count(1))
            .unwrap();
        let err = shop.create_feed(&spec).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnknownOutcome {
                    operation: "createFeed",
                    ..
                }
            ),
            "{fault:?}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Reconcile);
        assert!(!err.is_retryable());
        assert_eq!(
            api.take_stats().get("createFeed").calls,
            1,
            "{fault:?}: sent once"
        );
    }
    // The garbled 202 did create a feed (and the timed-out one may have): the caller
    // reconciles with getFeeds instead of submitting again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let listed = shop
        .get_feeds(&GetFeedsParams {
            feed_types: vec![POST_ORDER_FULFILLMENT_DATA.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!((1..=2).contains(&listed.feeds.len()), "{listed:?}");

    // A 429 means Amazon did not take it: the shared bucket is drained, and as the next
    // createFeed token is two minutes away, the caller gets a time to continue at.
    api.take_stats();
    s.inject_fault(
        "createFeed",
        Fault::Status { status: 429 },
        FaultTrigger::Count(1),
    )
    .unwrap();
    let err = shop.create_feed(&spec).await.unwrap_err();
    let ahead = (err.retry_at().expect("throttled") - Utc::now()).num_seconds();
    assert!(
        (110..=121).contains(&ahead),
        "1 / 0.0083 rps ≈ 120 s, got {ahead}"
    );
    let stats = api.take_stats().get("createFeed");
    assert_eq!((stats.calls, stats.throttled), (1, 1));

    // confirmShipment likewise (another unshipped order).
    let order = s
        .orders()
        .into_iter()
        .find(|o| o.status == OrderStatus::Unshipped && o.order_id != order.order_id)
        .expect("a second unshipped order");
    let request = ConfirmShipmentRequest {
        marketplace_id: order.marketplace_id.clone(),
        package_detail: PackageDetail {
            package_reference_id: "1".into(),
            carrier_code: "YamatoTransport".into(),
            carrier_name: None,
            shipping_method: None,
            tracking_number: "123456789012".into(),
            ship_date: Utc::now(),
            ship_from_supply_source_id: None,
            order_items: order
                .items
                .iter()
                .map(|i| ConfirmShipmentOrderItem {
                    order_item_id: i.order_item_id.clone(),
                    quantity: i.quantity_ordered,
                    transparency_codes: vec![],
                })
                .collect(),
        },
        cod_collection_method: None,
    };
    s.inject_fault(
        "confirmShipment",
        Fault::Status { status: 500 },
        FaultTrigger::Count(1),
    )
    .unwrap();
    let err = shop
        .confirm_shipment(&order.order_id, &request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownOutcome {
                operation: "confirmShipment",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim_calls(&sim, "confirmShipment").calls, 1);
    shop.confirm_shipment(&order.order_id, &request)
        .await
        .unwrap();
    let shipped = shop
        .get_order(
            &order.order_id,
            &[IncludedData::Fulfillment, IncludedData::Packages],
        )
        .await
        .unwrap();
    assert_eq!(
        shipped.fulfillment_status(),
        Some(&FulfillmentStatus::Shipped)
    );
    assert_eq!(
        shipped.packages[0].tracking_number.as_deref(),
        Some("123456789012")
    );
}

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrations = "../../migrations")]
async fn search_orders_pages_and_get_order(pool: PgPool) {
    let sim = sim(SimConfig {
        unlimited: true,
        orders: 25,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let mut params = SearchOrdersParams {
        max_results_per_page: Some(10),
        included_data: vec![IncludedData::Fulfillment, IncludedData::Proceeds],
        ..SearchOrdersParams::created(Utc::now() - chrono::Duration::days(60), None)
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut created_before = None;
    loop {
        let page = shop.search_orders(&params).await.unwrap();
        pages += 1;
        created_before = page.created_before.or(created_before);
        seen.extend(page.orders.iter().map(|o| o.order_id.clone()));
        match params.next_page(&page) {
            Some(next) => params = next,
            None => break,
        }
    }
    let before = created_before.expect("Amazon echoes createdBefore");
    let expected = sim
        .sim()
        .orders()
        .into_iter()
        .filter(|o| o.seller_id == DEFAULT_SELLER_ID && o.created_time <= before)
        .count();
    assert_eq!(seen.len(), expected);
    assert!(pages >= 3, "{pages} pages of 10");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());

    let order = shop
        .get_order(
            &seen[0],
            &[
                IncludedData::Buyer,
                IncludedData::Recipient,
                IncludedData::Fulfillment,
            ],
        )
        .await
        .unwrap();
    assert_eq!(order.order_id, seen[0]);
    assert!(!order.order_items.is_empty());

    // Rules are checked before sending.
    let bad = SearchOrdersParams::created(Utc::now(), Some(Utc::now()));
    assert!(matches!(
        shop.search_orders(&bad).await,
        Err(Error::InvalidRequest(_))
    ));
    let before = sim_calls(&sim, "getOrder").calls;
    let err = shop
        .get_order("999-0000000-0000000", &[])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        sim_calls(&sim, "getOrder").calls,
        before + 1,
        "404 not retried"
    );
}

/// POST_ORDER_FULFILLMENT_DATA through the whole flow; the simulator serves the JP report in
/// Shift_JIS (possibly gzipped) with Japanese descriptions.
#[sqlx::test(migrations = "../../migrations")]
async fn fulfillment_feed_round_trip_with_japanese_report(pool: PgPool) {
    let sim = sim(SimConfig {
        unlimited: true,
        orders: 40,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let s = sim.sim();
    let unshipped: Vec<_> = s
        .orders()
        .into_iter()
        .filter(|o| o.status == OrderStatus::Unshipped && o.marketplace_id == MARKETPLACE_JP)
        .take(2)
        .collect();
    assert_eq!(
        unshipped.len(),
        2,
        "the generator makes unshipped JP orders"
    );
    let now = Utc::now();
    let date = now.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let confirm = |order: &spapi_sim::Order, tracking: &str| ShipmentConfirmation {
        amazon_order_id: order.order_id.clone(),
        merchant_fulfillment_id: Some(1),
        fulfillment_date: date,
        carrier: Carrier::Code("YamatoTransport".into()),
        shipping_method: Some("宅急便".into()),
        tracking_number: tracking.into(),
        cod_collection_method: None,
        items: order
            .items
            .iter()
            .map(|i| FulfillmentItem {
                amazon_order_item_code: i.order_item_id.clone(),
                merchant_fulfillment_item_id: None,
                quantity: i.quantity_ordered,
                transparency_codes: vec![],
            })
            .collect(),
    };
    let feed = build_fulfillment_feed(
        DEFAULT_SELLER_ID,
        vec![
            ("instruction-a", confirm(&unshipped[0], "1234-5678-9012")),
            // Not a Yamato tracking number: Amazon rejects this message.
            ("instruction-b", confirm(&unshipped[1], "TRACK-ME")),
        ],
        now,
    );
    assert!(feed.rejected.is_empty());
    let xml = feed.xml.clone().unwrap();
    let result = feed_result(
        &shop,
        s,
        POST_ORDER_FULFILLMENT_DATA,
        XML_CONTENT_TYPE,
        xml.into_bytes(),
    )
    .await;
    assert_eq!(
        result.compression_algorithm,
        Some(spapi::feeds::CompressionAlgorithm::Gzip),
        "JP results are gzipped by the simulator"
    );
    // A broken gzip stream is downloaded again.
    s.inject_fault(
        "downloadDocument",
        Fault::TruncatedGzip,
        FaultTrigger::Count(1),
    )
    .unwrap();
    api.take_stats();
    let downloaded = shop.download_document(&result).await.unwrap();
    let stats = api.take_stats().get("downloadDocument");
    assert_eq!((stats.calls, stats.retries), (2, 1));
    let text = downloaded.text();
    eprintln!("report: {} ({:?})", text.encoding, downloaded.content_type);
    assert!(!text.had_errors);
    let report = parse_processing_report(&text.text).unwrap();
    let results = report.message_results(feed.messages.iter().map(|m| m.message_id));
    let by_key: Vec<(&str, MessageStatus)> = feed
        .messages
        .iter()
        .zip(&results)
        .map(|(m, r)| {
            assert_eq!(m.message_id, r.message_id);
            (m.key, r.status)
        })
        .collect();
    assert_eq!(
        by_key,
        vec![
            ("instruction-a", MessageStatus::Success),
            ("instruction-b", MessageStatus::Error)
        ]
    );
    let message = results[1].message().unwrap();
    assert!(message.contains("TRACK-ME"), "{message}");
    assert!(
        message
            .chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)
                || ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "Japanese text intact: {message}"
    );
    let shipped = s.order(&unshipped[0].order_id).unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
}

#[sqlx::test(migrations = "../../migrations")]
async fn listings_feed_patch_and_get(pool: PgPool) {
    let sim = sim(SimConfig {
        unlimited: true,
        ..SimConfig::default()
    })
    .await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|refresh"));
    let s = sim.sim();
    let skus: Vec<_> = s
        .listings()
        .into_iter()
        .filter(|l| l.seller_id == DEFAULT_SELLER_ID && l.lead_time_to_ship_max_days.is_some())
        .take(2)
        .collect();
    let kept_lead_time = skus[1].lead_time_to_ship_max_days;
    let updates = vec![
        (
            10,
            InventoryUpdate {
                sku: skus[0].sku.clone(),
                quantity: 42,
                handling_days: Some(4),
                default_handling_time: false,
                product_type: None,
            },
        ),
        (
            11,
            InventoryUpdate {
                sku: skus[1].sku.clone(),
                quantity: 0,
                handling_days: None,
                default_handling_time: false,
                product_type: None,
            },
        ),
        (
            12,
            InventoryUpdate {
                sku: "NO-SUCH-SKU".into(),
                quantity: 1,
                handling_days: None,
                default_handling_time: false,
                product_type: None,
            },
        ),
    ];
    let built = build_listings_feeds(
        DEFAULT_SELLER_ID,
        updates,
        &ListingsFeedOptions {
            issue_locale: Some("ja_JP".into()),
            ..Default::default()
        },
    );
    let feed = &built.feeds[0];
    let document = feed_result(
        &shop,
        s,
        JSON_LISTINGS_FEED,
        JSON_CONTENT_TYPE,
        feed.json.clone().into_bytes(),
    )
    .await;
    let text = shop.download_document(&document).await.unwrap().text();
    let report = parse_processing_report(&text.text).unwrap();
    let results = report.message_results(feed.messages.iter().map(|m| m.message_id));
    let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
    eprintln!("{results:?}");
    assert_eq!(
        statuses[..2],
        [MessageStatus::Success, MessageStatus::Success]
    );
    assert_ne!(statuses[2], MessageStatus::Success, "unknown SKU");

    let first = s.listing(&skus[0].sku).unwrap();
    assert_eq!(
        (first.quantity, first.lead_time_to_ship_max_days),
        (Some(42), Some(4))
    );
    let second = s.listing(&skus[1].sku).unwrap();
    assert_eq!(second.quantity, Some(0));
    assert_eq!(
        second.lead_time_to_ship_max_days, kept_lead_time,
        "merge keeps the handling time"
    );

    let patched = shop
        .patch_listings_item(
            &skus[0].sku,
            &jp(),
            &ListingsItemPatchRequest::fulfillment_availability(7, None),
            &PatchOptions {
                included_data: vec![ListingsIncludedData::Issues],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.status, SubmissionStatus::Accepted);
    let item = get_item(&shop, &skus[0].sku).await.unwrap();
    assert_eq!(item.merchant_quantity(), Some(7));
    assert_eq!(
        s.listing(&skus[0].sku).unwrap().lead_time_to_ship_max_days,
        Some(4)
    );

    let stats = api.stats();
    assert_eq!(shop.stats(), stats, "one handle: same counts as the client");
    for op in [
        "createFeedDocument",
        "uploadFeedDocument",
        "createFeed",
        "getFeed",
        "getFeedDocument",
        "downloadDocument",
        "patchListingsItem",
        "getListingsItem",
    ] {
        assert!(stats.get(op).calls >= 1, "{op} counted");
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications: grantless destinations and deletions, seller subscriptions
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrations = "../../migrations")]
async fn notifications_destinations_and_subscriptions(pool: PgPool) {
    use spapi::notifications::{CreateSubscriptionRequest, NotificationType, OrderChangeType};

    let sim = sim(SimConfig::default()).await;
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(shop_config(&sim, "Atzr|notifications"));
    let arn = "arn:aws:sqs:us-west-2:000000000000:connector-test";

    // Not an ARN: refused before any call.
    let err = shop
        .create_destination("warehouse", "https://sqs.example/q")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");

    // The destination: created once, then found by its ARN.
    let first = shop.ensure_destination("warehouse", arn).await.unwrap();
    assert!(first.created);
    assert_eq!(first.value.sqs_arn(), Some(arn));
    let again = shop.ensure_destination("warehouse", arn).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.value.destination_id, first.value.destination_id);
    let err = shop.create_destination("warehouse", arn).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let destination = first.value.destination_id;

    // Subscriptions act for the seller; none yet.
    let order_change = NotificationType::OrderChange;
    let feeds = NotificationType::FeedProcessingFinished;
    assert_eq!(
        shop.get_subscription(&order_change, None).await.unwrap(),
        None
    );
    let req = CreateSubscriptionRequest::order_change(&destination, jp());
    let created = shop.ensure_subscription(&order_change, &req).await.unwrap();
    assert!(created.created);
    assert_eq!(created.value.destination_id, destination);
    let filter = created
        .value
        .processing_directive
        .as_ref()
        .and_then(|d| d.event_filter.clone())
        .expect("the filter is echoed");
    assert_eq!(
        filter.order_change_types,
        Some(vec![
            OrderChangeType::OrderStatusChange,
            OrderChangeType::BuyerRequestedChange
        ])
    );
    // A second subscription of the type: Amazon says 409; ensure reuses the first.
    let err = shop
        .create_subscription(&order_change, &req)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let reused = shop.ensure_subscription(&order_change, &req).await.unwrap();
    assert!(!reused.created);
    assert_eq!(reused.value.subscription_id, created.value.subscription_id);
    let feed_sub = shop
        .ensure_subscription(
            &feeds,
            &CreateSubscriptionRequest::feed_processing_finished(&destination),
        )
        .await
        .unwrap();
    assert!(feed_sub.created);
    assert_eq!(feed_sub.value.payload_version, "2020-09-04");
    let got = shop
        .get_subscription(&feeds, Some("2020-09-04"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.subscription_id, feed_sub.value.subscription_id);

    // Deleting (grantless): gone, and a second delete finds nothing (404 → false).
    assert!(
        shop.delete_subscription_by_id(&order_change, &created.value.subscription_id)
            .await
            .unwrap()
    );
    assert!(
        !shop
            .delete_subscription_by_id(&order_change, &created.value.subscription_id)
            .await
            .unwrap()
    );
    assert_eq!(
        shop.get_subscription(&order_change, None).await.unwrap(),
        None
    );
    assert!(shop.get_subscription(&feeds, None).await.unwrap().is_some());

    // One token of each kind, cached; nothing throttled (1/s, burst 5 on both sides).
    assert_eq!(shop.token_refreshes(), 1);
    assert_eq!(shop.grantless_token_refreshes(), 1);
    for op in [
        "createDestination",
        "getDestinations",
        "createSubscription",
        "getSubscription",
        "deleteSubscriptionById",
    ] {
        let c = sim_calls(&sim, op);
        assert!(c.calls > 0, "{op} not called");
        assert_eq!(c.by_status.get(&429), None, "{op} throttled");
        assert_eq!(c.by_status.get(&403), None, "{op} with the wrong token");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn grantless_token_refusal_is_an_authorization_error(pool: PgPool) {
    let sim = sim(SimConfig::default()).await;
    sim.sim().register_seller(
        "amzn1.application-oa2-client.registered",
        "right-secret",
        "Atzr|registered",
        DEFAULT_SELLER_ID,
    );
    let api = SpApi::new(pool, config(1.0)).unwrap();
    let shop = api.shop(
        ShopConfig::new(
            DEFAULT_SELLER_ID,
            Credentials::new(
                "amzn1.application-oa2-client.registered",
                "wrong-secret",
                "Atzr|registered",
            ),
        )
        .with_endpoints(Endpoints::simulator(&sim.base_url()).unwrap()),
    );
    let err = shop.get_destinations().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Authorization {
                kind: AuthorizationKind::InvalidClient,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(sim_calls(&sim, "getDestinations").calls, 0);
}
