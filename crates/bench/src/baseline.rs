//! The naive import most integrations do, for comparison on the same simulator: Orders v0
//! `getOrders` (100 per page) then `getOrderItems` for every order, one request at a time,
//! retrying a 429 after a fixed sleep and re-authenticating on 403. Plain reqwest, no limiter,
//! no database (so its time is only Amazon's side: a lower bound of what such an integration
//! needs).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use serde_json::Value;

pub struct Outcome {
    pub orders: usize,
    pub items: usize,
    pub seconds: f64,
    pub retries_after_429: u64,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    retry_sleep: Duration,
    retries: u64,
}

impl Client {
    async fn authorize(&mut self) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/auth/o2/token", self.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "Atzr|bench"),
                ("client_id", "amzn1.application-oa2-client.bench"),
                ("client_secret", "bench-secret"),
            ])
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("LWA answered {status}: {body}");
        }
        self.token = body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        Ok(())
    }

    async fn get(&mut self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut reauth = 0;
        loop {
            let resp = self
                .http
                .get(format!("{}{path}", self.base))
                .header("x-amz-access-token", &self.token)
                .query(query)
                .send()
                .await?;
            match resp.status().as_u16() {
                200..=299 => return Ok(resp.json().await?),
                429 => {
                    self.retries += 1;
                    tokio::time::sleep(self.retry_sleep).await;
                }
                403 if reauth < 3 => {
                    reauth += 1;
                    self.authorize().await?;
                }
                s => bail!(
                    "{path} answered {s}: {}",
                    resp.text().await.unwrap_or_default()
                ),
            }
        }
    }
}

/// Imports every PENDING/UNSHIPPED merchant-fulfilled JP order of the last week.
pub async fn import(base_url: &str, retry_sleep: Duration) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut c = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: base_url.trim_end_matches('/').to_owned(),
        token: String::new(),
        retry_sleep,
        retries: 0,
    };
    c.authorize().await?;
    let marketplace = spapi_sim::MARKETPLACE_JP.to_owned();
    let created_after =
        (Utc::now() - chrono::Duration::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut next: Option<String> = None;
    let (mut orders, mut items) = (0usize, 0usize);
    loop {
        let query: Vec<(&str, String)> = match &next {
            None => vec![
                ("MarketplaceIds", marketplace.clone()),
                ("CreatedAfter", created_after.clone()),
                ("OrderStatuses", "Pending,Unshipped".into()),
                ("FulfillmentChannels", "MFN".into()),
                ("MaxResultsPerPage", "100".into()),
            ],
            Some(t) => vec![
                ("MarketplaceIds", marketplace.clone()),
                ("NextToken", t.clone()),
            ],
        };
        let page = c.get("/orders/v0/orders", &query).await?;
        let list = page["payload"]["Orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for o in &list {
            let id = o["AmazonOrderId"].as_str().context("order without id")?;
            let it = c
                .get(&format!("/orders/v0/orders/{id}/orderItems"), &[])
                .await?;
            items += it["payload"]["OrderItems"].as_array().map_or(0, Vec::len);
            orders += 1;
        }
        next = page["payload"]["NextToken"].as_str().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    Ok(Outcome {
        orders,
        items,
        seconds: started.elapsed().as_secs_f64(),
        retries_after_429: c.retries,
    })
}
