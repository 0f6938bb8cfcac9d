//! The in-process [`Sim`] handle: a shared, locked [`State`] and the control methods tests
//! and the `/_sim/` API call, with simulated time moved forward ([`tick`]) on every access.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Duration, Utc};

use crate::config::{DEFAULT_SELLER_ID, SimConfig};
use crate::feeds::{self, FeedInfo};
use crate::generate;
use crate::model::{
    Listing, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, MarketplaceMix, Order, OrderSpec,
    StatusChange,
};
use crate::notify::NotificationCounter;
use crate::ops::Op;
use crate::records::FeedStatus;
use crate::state::{
    CallCount, Fault, FaultRule, FaultTrigger, SellerCredentials, SimError, SimOptions, State,
};

/// Moves simulated time's effects forward: feeds along their lifecycle (processing those
/// whose time is up), then expired pagination tokens and presigned URLs dropped.
pub(crate) fn tick(st: &mut State) {
    feeds::advance(st);
    st.drop_expired();
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
        tick(&mut st);
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

    /// From now on Amazon returns no buyer and no recipient for `order_id`, even once paid (the
    /// app lacks the PII role for it, or Amazon withholds the data).
    pub fn withhold_order_pii(&self, order_id: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let o = st
            .orders
            .get_mut(order_id)
            .ok_or_else(|| SimError::OrderNotFound(order_id.to_owned()))?;
        o.pii_withheld = true;
        Ok(())
    }

    /// An order with its packages (carrier, tracking, ship time).
    pub fn order(&self, order_id: &str) -> Option<Order> {
        let mut st = self.lock();
        tick(&mut st);
        st.orders.get(order_id).cloned()
    }

    /// All orders, sorted by order id.
    pub fn orders(&self) -> Vec<Order> {
        let mut st = self.lock();
        tick(&mut st);
        st.orders.values().cloned().collect()
    }

    /// The default seller's listing for `sku`.
    pub fn listing(&self, sku: &str) -> Option<Listing> {
        self.listing_of(DEFAULT_SELLER_ID, sku)
    }

    /// A seller's listing for `sku`.
    pub fn listing_of(&self, seller_id: &str, sku: &str) -> Option<Listing> {
        let mut st = self.lock();
        tick(&mut st);
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
        for (name, rate) in [
            (
                "notificationDuplicateRate",
                options.notification_duplicate_rate,
            ),
            ("notificationDropRate", options.notification_drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SimError::Invalid(format!("{name} must be within 0..=1")));
            }
        }
        let mut st = self.lock();
        st.options = options;
        st.buckets.clear();
        Ok(())
    }

    /// Feeds submitted so far (any seller).
    pub fn feeds(&self) -> Vec<FeedInfo> {
        let mut st = self.lock();
        tick(&mut st);
        st.feeds.values().map(|f| f.info(&st.documents)).collect()
    }

    /// A feed by id, with its input and result documents.
    pub fn feed(&self, feed_id: &str) -> Option<FeedInfo> {
        let mut st = self.lock();
        tick(&mut st);
        st.feeds.get(feed_id).map(|f| f.info(&st.documents))
    }

    /// The next `polls` answers of `getFeed` for each feed submitted from now on, once DONE,
    /// leave out `resultFeedDocumentId` (Amazon reporting DONE before the report is ready; a
    /// large number: a report that never comes).
    pub fn withhold_feed_reports(&self, polls: u32) {
        self.lock().options.withhold_reports = polls;
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
            feeds::process_feed(&mut st, &id);
        }
    }

    /// What happened to notifications so far: produced, sent, duplicated, dropped, failed,
    /// pending; in total and by notification type.
    pub fn notification_counter(&self) -> NotificationCounter {
        self.lock().notifications.counter.clone()
    }

    pub(crate) fn tick(&self) {
        tick(&mut self.lock());
    }
}
