//! The simulator's state: orders, listings, feeds and documents, sellers and tokens, rate-limit
//! buckets, faults and options, with the operations on them that need nothing above this layer.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{DEFAULT_SELLER_ID, SimConfig};
use crate::generate;
use crate::model::{
    Cancellation, Listing, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, MarketplaceMix, Order,
    OrderSpec, OrderStatus, StatusChange, marketplace,
};
use crate::notify::Notifications;
use crate::ops::{Bucket, Op};
use crate::records::{Document, Feed, FeedStatus, Presigned};

/// Errors of the in-process control methods (the control API maps them to 4xx).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SimError {
    #[error("order {0} not found")]
    OrderNotFound(String),
    #[error("order {0} already exists")]
    OrderExists(String),
    #[error("cannot change order {order_id} from {from:?} to {to}")]
    InvalidTransition {
        order_id: String,
        from: OrderStatus,
        to: String,
    },
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("listing {0} not found")]
    ListingNotFound(String),
    #[error("feed {0} not found")]
    FeedNotFound(String),
}

/// A fault to inject into an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this HTTP status and Amazon's error body for it (e.g. 500, 503, 429).
    Status { status: u16 },
    /// Delay the (otherwise normal) answer.
    Latency { ms: u64 },
    /// Answer 200 with a body cut in the middle of the JSON.
    MalformedJson,
    /// For document downloads: serve a gzip stream cut in half (other operations: like
    /// `malformed_json`).
    TruncatedGzip,
    /// Drop the connection without a complete HTTP response.
    ConnectionReset,
}

/// When an injected fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTrigger {
    /// The next `n` calls.
    Count(u32),
    /// Each call with this probability (0..=1), drawn from the seeded RNG.
    Probability(f64),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FaultRule {
    pub operation: &'static str,
    #[serde(skip)]
    pub op: Op,
    pub fault: Fault,
    pub trigger: FaultTrigger,
}

/// Per-operation call counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCount {
    /// All calls, including throttled and failed ones.
    pub calls: u64,
    /// Calls answered 429 by the rate limiter.
    pub throttled: u64,
    /// Calls answered by an injected fault.
    pub faulted: u64,
    /// Count per HTTP status.
    pub by_status: BTreeMap<u16, u64>,
}

/// When result documents are gzip-compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GzipPolicy {
    Never,
    Always,
    /// Result documents of feeds submitted for the JP marketplace.
    #[default]
    JapanOnly,
}

/// Run-time switches (`GET/PUT /_sim/options`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SimOptions {
    /// Disable rate limiting.
    pub unlimited: bool,
    /// Multiplies token-bucket refill speed and divides access-token lifetime.
    pub rate_scale: f64,
    /// Compression of feed result documents.
    pub gzip_results: GzipPolicy,
    /// Serve POST_ORDER_FULFILLMENT_DATA processing reports of JP feeds in Shift_JIS with
    /// Japanese result descriptions.
    pub shift_jis_reports_for_jp: bool,
    /// Feed processing time in milliseconds (IN_QUEUE → DONE).
    pub feed_processing_ms: u64,
    /// `getFeed` answers for each new feed, once DONE, that leave out `resultFeedDocumentId`
    /// (`Sim::withhold_feed_reports`).
    pub withhold_reports: u32,
    /// Notifications: each is sent this many milliseconds after its event.
    pub notification_delay_ms: u64,
    /// Notifications: probability (0..=1) that one is sent twice.
    pub notification_duplicate_rate: f64,
    /// Notifications: hold them and send them in shuffled batches.
    pub notification_reorder: bool,
    /// Notifications: probability (0..=1) that one is never sent.
    pub notification_drop_rate: f64,
    /// ORDER_CHANGE for newly created orders too (Amazon does not reliably notify new orders,
    /// so off by default).
    pub notify_new_orders: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            unlimited: false,
            rate_scale: 1.0,
            gzip_results: GzipPolicy::JapanOnly,
            shift_jis_reports_for_jp: true,
            feed_processing_ms: 3000,
            withhold_reports: 0,
            notification_delay_ms: 0,
            notification_duplicate_rate: 0.0,
            notification_reorder: false,
            notification_drop_rate: 0.0,
            notify_new_orders: false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SellerCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub seller_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub seller_id: String,
    /// LWA client id (the application).
    pub client_id: String,
    /// Client-credentials token for grantless operations (scope `sellingpartnerapi::notifications`).
    pub grantless: bool,
    pub expires_at: DateTime<Utc>,
    /// Restricted data token (grants PII in Orders v0).
    pub restricted: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PageCursor {
    pub seller_id: String,
    pub fingerprint: String,
    pub remaining: Vec<String>,
    pub expires_at: DateTime<Utc>,
    /// The `createdBefore`/`lastUpdatedBefore` echoed in every page.
    pub before: DateTime<Utc>,
}

pub(crate) struct State {
    pub rng: StdRng,
    pub clock_offset: Duration,
    pub options: SimOptions,
    pub sellers: Vec<SellerCredentials>,
    pub tokens: HashMap<String, AccessToken>,
    pub orders: BTreeMap<String, Order>,
    pub listings: BTreeMap<(String, String), Listing>,
    pub page_tokens: HashMap<String, PageCursor>,
    pub buckets: HashMap<(String, String), Bucket>,
    pub counters: BTreeMap<&'static str, CallCount>,
    pub faults: Vec<FaultRule>,
    pub feeds: BTreeMap<String, Feed>,
    pub documents: HashMap<String, Document>,
    pub presigned: HashMap<String, Presigned>,
    pub next_feed_id: u64,
    pub notifications: Notifications,
}

impl State {
    pub(crate) fn new(config: &SimConfig) -> State {
        let options = SimOptions {
            unlimited: config.unlimited,
            rate_scale: if config.rate_scale > 0.0 {
                config.rate_scale
            } else {
                1.0
            },
            feed_processing_ms: config.feed_processing.as_millis() as u64,
            ..SimOptions::default()
        };
        let mut st = State {
            rng: StdRng::seed_from_u64(config.seed),
            clock_offset: Duration::zero(),
            options,
            sellers: Vec::new(),
            tokens: HashMap::new(),
            orders: BTreeMap::new(),
            listings: BTreeMap::new(),
            page_tokens: HashMap::new(),
            buckets: HashMap::new(),
            counters: BTreeMap::new(),
            faults: Vec::new(),
            feeds: BTreeMap::new(),
            documents: HashMap::new(),
            presigned: HashMap::new(),
            next_feed_id: 50_001_000_000 + (config.seed % 1000) * 1_000_000,
            notifications: Notifications::new(config.seed),
        };
        st.seed_catalog(DEFAULT_SELLER_ID);
        if config.orders > 0 {
            st.generate_orders(
                config.orders,
                config.seed,
                MarketplaceMix::default(),
                DEFAULT_SELLER_ID,
            );
        }
        st
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Simulated time as seconds (for token buckets).
    pub fn now_secs(&self) -> f64 {
        let n = self.now();
        n.timestamp() as f64 + f64::from(n.timestamp_subsec_micros()) / 1e6
    }

    pub(crate) fn seed_catalog(&mut self, seller_id: &str) {
        let now = generate::trunc_secs(self.now());
        for n in 1..=generate::CATALOG_SIZE {
            let (sku, title, asin, _) = generate::catalog_entry(n);
            let listing = Listing {
                seller_id: seller_id.to_string(),
                sku: sku.clone(),
                asin,
                product_type: "PRODUCT".into(),
                item_name: title,
                marketplace_ids: vec![
                    MARKETPLACE_JP.into(),
                    MARKETPLACE_AU.into(),
                    MARKETPLACE_SG.into(),
                ],
                quantity: Some(((n * 7) % 90 + 5) as u32),
                lead_time_to_ship_max_days: if n % 5 == 0 {
                    None
                } else {
                    Some((n % 3 + 1) as u32)
                },
                restock_date: None,
                attributes: serde_json::Map::new(),
                created_time: now - Duration::days(30),
                last_updated_time: now - Duration::days(1),
            };
            self.listings.insert((seller_id.to_string(), sku), listing);
        }
    }

    pub fn new_order_id(&mut self, marketplace_id: &str) -> String {
        let m = marketplace(marketplace_id).unwrap_or(&crate::model::MARKETPLACES[0]);
        loop {
            let id = generate::order_id(&mut self.rng, m);
            if !self.orders.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn create_order(&mut self, spec: OrderSpec) -> Result<Order, SimError> {
        let seller = spec
            .seller_id
            .clone()
            .unwrap_or_else(|| DEFAULT_SELLER_ID.to_string());
        let mid = spec
            .marketplace_id
            .clone()
            .unwrap_or_else(|| MARKETPLACE_JP.to_string());
        if marketplace(&mid).is_none() {
            return Err(SimError::Invalid(format!(
                "unknown marketplaceId {mid}; the simulator serves JP, AU and SG"
            )));
        }
        let id = match &spec.order_id {
            Some(id) => {
                if !crate::model::is_order_id(id) {
                    return Err(SimError::Invalid(format!(
                        "orderId {id} is not in 3-7-7 format"
                    )));
                }
                if self.orders.contains_key(id) {
                    return Err(SimError::OrderExists(id.clone()));
                }
                id.clone()
            }
            None => self.new_order_id(&mid),
        };
        let now = self.now();
        let order = generate::build_order(&mut self.rng, &spec, id, &seller, now)
            .map_err(SimError::Invalid)?;
        self.orders.insert(order.order_id.clone(), order.clone());
        if self.options.notify_new_orders {
            self.notify_order_change(&order.order_id, "OrderStatusChange", "NewOrder");
        }
        Ok(order)
    }

    pub fn generate_orders(
        &mut self,
        n: usize,
        seed: u64,
        mix: MarketplaceMix,
        seller_id: &str,
    ) -> Vec<Order> {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = self.now();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mid = generate::pick_marketplace(&mut rng, mix.jp, mix.au, mix.sg);
            let status = if rng.random_bool(mix.pending_ratio.clamp(0.0, 1.0)) {
                OrderStatus::Pending
            } else {
                OrderStatus::Unshipped
            };
            // Spread over the last six days, at least five minutes ago.
            let ago = rng.random_range(300..(6 * 24 * 3600));
            let created = now - Duration::seconds(ago);
            let m = marketplace(mid).unwrap_or(&crate::model::MARKETPLACES[0]);
            let id = loop {
                let id = generate::order_id(&mut rng, m);
                if !self.orders.contains_key(&id) {
                    break id;
                }
            };
            let spec = OrderSpec {
                marketplace_id: Some(mid.to_string()),
                status: Some(status),
                created_time: Some(created),
                ..OrderSpec::default()
            };
            match generate::build_order(&mut rng, &spec, id, seller_id, now) {
                Ok(mut order) => {
                    if status == OrderStatus::Unshipped {
                        // Payment was authorised a little after the order was placed.
                        let paid = order.created_time + Duration::minutes(rng.random_range(1..60));
                        order.last_updated_time = generate::trunc_secs(paid.min(now));
                    }
                    self.orders.insert(order.order_id.clone(), order.clone());
                    out.push(order);
                }
                Err(e) => tracing::warn!(error = %e, "order generation failed"),
            }
        }
        out
    }

    pub fn set_order_status(
        &mut self,
        order_id: &str,
        change: StatusChange,
    ) -> Result<Order, SimError> {
        let now = generate::trunc_secs(self.now());
        let (change_type, reason) = match &change {
            StatusChange::Unshipped => ("OrderStatusChange", "PaymentAuthorized"),
            StatusChange::Cancelled { .. } => ("OrderStatusChange", "OrderCanceled"),
            StatusChange::BuyerCancelRequested { .. } => {
                ("BuyerRequestedChange", "Buyer Requested Cancel")
            }
        };
        let order = self
            .orders
            .get_mut(order_id)
            .ok_or_else(|| SimError::OrderNotFound(order_id.to_string()))?;
        match change {
            StatusChange::Unshipped => {
                if order.status != OrderStatus::Pending {
                    return Err(SimError::InvalidTransition {
                        order_id: order_id.into(),
                        from: order.status,
                        to: "UNSHIPPED".into(),
                    });
                }
                order.status = OrderStatus::Unshipped;
            }
            StatusChange::Cancelled {
                cancelled_by,
                reason,
            } => {
                if matches!(
                    order.status,
                    OrderStatus::Shipped | OrderStatus::PartiallyShipped | OrderStatus::Cancelled
                ) {
                    return Err(SimError::InvalidTransition {
                        order_id: order_id.into(),
                        from: order.status,
                        to: "CANCELLED".into(),
                    });
                }
                let by = cancelled_by.unwrap_or_else(|| "AMAZON".into());
                if !matches!(by.as_str(), "BUYER" | "MERCHANT" | "AMAZON") {
                    return Err(SimError::Invalid(format!(
                        "cancelledBy must be BUYER, MERCHANT or AMAZON, not {by}"
                    )));
                }
                order.status = OrderStatus::Cancelled;
                order.cancellation = Some(Cancellation {
                    cancelled_by: by,
                    reason,
                });
            }
            StatusChange::BuyerCancelRequested { reason } => {
                if matches!(order.status, OrderStatus::Shipped | OrderStatus::Cancelled) {
                    return Err(SimError::InvalidTransition {
                        order_id: order_id.into(),
                        from: order.status,
                        to: "BUYER_CANCEL_REQUESTED".into(),
                    });
                }
                for it in &mut order.items {
                    it.buyer_requested_cancel = true;
                    it.buyer_cancel_reason = reason.clone();
                }
            }
        }
        order.last_updated_time = now.max(order.last_updated_time);
        let order = order.clone();
        self.notify_order_change(order_id, change_type, reason);
        Ok(order)
    }

    /// ORDER_CHANGE to the subscriptions of the order's seller (nothing without subscriptions).
    pub fn notify_order_change(&mut self, order_id: &str, change_type: &str, reason: &str) {
        if self.notifications.subscriptions.is_empty() {
            return;
        }
        let now = self.now();
        if let Some(order) = self.orders.get(order_id) {
            self.notifications
                .order_change(order, change_type, reason, now);
        }
    }

    /// FEED_PROCESSING_FINISHED once a feed is DONE, FATAL or CANCELLED.
    pub fn notify_feed_finished(&mut self, feed_id: &str) {
        if self.notifications.subscriptions.is_empty() {
            return;
        }
        let now = self.now();
        if let Some(feed) = self.feeds.get(feed_id).filter(|f| {
            matches!(
                f.status,
                FeedStatus::Done | FeedStatus::Fatal | FeedStatus::Cancelled
            )
        }) {
            self.notifications.feed_finished(feed, now);
        }
    }

    pub fn count(&mut self, op: Op, status: u16, throttled: bool, faulted: bool) {
        let c = self.counters.entry(op.name()).or_default();
        c.calls += 1;
        if throttled {
            c.throttled += 1;
        }
        if faulted {
            c.faulted += 1;
        }
        *c.by_status.entry(status).or_default() += 1;
    }

    /// Takes a token from the (seller, key) bucket. Returns false when throttled.
    pub fn take_token(&mut self, seller: &str, key: &str, plan: (f64, f64)) -> bool {
        if self.options.unlimited {
            return true;
        }
        let now = self.now_secs();
        let scale = self.options.rate_scale;
        let (rate, burst) = plan;
        let bucket = self
            .buckets
            .entry((seller.to_string(), key.to_string()))
            .or_insert_with(|| Bucket::new(burst, now));
        bucket.try_take(rate * scale, burst, now)
    }

    /// Picks the fault (if any) that fires for this call.
    pub fn take_fault(&mut self, op: Op) -> Option<Fault> {
        let mut fired = None;
        let mut remove = None;
        for (idx, rule) in self.faults.iter_mut().enumerate() {
            if rule.op != op {
                continue;
            }
            match &mut rule.trigger {
                FaultTrigger::Count(n) => {
                    if *n > 0 {
                        *n -= 1;
                        if *n == 0 {
                            remove = Some(idx);
                        }
                        fired = Some(rule.fault.clone());
                        break;
                    }
                }
                FaultTrigger::Probability(p) => {
                    let p = p.clamp(0.0, 1.0);
                    if self.rng.random_bool(p) {
                        fired = Some(rule.fault.clone());
                        break;
                    }
                }
            }
        }
        if let Some(idx) = remove {
            self.faults.remove(idx);
        }
        fired
    }

    /// Access-token lifetime in simulated seconds.
    pub fn token_lifetime_secs(&self, config: &SimConfig) -> f64 {
        (config.token_lifetime.as_secs_f64() / self.options.rate_scale).max(1.0)
    }

    pub fn random_token(&mut self, len: usize) -> String {
        generate::opaque_token(&mut self.rng, len)
    }

    /// A new feed document id in Amazon's style.
    pub fn new_document_id(&mut self) -> String {
        let hex: String = {
            let t = self.random_token(32).to_lowercase();
            t.chars()
                .map(|c| {
                    if c.is_ascii_hexdigit() {
                        c
                    } else {
                        char::from(b'a' + (c as u8 % 6))
                    }
                })
                .collect()
        };
        format!(
            "amzn1.tortuga.4.fe.{}-{}-{}-{}-{}.T{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32],
            self.random_token(12).to_uppercase()
        )
    }

    /// Drops pagination tokens and presigned URLs whose time has passed.
    pub fn drop_expired(&mut self) {
        let now = self.now();
        self.page_tokens.retain(|_, c| c.expires_at > now);
        self.presigned.retain(|_, p| p.expires_at > now);
    }
}
