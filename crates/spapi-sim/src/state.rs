//! The simulator's state and the in-process [`Sim`] handle.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::feeds::{Document, Feed, FeedStatus, Presigned};
use crate::generate;
use crate::model::{
    Cancellation, Listing, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, MarketplaceMix, Order,
    OrderSpec, OrderStatus, StatusChange, marketplace,
};
use crate::ops::{Bucket, Op};
use crate::{DEFAULT_SELLER_ID, SimConfig};

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
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            unlimited: false,
            rate_scale: 1.0,
            gzip_results: GzipPolicy::JapanOnly,
            shift_jis_reports_for_jp: true,
            feed_processing_ms: 3000,
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
}

impl State {
    fn new(config: &SimConfig) -> State {
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

    fn seed_catalog(&mut self, seller_id: &str) {
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
                if !crate::api::is_order_id(id) {
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
        Ok(order.clone())
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

    /// Moves feeds along IN_QUEUE → IN_PROGRESS → DONE/FATAL as simulated time passes.
    pub fn tick(&mut self) {
        let now = self.now();
        let processing = Duration::milliseconds(self.options.feed_processing_ms as i64);
        let due: Vec<String> = self
            .feeds
            .values()
            .filter(|f| matches!(f.status, FeedStatus::InQueue | FeedStatus::InProgress))
            .map(|f| f.feed_id.clone())
            .collect();
        for id in due {
            let Some(feed) = self.feeds.get(&id) else {
                continue;
            };
            let created = feed.created_instant;
            if feed.status == FeedStatus::InQueue
                && now >= created + processing / 3
                && let Some(f) = self.feeds.get_mut(&id)
            {
                f.status = FeedStatus::InProgress;
                f.processing_start_time = Some(crate::feeds::ms(now));
            }
            if now >= created + processing {
                crate::feeds::process_feed(self, &id);
            }
        }
        // Drop expired pagination tokens and presigned URLs.
        self.page_tokens.retain(|_, c| c.expires_at > now);
        self.presigned.retain(|_, p| p.expires_at > now);
    }
}

struct Inner {
    config: SimConfig,
    state: Mutex<State>,
    base_url: OnceLock<String>,
}

/// Handle to a simulator's state. Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A simulator state (not serving yet: see [`crate::spawn`]).
    pub fn new(config: SimConfig) -> Sim {
        let state = State::new(&config);
        Sim {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                base_url: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_base_url(&self, url: String) {
        let _ = self.inner.base_url.set(url);
    }

    /// Base URL the server listens on (once spawned).
    pub fn base_url(&self) -> Option<String> {
        self.inner.base_url.get().cloned()
    }

    /// The configuration this simulator was started with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Simulated "now" (real time plus [`Sim::advance_clock`] offsets).
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    /// Moves simulated time forward: tokens expire, buckets refill, feeds progress,
    /// pagination tokens age.
    pub fn advance_clock(&self, by: std::time::Duration) {
        let mut st = self.lock();
        st.clock_offset += Duration::from_std(by).unwrap_or(Duration::zero());
        st.tick();
    }

    /// Creates one order. Missing fields are generated (status defaults to PENDING,
    /// created time to five minutes ago).
    pub fn create_order(&self, spec: OrderSpec) -> Result<Order, SimError> {
        self.lock().create_order(spec)
    }

    /// Generates `n` orders for the default seller from `seed` (mixed PENDING/UNSHIPPED,
    /// JP/AU/SG by `mix`, created during the last six days).
    pub fn generate_orders(&self, n: usize, seed: u64, mix: MarketplaceMix) -> Vec<Order> {
        self.lock().generate_orders(n, seed, mix, DEFAULT_SELLER_ID)
    }

    /// Same as [`Sim::generate_orders`] for another seller.
    pub fn generate_orders_for(
        &self,
        seller_id: &str,
        n: usize,
        seed: u64,
        mix: MarketplaceMix,
    ) -> Vec<Order> {
        self.lock().generate_orders(n, seed, mix, seller_id)
    }

    /// PENDING → UNSHIPPED (payment), → CANCELLED, or a buyer cancellation request.
    /// Updates `lastUpdatedTime`.
    pub fn set_order_status(
        &self,
        order_id: &str,
        change: StatusChange,
    ) -> Result<Order, SimError> {
        self.lock().set_order_status(order_id, change)
    }

    /// An order with its packages (carrier, tracking, ship time).
    pub fn order(&self, order_id: &str) -> Option<Order> {
        let mut st = self.lock();
        st.tick();
        st.orders.get(order_id).cloned()
    }

    /// All orders, sorted by order id.
    pub fn orders(&self) -> Vec<Order> {
        let mut st = self.lock();
        st.tick();
        st.orders.values().cloned().collect()
    }

    /// The default seller's listing for `sku`.
    pub fn listing(&self, sku: &str) -> Option<Listing> {
        self.listing_of(DEFAULT_SELLER_ID, sku)
    }

    /// A seller's listing for `sku`.
    pub fn listing_of(&self, seller_id: &str, sku: &str) -> Option<Listing> {
        let mut st = self.lock();
        st.tick();
        st.listings
            .get(&(seller_id.to_string(), sku.to_string()))
            .cloned()
    }

    /// Creates or updates the default seller's listing for `sku`.
    pub fn put_listing(
        &self,
        sku: &str,
        quantity: u32,
        lead_time_to_ship_max_days: Option<u32>,
    ) -> Listing {
        self.put_listing_spec(
            sku,
            crate::model::ListingSpec {
                quantity: Some(quantity),
                lead_time_to_ship_max_days,
                ..Default::default()
            },
        )
    }

    /// Creates or updates a listing from a spec (`PUT /_sim/listings/{sku}`).
    pub fn put_listing_spec(&self, sku: &str, spec: crate::model::ListingSpec) -> Listing {
        let mut st = self.lock();
        let now = generate::trunc_secs(st.now());
        let seller = spec
            .seller_id
            .clone()
            .unwrap_or_else(|| DEFAULT_SELLER_ID.to_string());
        let key = (seller.clone(), sku.to_string());
        let entry = st.listings.entry(key).or_insert_with(|| Listing {
            seller_id: seller.clone(),
            sku: sku.to_string(),
            asin: format!("B0SIMX{:04}", sku.len() * 97 % 10_000),
            product_type: "PRODUCT".into(),
            item_name: sku.to_string(),
            marketplace_ids: vec![
                MARKETPLACE_JP.into(),
                MARKETPLACE_AU.into(),
                MARKETPLACE_SG.into(),
            ],
            quantity: None,
            lead_time_to_ship_max_days: None,
            restock_date: None,
            attributes: serde_json::Map::new(),
            created_time: now,
            last_updated_time: now,
        });
        if spec.quantity.is_some() {
            entry.quantity = spec.quantity;
        }
        entry.lead_time_to_ship_max_days = spec.lead_time_to_ship_max_days;
        if let Some(name) = spec.item_name {
            entry.item_name = name;
        }
        if let Some(m) = spec.marketplace_ids {
            entry.marketplace_ids = m;
        }
        entry.last_updated_time = now;
        entry.clone()
    }

    /// All listings.
    pub fn listings(&self) -> Vec<Listing> {
        self.lock().listings.values().cloned().collect()
    }

    /// Calls per operation (by name, e.g. `searchOrders`), including 429s.
    pub fn call_counts(&self) -> BTreeMap<String, CallCount> {
        self.lock()
            .counters
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Injects a fault into an operation (name as in [`crate::Op::name`], e.g. `getOrder`).
    pub fn inject_fault(
        &self,
        operation: &str,
        fault: Fault,
        trigger: FaultTrigger,
    ) -> Result<(), SimError> {
        let op = Op::from_name(operation)
            .ok_or_else(|| SimError::UnknownOperation(operation.to_string()))?;
        match trigger {
            FaultTrigger::Count(0) => {
                return Err(SimError::Invalid("count must be at least 1".into()));
            }
            FaultTrigger::Probability(p) if !(0.0..=1.0).contains(&p) => {
                return Err(SimError::Invalid("probability must be within 0..=1".into()));
            }
            _ => {}
        }
        if let Fault::Status { status } = fault
            && !(400..=599).contains(&status)
        {
            return Err(SimError::Invalid("fault status must be 400..=599".into()));
        }
        self.lock().faults.push(FaultRule {
            operation: op.name(),
            op,
            fault,
            trigger,
        });
        Ok(())
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Back to the state at start-up (same seed: same catalog and generated orders);
    /// forgets registered sellers, tokens, feeds, counters, faults and clock offsets.
    pub fn reset(&self) {
        let fresh = State::new(&self.inner.config);
        *self.lock() = fresh;
    }

    /// Registers LWA credentials for a seller: from now on this client id must present
    /// this secret and refresh token, and its tokens act for `seller_id`.
    pub fn register_seller(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        seller_id: &str,
    ) {
        let mut st = self.lock();
        st.sellers.retain(|s| s.refresh_token != refresh_token);
        st.sellers.push(SellerCredentials {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_token: refresh_token.to_string(),
            seller_id: seller_id.to_string(),
        });
        let has_catalog = st.listings.keys().any(|(s, _)| s == seller_id);
        if !has_catalog {
            st.seed_catalog(seller_id);
        }
    }

    /// Makes every issued access token expired (clients must refresh).
    pub fn expire_access_tokens(&self) {
        let mut st = self.lock();
        let past = st.now() - Duration::seconds(1);
        for t in st.tokens.values_mut() {
            t.expires_at = past;
        }
    }

    /// Current run-time options.
    pub fn options(&self) -> SimOptions {
        self.lock().options.clone()
    }

    /// Replaces the run-time options.
    pub fn set_options(&self, options: SimOptions) -> Result<(), SimError> {
        if options.rate_scale <= 0.0 || !options.rate_scale.is_finite() {
            return Err(SimError::Invalid(
                "rateScale must be a positive number".into(),
            ));
        }
        let mut st = self.lock();
        st.options = options;
        st.buckets.clear();
        Ok(())
    }

    /// Feeds submitted so far (any seller).
    pub fn feeds(&self) -> Vec<crate::feeds::FeedInfo> {
        let mut st = self.lock();
        st.tick();
        st.feeds.values().map(|f| f.info(&st)).collect()
    }

    /// A feed by id, with its input and result documents.
    pub fn feed(&self, feed_id: &str) -> Option<crate::feeds::FeedInfo> {
        let mut st = self.lock();
        st.tick();
        st.feeds.get(feed_id).map(|f| f.info(&st))
    }

    /// Finishes every queued feed now (as if `feed_processing` had elapsed).
    pub fn complete_feeds(&self) {
        let mut st = self.lock();
        let ids: Vec<String> = st
            .feeds
            .values()
            .filter(|f| matches!(f.status, FeedStatus::InQueue | FeedStatus::InProgress))
            .map(|f| f.feed_id.clone())
            .collect();
        for id in ids {
            crate::feeds::process_feed(&mut st, &id);
        }
    }

    pub(crate) fn tick(&self) {
        self.lock().tick();
    }
}
