//! The shared Postgres rate limiter on its own (no HTTP).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use spapi::{Error, Operation, Permit, RateLimiter};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrations = "../../migrations")]
async fn bucket_starts_from_the_documented_plan(pool: PgPool) {
    let limiter = RateLimiter::new(pool);
    // confirmShipment: 2 rps, burst 10.
    for n in 0..10 {
        assert_eq!(
            limiter
                .acquire("S1", Operation::ConfirmShipment)
                .await
                .unwrap(),
            Permit::Go,
            "token {n}"
        );
    }
    let before = chrono::Utc::now();
    let Permit::WaitUntil(at) = limiter
        .acquire("S1", Operation::ConfirmShipment)
        .await
        .unwrap()
    else {
        panic!("the burst is spent")
    };
    let wait = (at - before).num_milliseconds();
    assert!(
        (0..=520).contains(&wait),
        "one token every 500 ms, got {wait} ms"
    );
    // Another seller and another operation have their own buckets.
    assert_eq!(
        limiter
            .acquire("S2", Operation::ConfirmShipment)
            .await
            .unwrap(),
        Permit::Go
    );
    assert_eq!(
        limiter.acquire("S1", Operation::GetOrder).await.unwrap(),
        Permit::Go
    );

    let bucket = limiter
        .bucket("S1", Operation::ConfirmShipment)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bucket.rate, bucket.burst), (2.0, 10.0));
}

#[sqlx::test(migrations = "../../migrations")]
async fn scale_and_reserve(pool: PgPool) {
    let limiter = RateLimiter::new(pool)
        .with_rate_scale(10.0)
        .with_burst_reserve(1.0);
    let q = limiter.initial_quota(Operation::SearchOrders);
    assert!((q.rate - 0.056).abs() < 1e-12);
    assert_eq!(q.burst, 19.0);
    // Burst never drops below one token.
    let q = RateLimiter::new(limiter.pool().clone())
        .with_burst_reserve(100.0)
        .initial_quota(Operation::PatchListingsItem);
    assert_eq!(q.burst, 1.0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn acquire_within_sleeps_briefly_or_reports_throttled(pool: PgPool) {
    // getListingsItem: 5 rps × 0.2 = 1 rps, burst 10.
    let limiter = RateLimiter::new(pool).with_rate_scale(0.2);
    for _ in 0..10 {
        limiter
            .acquire("S", Operation::GetListingsItem)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let waited = limiter
        .acquire_within("S", Operation::GetListingsItem, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_millis(1200),
        "{waited:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1300));
    let limiter = limiter.with_rate_scale(4.0);

    // searchOrders at the real rate: the next token is ~3 minutes away after the burst.
    for _ in 0..20 {
        limiter.acquire("S", Operation::SearchOrders).await.unwrap();
    }
    let started = Instant::now();
    let err = limiter
        .acquire_within("S", Operation::SearchOrders, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "did not sleep"
    );
    let Error::Throttled {
        operation,
        retry_at,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(operation, "searchOrders");
    let ahead = (retry_at - chrono::Utc::now()).num_seconds();
    // 1 / (0.0056 × 4) ≈ 44.6 s (the bucket was created at scale 4 above).
    assert!((40..=46).contains(&ahead), "{ahead}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn adapts_rate_and_drains(pool: PgPool) {
    let limiter = RateLimiter::new(pool);
    limiter.acquire("S", Operation::GetFeed).await.unwrap();
    assert!(
        limiter
            .set_rate("S", Operation::GetFeed, 4.0)
            .await
            .unwrap()
    );
    assert!(
        !limiter
            .set_rate("S", Operation::GetFeed, 4.0)
            .await
            .unwrap(),
        "no-op when equal"
    );
    assert!(
        !limiter
            .set_rate("S", Operation::GetFeed, f64::NAN)
            .await
            .unwrap()
    );
    let b = limiter
        .bucket("S", Operation::GetFeed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.rate, 4.0);
    assert!(b.tokens <= 15.0);

    limiter.drain("S", Operation::GetFeed).await.unwrap();
    let Permit::WaitUntil(at) = limiter.acquire("S", Operation::GetFeed).await.unwrap() else {
        panic!("drained")
    };
    let wait = (at - chrono::Utc::now()).num_milliseconds();
    assert!((0..=260).contains(&wait), "4 rps: ≤ 250 ms, got {wait}");
}

/// Many tasks on two independent pools (as two processes would have) never take more than the
/// bucket allows: over the whole run, grants ≤ burst + rate × elapsed.
#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_acquires_across_pools_never_overdraw(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let pool_a = pool_options
        .clone()
        .max_connections(5)
        .connect_with(connect_options.clone())
        .await
        .unwrap();
    let pool_b = pool_options
        .max_connections(5)
        .connect_with(connect_options)
        .await
        .unwrap();
    // patchListingsItem: 5 rps × 4 = 20 rps, burst 5.
    let limiters = [
        RateLimiter::new(pool_a).with_rate_scale(4.0),
        RateLimiter::new(pool_b).with_rate_scale(4.0),
    ];
    let granted = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..20 {
        let limiter = limiters[n % 2].clone();
        let granted = granted.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                limiter
                    .acquire_within("S", Operation::PatchListingsItem, Duration::from_secs(10))
                    .await
                    .unwrap();
                granted.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let granted = granted.load(Ordering::SeqCst);
    eprintln!("60 grants in {elapsed:.3}s");
    assert_eq!(granted, 60);
    // 60 tokens, burst 5, 20 rps: at least 55 / 20 = 2.75 s.
    assert!(
        elapsed >= 2.7,
        "overdrawn: {granted} tokens in {elapsed:.2}s"
    );
    assert!(elapsed < 5.0, "too slow: {elapsed:.2}s");
}
