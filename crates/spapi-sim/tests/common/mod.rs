//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use spapi_sim::{RunningSim, SimConfig};

/// Fast defaults for tests: unthrottled unless a test says otherwise, feeds finish quickly.
pub fn fast_config() -> SimConfig {
    SimConfig {
        unlimited: true,
        feed_processing: Duration::from_millis(150),
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> RunningSim {
    spapi_sim::spawn(config).await.expect("spawn simulator")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Gets an LWA access token with arbitrary credentials (default seller).
pub async fn token(sim: &RunningSim) -> String {
    token_for(
        sim,
        "amzn1.application-oa2-client.test",
        "secret",
        "Atzr|test",
    )
    .await
}

pub async fn token_for(sim: &RunningSim, client_id: &str, secret: &str, refresh: &str) -> String {
    let resp = client()
        .post(format!("{}/auth/o2/token", sim.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// GET with an access token; returns (status, headers, json body or Null).
pub async fn get(
    sim: &RunningSim,
    token: &str,
    path_and_query: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .header("x-amz-access-token", token)
        .send()
        .await
        .expect("request");
    split(resp).await
}

pub async fn send_json(
    sim: &RunningSim,
    method: reqwest::Method,
    token: &str,
    path_and_query: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .request(method, format!("{}{}", sim.base_url(), path_and_query))
        .header("x-amz-access-token", token)
        .json(body)
        .send()
        .await
        .expect("request");
    split(resp).await
}

pub async fn split(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, headers, v)
}

/// An ISO timestamp `secs` seconds before now.
pub fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Full feed submission: createFeedDocument, PUT upload, createFeed. Returns the feed id.
pub async fn submit_feed(
    sim: &RunningSim,
    token: &str,
    feed_type: &str,
    marketplace: &str,
    content_type: &str,
    body: Vec<u8>,
) -> String {
    let (status, _, doc) = send_json(
        sim,
        reqwest::Method::POST,
        token,
        "/feeds/2021-06-30/documents",
        &serde_json::json!({"contentType": content_type}),
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    let url = doc["url"].as_str().unwrap();
    let put = client()
        .put(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (status, _, feed) = send_json(
        sim,
        reqwest::Method::POST,
        token,
        "/feeds/2021-06-30/feeds",
        &serde_json::json!({"feedType": feed_type, "marketplaceIds": [marketplace], "inputFeedDocumentId": doc["feedDocumentId"]}),
    )
    .await;
    assert_eq!(status, 202, "{feed}");
    feed["feedId"].as_str().unwrap().to_string()
}

/// Polls getFeed until the feed is DONE, FATAL or CANCELLED.
pub async fn wait_feed(sim: &RunningSim, token: &str, feed_id: &str) -> Value {
    for _ in 0..200 {
        let (status, _, feed) =
            get(sim, token, &format!("/feeds/2021-06-30/feeds/{feed_id}")).await;
        assert_eq!(status, 200, "{feed}");
        if matches!(
            feed["processingStatus"].as_str(),
            Some("DONE" | "FATAL" | "CANCELLED")
        ) {
            return feed;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("feed {feed_id} did not finish");
}

/// [`submit_feed`], then [`wait_feed`]: the finished feed.
pub async fn submit_and_wait(
    sim: &RunningSim,
    token: &str,
    feed_type: &str,
    marketplace: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Value {
    let feed_id = submit_feed(sim, token, feed_type, marketplace, content_type, body).await;
    wait_feed(sim, token, &feed_id).await
}

/// The processing report of a finished feed, gunzipped.
pub async fn result_of(sim: &RunningSim, token: &str, feed: &Value) -> Vec<u8> {
    let document_id = feed["resultFeedDocumentId"].as_str().unwrap();
    download_result(sim, token, document_id).await.2
}

/// Downloads a result document: (content type, raw bytes as served, bytes after gunzip).
pub async fn download_result(
    sim: &RunningSim,
    token: &str,
    document_id: &str,
) -> (String, Vec<u8>, Vec<u8>, Value) {
    use std::io::Read;
    let (status, _, doc) = get(
        sim,
        token,
        &format!("/feeds/2021-06-30/documents/{document_id}"),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    let resp = client()
        .get(doc["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let raw = resp.bytes().await.unwrap().to_vec();
    let plain = if doc["compressionAlgorithm"] == "GZIP" {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw.clone()
    };
    (ct, raw, plain, doc)
}

/// Validates an XML document with `xmllint --schema`.
pub fn xmllint(xsd: &str, xml: &[u8]) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!(
        "spapi-sim-xml-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("doc.xml");
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(&file)
        .output()
        .map_err(|e| format!("xmllint not runnable (apt-get install libxml2-utils): {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spapi-models");

/// A POST_ORDER_FULFILLMENT_DATA document; each entry is (order id, carrier code, carrier name, tracking).
pub fn fulfillment_feed(seller: &str, messages: &[(&str, &str, Option<&str>, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AmazonEnvelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"amzn-envelope.xsd\">\n<Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>{seller}</MerchantIdentifier></Header>\n<MessageType>OrderFulfillment</MessageType>\n"
    );
    let date = (chrono::Utc::now()).format("%Y-%m-%dT%H:%M:%S+00:00");
    for (i, (order, code, name, tracking)) in messages.iter().enumerate() {
        let name = name
            .map(|n| format!("<CarrierName>{n}</CarrierName>"))
            .unwrap_or_default();
        s.push_str(&format!(
            "<Message><MessageID>{}</MessageID><OrderFulfillment><AmazonOrderID>{order}</AmazonOrderID><FulfillmentDate>{date}</FulfillmentDate><FulfillmentData><CarrierCode>{code}</CarrierCode>{name}<ShippingMethod>宅急便</ShippingMethod><ShipperTrackingNumber>{tracking}</ShipperTrackingNumber></FulfillmentData></OrderFulfillment></Message>\n",
            i + 1
        ));
    }
    s.push_str("</AmazonEnvelope>\n");
    s
}
