//! The simulator's `/_sim/` control API over HTTP: the demo places orders, changes their status
//! and reads what "Amazon" holds through it, so the same walk drives a simulator in this process
//! or one running elsewhere (a container, `--external-services`).

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use spapi_sim::{CallCount, Listing, MarketplaceMix, Order, StatusChange};

pub struct SimControl {
    base: String,
    http: reqwest::Client,
}

impl SimControl {
    /// `base_url`: the simulator's address, e.g. `http://127.0.0.1:8700`.
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base: format!("{}/_sim", base_url.trim_end_matches('/')),
            http,
        })
    }

    /// Waits up to `within` for the simulator to answer its health check.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + within;
        loop {
            match self.http.get(format!("{}/health", self.base)).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                _ if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(r) => bail!("the simulator at {} answers {}", self.base, r.status()),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("the simulator at {} does not answer", self.base)
                    });
                }
            }
        }
    }

    /// Lets simulated buyers place `count` orders for the default seller; returns them.
    pub async fn generate_orders(
        &self,
        count: usize,
        seed: u64,
        mix: MarketplaceMix,
    ) -> anyhow::Result<Vec<Order>> {
        let created: Value = self
            .send(
                reqwest::Method::POST,
                "/orders/generate",
                Some(&json!({"count": count, "seed": seed, "mix": mix})),
            )
            .await?
            .context("generate: no answer")?;
        let ids = created["orderIds"]
            .as_array()
            .context("generate: no orderIds in the answer")?;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id
                .as_str()
                .context("generate: an order id is not a string")?;
            orders.push(
                self.order(id)
                    .await?
                    .context("a generated order is missing")?,
            );
        }
        Ok(orders)
    }

    pub async fn set_order_status(
        &self,
        order_id: &str,
        change: StatusChange,
    ) -> anyhow::Result<()> {
        self.send::<Value>(
            reqwest::Method::POST,
            &format!("/orders/{order_id}/status"),
            Some(&change),
        )
        .await?
        .with_context(|| format!("order {order_id} is not in the simulator"))?;
        Ok(())
    }

    pub async fn order(&self, order_id: &str) -> anyhow::Result<Option<Order>> {
        self.send(
            reqwest::Method::GET,
            &format!("/orders/{order_id}"),
            None::<&()>,
        )
        .await
    }

    pub async fn listing(&self, sku: &str) -> anyhow::Result<Option<Listing>> {
        self.send(
            reqwest::Method::GET,
            &format!("/listings/{sku}"),
            None::<&()>,
        )
        .await
    }

    pub async fn call_counts(&self) -> anyhow::Result<BTreeMap<String, CallCount>> {
        Ok(self
            .send(reqwest::Method::GET, "/calls", None::<&()>)
            .await?
            .unwrap_or_default())
    }

    /// One control call; `None` on 404.
    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<Option<T>> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}: the simulator does not answer"))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{method} {url}: unexpected answer {text}")
        })?))
    }
}
