//! Feeds 2021-06-30 end to end: upload, processing of fulfillment and listings feeds,
//! processing reports (XML incl. Shift_JIS, JSON), lifecycle and error cases.

mod common;

use common::*;
use serde_json::{Value, json};
use spapi_sim::{
    DEFAULT_SELLER_ID, GzipPolicy, MARKETPLACE_AU, MARKETPLACE_JP, OrderSpec, OrderStatus,
    SimConfig, SimOptions,
};

fn unshipped(sim: &spapi_sim::RunningSim, marketplace: &str) -> spapi_sim::Order {
    sim.sim()
        .create_order(OrderSpec {
            marketplace_id: Some(marketplace.into()),
            status: Some(OrderStatus::Unshipped),
            ..Default::default()
        })
        .unwrap()
}

#[tokio::test]
async fn fulfillment_feed_with_one_bad_tracking_number_ships_the_others() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let a = unshipped(&sim, MARKETPLACE_AU);
    let b = unshipped(&sim, MARKETPLACE_AU);
    let c = unshipped(&sim, MARKETPLACE_AU);
    let xml = fulfillment_feed(
        DEFAULT_SELLER_ID,
        &[
            (&a.order_id, "YamatoTransport", None, "123456789012"),
            (&b.order_id, "YamatoTransport", None, "12345"),
            (
                &c.order_id,
                "Other",
                Some("Australia Post"),
                "33ABC123456701",
            ),
        ],
    );
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_AU,
        "text/xml; charset=UTF-8",
        xml.into_bytes(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "DONE");
    assert!(feed["processingStartTime"].is_string() && feed["processingEndTime"].is_string());

    let shipped_a = sim.sim().order(&a.order_id).unwrap();
    assert_eq!(shipped_a.status, OrderStatus::Shipped);
    assert_eq!(shipped_a.packages[0].carrier_code, "YamatoTransport");
    assert_eq!(shipped_a.packages[0].tracking_number, "123456789012");
    assert_eq!(
        sim.sim().order(&b.order_id).unwrap().status,
        OrderStatus::Unshipped
    );
    let shipped_c = sim.sim().order(&c.order_id).unwrap();
    assert_eq!(shipped_c.status, OrderStatus::Shipped);
    assert_eq!(
        shipped_c.packages[0].carrier_name.as_deref(),
        Some("Australia Post")
    );

    let (ct, raw, plain, doc) =
        download_result(&sim, &t, feed["resultFeedDocumentId"].as_str().unwrap()).await;
    assert!(
        doc.get("compressionAlgorithm").is_none(),
        "AU reports are not gzipped by default"
    );
    assert_eq!(ct, "text/xml; charset=UTF-8");
    assert_eq!(raw, plain);
    let report = String::from_utf8(plain.clone()).unwrap();
    assert!(
        report.contains("<MessagesProcessed>3</MessagesProcessed>"),
        "{report}"
    );
    assert!(report.contains("<MessagesSuccessful>2</MessagesSuccessful>"));
    assert!(report.contains("<MessagesWithError>1</MessagesWithError>"));
    assert_eq!(report.matches("<Result>").count(), 1);
    assert!(
        report.contains("<MessageID>2</MessageID>\n\t\t\t\t<ResultCode>Error</ResultCode>"),
        "{report}"
    );
    assert!(report.contains(&format!("<AmazonOrderID>{}</AmazonOrderID>", b.order_id)));
    assert!(report.contains("does not match the expected format for the carrier YamatoTransport"));
    xmllint(&format!("{MODELS}/xsd/ProcessingReport.xsd"), &plain).unwrap();

    // The v2026 order shows the package.
    let (_, _, body) = get(
        &sim,
        &t,
        &format!(
            "/orders/2026-01-01/orders/{}?includedData=PACKAGES,FULFILLMENT",
            a.order_id
        ),
    )
    .await;
    assert_eq!(body["order"]["fulfillment"]["fulfillmentStatus"], "SHIPPED");
    assert_eq!(
        body["order"]["packages"][0]["trackingNumber"],
        "123456789012"
    );
    assert_eq!(body["order"]["packages"][0]["carrier"], "YamatoTransport");
    sim.shutdown().await;
}

#[tokio::test]
async fn japanese_reports_are_shift_jis_and_gzipped() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let ok = unshipped(&sim, MARKETPLACE_JP);
    let pending = sim.sim().create_order(OrderSpec::default()).unwrap();
    let cancelled = unshipped(&sim, MARKETPLACE_JP);
    sim.sim()
        .set_order_status(
            &cancelled.order_id,
            spapi_sim::StatusChange::Cancelled {
                cancelled_by: None,
                reason: None,
            },
        )
        .unwrap();
    let xml = fulfillment_feed(
        DEFAULT_SELLER_ID,
        &[
            (&ok.order_id, "SagawaExpress", None, "1234-5678-9012"),
            (&pending.order_id, "YamatoTransport", None, "123456789012"),
            (&cancelled.order_id, "YamatoTransport", None, "123456789012"),
            (
                "503-0000000-0000000",
                "YamatoTransport",
                None,
                "123456789012",
            ),
            ("BAD-ID", "YamatoTransport", None, "123456789012"),
            (&ok.order_id, "YamatoTransport", None, "123456789013"),
        ],
    );
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_JP,
        "text/xml; charset=UTF-8",
        xml.into_bytes(),
    )
    .await;
    let (ct, raw, plain, doc) =
        download_result(&sim, &t, feed["resultFeedDocumentId"].as_str().unwrap()).await;
    assert_eq!(doc["compressionAlgorithm"], "GZIP");
    assert_ne!(raw, plain);
    assert_eq!(ct, "text/xml; charset=Shift_JIS");
    assert!(
        String::from_utf8(plain.clone()).is_err(),
        "Shift_JIS bytes are not UTF-8"
    );
    let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&plain);
    assert!(!errors);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>"));
    assert!(
        text.contains("<MessagesProcessed>6</MessagesProcessed>"),
        "{text}"
    );
    assert!(text.contains("<MessagesSuccessful>2</MessagesSuccessful>"));
    assert!(text.contains("<MessagesWithError>4</MessagesWithError>"));
    assert!(text.contains("<MessagesWithWarning>1</MessagesWithWarning>"));
    assert!(text.contains("保留中"), "{text}");
    assert!(text.contains("キャンセル"));
    assert!(text.contains("すでに出荷済み"));
    assert_eq!(sim.sim().order(&ok.order_id).unwrap().packages.len(), 1);
    xmllint(&format!("{MODELS}/xsd/ProcessingReport.xsd"), &plain).unwrap();

    // enableContentEncodingUrlHeader=true: the download says Content-Encoding: gzip.
    let (_, _, doc) = get(
        &sim,
        &t,
        &format!(
            "/feeds/2021-06-30/documents/{}?enableContentEncodingUrlHeader=true",
            feed["resultFeedDocumentId"].as_str().unwrap()
        ),
    )
    .await;
    let resp = client()
        .get(doc["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");

    // Options: English UTF-8, never gzip.
    sim.sim()
        .set_options(SimOptions {
            shift_jis_reports_for_jp: false,
            gzip_results: GzipPolicy::Never,
            ..sim.sim().options()
        })
        .unwrap();
    let other = unshipped(&sim, MARKETPLACE_JP);
    let xml = fulfillment_feed(DEFAULT_SELLER_ID, &[(&other.order_id, "Other", None, "X1")]);
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_JP,
        "text/xml; charset=UTF-8",
        xml.into_bytes(),
    )
    .await;
    let (ct, _, plain, doc) =
        download_result(&sim, &t, feed["resultFeedDocumentId"].as_str().unwrap()).await;
    assert!(doc.get("compressionAlgorithm").is_none());
    assert_eq!(ct, "text/xml; charset=UTF-8");
    let text = String::from_utf8(plain.clone()).unwrap();
    assert!(
        text.contains("CarrierName is required when CarrierCode is 'Other'"),
        "{text}"
    );
    xmllint(&format!("{MODELS}/xsd/ProcessingReport.xsd"), &plain).unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_fulfillment_xml_is_reported_not_applied() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_AU,
        "text/xml; charset=UTF-8",
        b"<AmazonEnvelope><Header>".to_vec(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "DONE");
    let plain = result_of(&sim, &t, &feed).await;
    let text = String::from_utf8(plain.clone()).unwrap();
    assert!(
        text.contains("<ResultMessageCode>5000</ResultMessageCode>"),
        "{text}"
    );
    assert!(text.contains("<MessageID>0</MessageID>"));
    xmllint(&format!("{MODELS}/xsd/ProcessingReport.xsd"), &plain).unwrap();
    sim.shutdown().await;
}

fn listings_feed(messages: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "header": {"sellerId": DEFAULT_SELLER_ID, "version": "2.0", "issueLocale": "en_US"},
        "messages": messages,
    }))
    .unwrap()
}

#[tokio::test]
async fn listings_feed_merge_keeps_handling_time() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    sim.sim().put_listing("SKU-0001", 10, Some(3));
    sim.sim().put_listing("SKU-0002", 10, Some(4));
    let body = listings_feed(json!([
        {"messageId": 1, "sku": "SKU-0001", "operationType": "PATCH", "productType": "PRODUCT",
         "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}]}]},
        {"messageId": 2, "sku": "SKU-0002", "operationType": "PATCH", "productType": "PRODUCT",
         "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 8}]}]},
        {"messageId": 3, "sku": "NO-SUCH-SKU", "operationType": "PATCH", "productType": "PRODUCT",
         "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]}]},
        {"messageId": 4, "sku": "SKU-0003", "operationType": "PATCH", "productType": "PRODUCT",
         "patches": [{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1, "lead_time_to_ship_max_days": 31}]}]},
        {"messageId": 5, "sku": "SKU-0004", "operationType": "PATCH"}
    ]));
    let feed_id = submit_feed(
        &sim,
        &t,
        "JSON_LISTINGS_FEED",
        MARKETPLACE_AU,
        "application/json; charset=UTF-8",
        body,
    )
    .await;
    let feed = wait_feed(&sim, &t, &feed_id).await;
    assert_eq!(feed["processingStatus"], "DONE");

    let one = sim.sim().listing("SKU-0001").unwrap();
    assert_eq!(
        (one.quantity, one.lead_time_to_ship_max_days),
        (Some(7), Some(3))
    );
    let two = sim.sim().listing("SKU-0002").unwrap();
    assert_eq!(
        (two.quantity, two.lead_time_to_ship_max_days),
        (Some(8), None)
    );
    let three_before = sim.sim().listing("SKU-0003").unwrap();
    assert_ne!(three_before.quantity, Some(1));

    let (ct, _, plain, _) =
        download_result(&sim, &t, feed["resultFeedDocumentId"].as_str().unwrap()).await;
    assert_eq!(ct, "application/json; charset=UTF-8");
    let report: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(report["header"]["feedId"], feed_id);
    assert_eq!(report["summary"]["messagesProcessed"], 5);
    assert_eq!(report["summary"]["messagesAccepted"], 2);
    assert_eq!(report["summary"]["messagesInvalid"], 3);
    let ids: Vec<i64> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["messageId"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&3) && ids.contains(&4) && ids.contains(&5));
    assert!(!ids.contains(&1) && !ids.contains(&2));
    let lead = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["messageId"] == 4)
        .unwrap();
    assert_eq!(lead["severity"], "ERROR");
    assert_eq!(lead["attributeName"], "fulfillment_availability");

    // Through the control API too.
    let l: Value = client()
        .get(format!("{}/_sim/listings/SKU-0001", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l["leadTimeToShipMaxDays"], 3);
    assert_eq!(l["quantity"], 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn removed_and_unuploaded_feeds_end_fatal() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_INVENTORY_AVAILABILITY_DATA",
        MARKETPLACE_JP,
        "text/xml; charset=UTF-8",
        b"<AmazonEnvelope/>".to_vec(),
    )
    .await;
    assert_eq!(feed["processingStatus"], "FATAL");
    let feed_id = submit_feed(
        &sim,
        &t,
        "POST_FLAT_FILE_INVLOADER_DATA",
        MARKETPLACE_JP,
        "text/tab-separated-values; charset=UTF-8",
        b"sku\tquantity\n".to_vec(),
    )
    .await;
    assert_eq!(
        wait_feed(&sim, &t, &feed_id).await["processingStatus"],
        "FATAL"
    );
    // Bad JSON listings header → FATAL with a report.
    let body = serde_json::to_vec(&json!({"header": {"sellerId": "SOMEONE-ELSE", "version": "2.0"}, "messages": [{"messageId": 1, "sku": "SKU-0001", "operationType": "DELETE"}]})).unwrap();
    let feed = submit_and_wait(
        &sim,
        &t,
        "JSON_LISTINGS_FEED",
        MARKETPLACE_JP,
        "application/json; charset=UTF-8",
        body,
    )
    .await;
    assert_eq!(feed["processingStatus"], "FATAL");
    assert!(sim.sim().listing("SKU-0001").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn feed_lifecycle_cancel_and_list() {
    let sim = start(SimConfig {
        feed_processing: std::time::Duration::from_secs(3600),
        ..fast_config()
    })
    .await;
    let t = token(&sim).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            submit_feed(
                &sim,
                &t,
                "JSON_LISTINGS_FEED",
                MARKETPLACE_JP,
                "application/json",
                listings_feed(
                    json!([{"messageId": 1, "sku": "SKU-0009", "operationType": "DELETE"}]),
                ),
            )
            .await,
        );
    }
    let (_, _, feed) = get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{}", ids[0])).await;
    assert_eq!(feed["processingStatus"], "IN_QUEUE");
    assert!(feed.get("resultFeedDocumentId").is_none());
    let resp = client()
        .delete(format!(
            "{}/feeds/2021-06-30/feeds/{}",
            sim.base_url(),
            ids[0]
        ))
        .header("x-amz-access-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, _, feed) = get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{}", ids[0])).await;
    assert_eq!(feed["processingStatus"], "CANCELLED");
    // IN_PROGRESS after a third of the processing time; then it cannot be cancelled.
    sim.sim()
        .advance_clock(std::time::Duration::from_secs(1300));
    let (_, _, feed) = get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{}", ids[1])).await;
    assert_eq!(feed["processingStatus"], "IN_PROGRESS");
    let resp = client()
        .delete(format!(
            "{}/feeds/2021-06-30/feeds/{}",
            sim.base_url(),
            ids[1]
        ))
        .header("x-amz-access-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    sim.sim()
        .advance_clock(std::time::Duration::from_secs(2400));
    // The access token expired meanwhile (3600 s).
    assert_eq!(
        get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{}", ids[1]))
            .await
            .0,
        403
    );
    let t = token(&sim).await;
    let (_, _, feed) = get(&sim, &t, &format!("/feeds/2021-06-30/feeds/{}", ids[1])).await;
    assert_eq!(feed["processingStatus"], "DONE");
    assert!(sim.sim().listing("SKU-0009").is_none());

    // getFeeds: paging by nextToken, newest first.
    let t = token(&sim).await;
    let (status, _, page) = get(
        &sim,
        &t,
        "/feeds/2021-06-30/feeds?feedTypes=JSON_LISTINGS_FEED&pageSize=2",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["feeds"].as_array().unwrap().len(), 2);
    assert_eq!(page["feeds"][0]["feedId"], ids[2].as_str());
    let next = page["nextToken"].as_str().unwrap();
    let (_, _, page2) = get(
        &sim,
        &t,
        &format!("/feeds/2021-06-30/feeds?nextToken={next}"),
    )
    .await;
    assert_eq!(page2["feeds"].as_array().unwrap().len(), 1);
    assert!(page2.get("nextToken").is_none());
    assert_eq!(
        get(
            &sim,
            &t,
            &format!("/feeds/2021-06-30/feeds?nextToken={next}&feedTypes=X")
        )
        .await
        .0,
        400
    );
    assert_eq!(get(&sim, &t, "/feeds/2021-06-30/feeds").await.0, 400);
    assert_eq!(
        get(
            &sim,
            &t,
            "/feeds/2021-06-30/feeds?feedTypes=JSON_LISTINGS_FEED&processingStatuses=BAD_VALUE"
        )
        .await
        .0,
        400
    );
    let (_, _, done) = get(
        &sim,
        &t,
        "/feeds/2021-06-30/feeds?feedTypes=JSON_LISTINGS_FEED&processingStatuses=CANCELLED",
    )
    .await;
    assert_eq!(done["feeds"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&sim, &t, "/feeds/2021-06-30/feeds/99999999").await.0,
        404
    );
    assert_eq!(
        get(&sim, &t, "/feeds/2021-06-30/feeds/badFeedId1").await.0,
        400
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn upload_urls_check_content_type_and_expire() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let (status, headers, doc) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/documents",
        &json!({"contentType": "text/xml; charset=UTF-8"}),
    )
    .await;
    assert_eq!(status, 201);
    assert!(headers.contains_key("x-amzn-RateLimit-Limit"));
    let url = doc["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=300"));
    let put = client()
        .put(url)
        .header("content-type", "application/json")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    assert!(put.text().await.unwrap().contains("SignatureDoesNotMatch"));
    sim.sim().advance_clock(std::time::Duration::from_secs(301));
    let put = client()
        .put(url)
        .header("content-type", "text/xml; charset=UTF-8")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    let t = token(&sim).await;
    let (status, _, err) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/documents",
        &json!({}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, _, _) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/feeds",
        &json!({"marketplaceIds": [MARKETPLACE_JP], "inputFeedDocumentId": "badDocumentId"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = send_json(&sim, reqwest::Method::POST, &t, "/feeds/2021-06-30/feeds", &json!({"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE_JP], "inputFeedDocumentId": "badDocumentId"})).await;
    assert_eq!(status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn json_listings_feed_has_its_own_throttle() {
    let sim = start(SimConfig {
        unlimited: false,
        ..fast_config()
    })
    .await;
    let t = token(&sim).await;
    for _ in 0..5 {
        submit_feed(
            &sim,
            &t,
            "JSON_LISTINGS_FEED",
            MARKETPLACE_JP,
            "application/json",
            listings_feed(json!([{"messageId": 1, "sku": "SKU-0010", "operationType": "DELETE"}])),
        )
        .await;
    }
    let (status, _, doc) = send_json(
        &sim,
        reqwest::Method::POST,
        &t,
        "/feeds/2021-06-30/documents",
        &json!({"contentType": "application/json"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, body) = send_json(&sim, reqwest::Method::POST, &t, "/feeds/2021-06-30/feeds", &json!({"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE_JP], "inputFeedDocumentId": doc["feedDocumentId"]})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["code"], "QuotaExceeded");
    sim.shutdown().await;
}

#[tokio::test]
async fn truncated_gzip_fault_breaks_the_download() {
    let sim = start(fast_config()).await;
    let t = token(&sim).await;
    let o = unshipped(&sim, MARKETPLACE_JP);
    let xml = fulfillment_feed(
        DEFAULT_SELLER_ID,
        &[(&o.order_id, "YamatoTransport", None, "123456789012")],
    );
    let feed = submit_and_wait(
        &sim,
        &t,
        "POST_ORDER_FULFILLMENT_DATA",
        MARKETPLACE_JP,
        "text/xml; charset=UTF-8",
        xml.into_bytes(),
    )
    .await;
    sim.sim()
        .inject_fault(
            "downloadDocument",
            spapi_sim::Fault::TruncatedGzip,
            spapi_sim::FaultTrigger::Count(1),
        )
        .unwrap();
    let (_, _, doc) = get(
        &sim,
        &t,
        &format!(
            "/feeds/2021-06-30/documents/{}",
            feed["resultFeedDocumentId"].as_str().unwrap()
        ),
    )
    .await;
    let raw = client()
        .get(doc["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut out = Vec::new();
    let res = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out);
    assert!(res.is_err(), "a truncated gzip stream must not decode");
    sim.shutdown().await;
}
