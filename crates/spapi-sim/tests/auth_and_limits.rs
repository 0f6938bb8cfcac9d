//! LWA, access-token checks, rate limits and call counters.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use spapi_sim::{Fault, FaultTrigger, SimConfig};

#[tokio::test]
async fn lwa_accepts_form_and_json_bodies() {
    let sim = start(fast_config()).await;
    let c = client();
    let resp = c.post(format!("{}/auth/o2/token", sim.base_url()))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "Atzr|x", "client_id": "id", "client_secret": "s"}))
        .send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["refresh_token"], "Atzr|x");
    let t = token(&sim).await;
    let (status, _, _) = get(
        &sim,
        &t,
        &format!("/orders/2026-01-01/orders?createdAfter={}", ago(3600)),
    )
    .await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn lwa_errors_look_like_amazons() {
    let sim = start(fast_config()).await;
    sim.sim().register_seller(
        "amzn1.application-oa2-client.reg",
        "right",
        "Atzr|reg",
        "A2REGISTERED",
    );
    let c = client();
    let post = |form: Vec<(&'static str, &'static str)>| {
        let c = c.clone();
        let url = format!("{}/auth/o2/token", sim.base_url());
        async move {
            let resp = c.post(url).form(&form).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = post(vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", "Atzr|reg"),
        ("client_id", "amzn1.application-oa2-client.reg"),
        ("client_secret", "wrong"),
    ])
    .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (401, "invalid_client"));
    assert!(v["error_description"].is_string());
    let (s, v) = post(vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", "Atzr|other"),
        ("client_id", "amzn1.application-oa2-client.reg"),
        ("client_secret", "right"),
    ])
    .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (s, v) = post(vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", "Atzr|reg"),
        ("client_id", "someone-else"),
        ("client_secret", "x"),
    ])
    .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_grant"));
    let (s, v) = post(vec![
        ("grant_type", "password"),
        ("client_id", "a"),
        ("client_secret", "b"),
    ])
    .await;
    assert_eq!(
        (s, v["error"].as_str().unwrap()),
        (400, "unsupported_grant_type")
    );
    let (s, v) = post(vec![
        ("grant_type", "refresh_token"),
        ("client_id", "a"),
        ("client_secret", "b"),
    ])
    .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));

    // The registered seller sees its own orders only.
    let t = token_for(
        &sim,
        "amzn1.application-oa2-client.reg",
        "right",
        "Atzr|reg",
    )
    .await;
    let mine = sim
        .sim()
        .create_order(spapi_sim::OrderSpec {
            seller_id: Some("A2REGISTERED".into()),
            ..Default::default()
        })
        .unwrap();
    sim.sim()
        .create_order(spapi_sim::OrderSpec::default())
        .unwrap();
    let (_, _, body) = get(
        &sim,
        &t,
        &format!("/orders/2026-01-01/orders?createdAfter={}", ago(3600)),
    )
    .await;
    let ids: Vec<&str> = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.order_id.as_str()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_unknown_or_expired_tokens_get_403() {
    let sim = start(SimConfig {
        rate_scale: 3600.0,
        ..fast_config()
    })
    .await;
    let expected = json!({"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":""}]});
    let path = format!("/orders/2026-01-01/orders?createdAfter={}", ago(3600));
    let resp = client()
        .get(format!("{}{}", sim.base_url(), path))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = split(resp).await;
    assert_eq!(status, 403);
    assert_eq!(body, expected);
    assert!(headers.contains_key("x-amzn-RequestId"));
    assert!(!headers.contains_key("x-amzn-RateLimit-Limit"));
    let (status, _, body) = get(&sim, "Atza|made-up", &path).await;
    assert_eq!((status, body.clone()), (403, expected.clone()));
    // rate_scale 3600: the token lives one (real) second.
    let t = token(&sim).await;
    assert_eq!(get(&sim, &t, &path).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, _, body) = get(&sim, &t, &path).await;
    assert_eq!((status, body), (403, expected.clone()));
    // Control: expire every token.
    let t = token(&sim).await;
    sim.sim().expire_access_tokens();
    assert_eq!(get(&sim, &t, &path).await.0, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn burst_beyond_the_bucket_gets_429_with_the_documented_body() {
    let sim = start(SimConfig {
        unlimited: false,
        ..fast_config()
    })
    .await;
    let t = token(&sim).await;
    let path = format!("/orders/2026-01-01/orders?createdAfter={}", ago(3600));
    // searchOrders: burst 20.
    for i in 0..20 {
        let (status, _, body) = get(&sim, &t, &path).await;
        assert_eq!(status, 200, "call {i}: {body}");
    }
    let (status, headers, body) = get(&sim, &t, &path).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]})
    );
    assert!(headers.contains_key("x-amzn-RequestId"));
    assert!(!headers.contains_key("x-amzn-RateLimit-Limit"));
    // Other operations have their own buckets.
    let o = sim
        .sim()
        .create_order(spapi_sim::OrderSpec::default())
        .unwrap();
    assert_eq!(
        get(
            &sim,
            &t,
            &format!("/orders/2026-01-01/orders/{}", o.order_id)
        )
        .await
        .0,
        200
    );
    // 0.0056 rps: one token after ~179 s.
    sim.sim().advance_clock(Duration::from_secs(180));
    let t = token(&sim).await;
    assert_eq!(get(&sim, &t, &path).await.0, 200);
    assert_eq!(get(&sim, &t, &path).await.0, 429);
    let counts = sim.sim().call_counts();
    let so = &counts["searchOrders"];
    assert_eq!(so.calls, 23);
    assert_eq!(so.throttled, 2);
    assert_eq!(so.by_status[&200], 21);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_scale_speeds_up_refill() {
    // getOrder: 0.5 rps, burst 30; scaled ×100 → 50 rps.
    let sim = start(SimConfig {
        unlimited: false,
        rate_scale: 100.0,
        ..fast_config()
    })
    .await;
    let t = token(&sim).await;
    let o = sim
        .sim()
        .create_order(spapi_sim::OrderSpec::default())
        .unwrap();
    let path = format!("/orders/2026-01-01/orders/{}", o.order_id);
    let mut throttled = 0;
    for _ in 0..31 {
        if get(&sim, &t, &path).await.0 == 429 {
            throttled += 1;
        }
    }
    assert!(throttled <= 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&sim, &t, &path).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fire_by_count() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let path = format!("/orders/2026-01-01/orders?createdAfter={}", ago(3600));
    sim.sim()
        .inject_fault(
            "searchOrders",
            Fault::Status { status: 503 },
            FaultTrigger::Count(2),
        )
        .unwrap();
    let (s1, _, b1) = get(&sim, &t, &path).await;
    let (s2, _, _) = get(&sim, &t, &path).await;
    let (s3, _, _) = get(&sim, &t, &path).await;
    assert_eq!((s1, s2, s3), (503, 503, 200));
    assert_eq!(b1["errors"][0]["code"], "ServiceUnavailable");

    sim.sim()
        .inject_fault("searchOrders", Fault::MalformedJson, FaultTrigger::Count(1))
        .unwrap();
    let resp = client()
        .get(format!("{}{}", sim.base_url(), path))
        .header("x-amz-access-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    sim.sim()
        .inject_fault(
            "searchOrders",
            Fault::ConnectionReset,
            FaultTrigger::Count(1),
        )
        .unwrap();
    let r = client()
        .get(format!("{}{}", sim.base_url(), path))
        .header("x-amz-access-token", &t)
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "connection reset must surface as a transport error");

    sim.sim()
        .inject_fault(
            "searchOrders",
            Fault::Latency { ms: 300 },
            FaultTrigger::Count(1),
        )
        .unwrap();
    let start = std::time::Instant::now();
    assert_eq!(get(&sim, &t, &path).await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Through the control API, by probability 1.
    let resp = client().post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"operation": "getOrder", "fault": {"kind": "status", "status": 500}, "probability": 1.0}))
        .send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let (s, _, b) = get(&sim, &t, "/orders/2026-01-01/orders/503-0000000-0000000").await;
    assert_eq!(s, 500);
    assert_eq!(b["errors"][0]["code"], "InternalFailure");
    client()
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&sim, &t, "/orders/2026-01-01/orders/503-0000000-0000000")
            .await
            .0,
        404
    );
    assert!(
        sim.sim()
            .inject_fault("noSuchOp", Fault::MalformedJson, FaultTrigger::Count(1))
            .is_err()
    );
    let counts: Value = client()
        .get(format!("{}/_sim/calls", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["getOrder"]["faulted"], 1);
    sim.shutdown().await;
}
