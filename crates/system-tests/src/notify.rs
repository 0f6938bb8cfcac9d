//! Amazon's notifications in tests: a moto queue as the destination, a shop's subscriptions set
//! up through the simulator's Notifications API as a seller does (a grantless token for the
//! destination, the seller's token for the subscriptions), and the connector's record of them.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The LWA client id every test shop uses.
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.test";

/// A new queue on moto (started by `scripts/local-services` on 127.0.0.1:4566): its client,
/// URL and ARN.
pub async fn moto_queue(name: &str) -> (aws_sdk_sqs::Client, String, String) {
    let sqs = notification_listener::sqs_client(
        "us-west-2",
        Some(&spapi_sim::default_sqs_endpoint()),
        "test",
        "test",
    );
    let url = sqs
        .create_queue()
        .queue_name(format!("{name}-{}", Uuid::now_v7().simple()))
        .send()
        .await
        .expect("moto (scripts/local-services starts it on 127.0.0.1:4566)")
        .queue_url
        .expect("queue url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .expect("attributes")[&QueueAttributeName::QueueArn]
        .clone();
    (sqs, url, arn)
}

async fn token(sim_url: &str, form: &[(&str, &str)]) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{sim_url}/auth/o2/token"))
        .form(form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {v}"))
        .to_owned()
}

async fn post(sim_url: &str, token: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{sim_url}{path}"))
        .header("x-amz-access-token", token)
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = resp.status();
    let v: Value = resp.json().await.expect("json");
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// A shop's credentials at the simulator.
#[derive(Debug, Clone, Copy)]
pub struct Seller<'a> {
    pub shop_id: Uuid,
    pub client_secret: &'a str,
    pub refresh_token: &'a str,
}

/// Creates the destination for `arn` and subscribes `seller` to each of `types`
/// (`ORDER_CHANGE` with the order-status and buyer-request filter) at the simulator, and
/// records the subscriptions as `ctl notifications subscribe` does.
pub async fn subscribe(
    pool: &PgPool,
    sim_url: &str,
    seller: Seller<'_>,
    arn: &str,
    types: &[&str],
) {
    let grantless = token(
        sim_url,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "sellingpartnerapi::notifications"),
            ("client_id", CLIENT_ID),
            ("client_secret", seller.client_secret),
        ],
    )
    .await;
    let seller_token = token(
        sim_url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", seller.refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", seller.client_secret),
        ],
    )
    .await;
    let d = post(
        sim_url,
        &grantless,
        "/notifications/v1/destinations",
        json!({"name": "warehouse", "resourceSpecification": {"sqs": {"arn": arn}}}),
    )
    .await;
    let destination = d["payload"]["destinationId"]
        .as_str()
        .expect("destinationId")
        .to_owned();
    for t in types {
        let body = if *t == "ORDER_CHANGE" {
            json!({"payloadVersion": "1.0", "destinationId": destination,
                   "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE",
                       "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"]}}})
        } else {
            json!({"payloadVersion": "2020-09-04", "destinationId": destination})
        };
        let sub = post(
            sim_url,
            &seller_token,
            &format!("/notifications/v1/subscriptions/{t}"),
            body,
        )
        .await;
        let subscription = sub["payload"]["subscriptionId"]
            .as_str()
            .expect("subscriptionId");
        let mut conn = pool.acquire().await.expect("connection");
        store::notifications::save_subscription(
            &mut conn,
            seller.shop_id,
            t,
            subscription,
            &destination,
            None,
        )
        .await
        .expect("save subscription");
    }
}
