//! shipment-feedback (出荷実績戻し): tracking numbers of today's shipped instructions back to
//! Amazon (seed section 3).
//!
//! One run per command, one run at a time per shop (lease):
//! 1. **Reconcile** submissions whose `createFeed` outcome was never recorded (crash or unknown
//!    outcome between Amazon accepting the feed and our commit): `getFeeds` since the intent; a
//!    feed Amazon has that we do not know is adopted (nothing is sent again); when Amazon has
//!    none, the submission is closed as not sent and its instructions become targets again.
//! 2. **Select** the seed's targets: imported through the API, has a tracking number, API status
//!    印刷待ち (awaiting print), instruction 出荷済み (shipped), ship date = today in the shop's
//!    time zone (or an operator's `ctl resend-shipment`).
//! 3. **Validate** each: carrier mapping for the delivery method's external delivery method,
//!    first tracking number (length, carrier's format), the feed builder's own checks. Refused
//!    ones get an API-log entry and stay awaiting print; the rest go.
//! 4. Strategy `feed`: record the submission and every MessageID ↔ instruction (**intent**),
//!    upload the document, mark `in_flight`, `createFeed`, then in one transaction: feed id,
//!    instructions → 印刷済み (printed), API log, `feed.submitted` event (outbox).
//!    Strategy `confirm_shipment`: Orders v0 `confirmShipment` per order (package reference 1,
//!    so a repeat edits the same shipment instead of adding one), result immediate.

mod db;
mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bus::{Handler, HandlerError, Incoming, OutboxMessage, Topology};
use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};
use domain::messages::{Action, Command, CommandParams, Event, EventKind};
use domain::shop::{ShipmentStrategy, Shop};
use serde::Serialize;
use sha2::{Digest, Sha256};
use spapi::fulfillment_feed::{
    self, Carrier, CodCollectionMethod, FulfillmentItem, ShipmentConfirmation,
};
use spapi::{ErrorClass, SpApi};
use sqlx::{PgConnection, PgPool};
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, NewMessage};
use store::runs::{self, NewRun, NewRunLease, RunStatus};
use uuid::Uuid;

pub use db::Target;
pub use validate::{Refusal, validate_tracking};

/// Service, queue and api_log action name.
pub const SERVICE: &str = "shipment-feedback";
const ACTION: &str = "shipment-feedback";
const FEED_TYPE: &str = spapi::feeds::POST_ORDER_FULFILLMENT_DATA;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lease of one run per shop.
    pub lease_ttl: chrono::Duration,
    /// First `getFeed` of a new feed after this long (feed-poller).
    pub first_poll_delay: chrono::Duration,
    /// Messages per feed before splitting (Amazon: keep a feed under 10 MiB).
    pub max_messages_per_feed: usize,
    /// How far before the intent `getFeeds` looks when reconciling (clock skew).
    pub reconcile_skew: chrono::Duration,
    /// When Amazon throttles or fails transiently, the run continues after this long (at least).
    pub retry_delay: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ttl: chrono::Duration::minutes(10),
            first_poll_delay: chrono::Duration::seconds(30),
            max_messages_per_feed: 5_000,
            reconcile_skew: chrono::Duration::minutes(5),
            retry_delay: chrono::Duration::seconds(60),
        }
    }
}

/// Environment variable that arms a fail point in the service binary (fault-injection tests
/// only): `crash_after_create_feed` or `crash_after_confirm`. The process then aborts at that
/// point, as if it were killed.
pub const FAIL_POINT_ENV: &str = "SHIPMENT_FEEDBACK_FAIL_POINT";

/// Test hooks that simulate a crash at a precise point (never set in production).
#[derive(Debug, Default)]
pub struct FailPoints {
    /// Stop right after Amazon accepted `createFeed`, before recording it (as if the process
    /// died): the submission stays `in_flight`.
    pub crash_after_create_feed: AtomicBool,
    /// Same for `confirmShipment`.
    pub crash_after_confirm: AtomicBool,
    /// Abort the process at an armed fail point instead of returning an error.
    pub abort_process: AtomicBool,
}

impl FailPoints {
    /// Fail points armed by [`FAIL_POINT_ENV`] (they abort the process).
    pub fn from_env() -> Self {
        let f = Self::default();
        match std::env::var(FAIL_POINT_ENV).as_deref() {
            Ok("crash_after_create_feed") => {
                f.crash_after_create_feed.store(true, Ordering::SeqCst)
            }
            Ok("crash_after_confirm") => f.crash_after_confirm.store(true, Ordering::SeqCst),
            _ => return f,
        }
        tracing::warn!("{FAIL_POINT_ENV} is set: this process will abort at the fail point");
        f.abort_process.store(true, Ordering::SeqCst);
        f
    }

    fn hit(&self, point: &'static str) -> RunError {
        if self.abort_process.load(Ordering::SeqCst) {
            eprintln!("fail point {point}: aborting the process");
            std::process::abort();
        }
        RunError::FailPoint(point)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: Option<Uuid>,
    /// Another run held the lease: nothing done.
    pub skipped: bool,
    /// The trigger already ran (a copy or a redelivery): nothing done.
    pub duplicate: bool,
    pub targets: usize,
    /// Refused before sending (stay awaiting print).
    pub refused: usize,
    /// Sent in feeds accepted by Amazon (printed) or confirmed (shipped).
    pub sent: usize,
    /// confirm-shipment: refused by Amazon (failed).
    pub failed: usize,
    /// Feeds submitted by this run.
    pub feed_submission_ids: Vec<Uuid>,
    /// Submissions found at Amazon by reconciliation (not sent again).
    pub reconciled: usize,
    /// Submissions Amazon never received (their instructions are targets again).
    pub released: usize,
    /// A continuation was scheduled (throttling, transient failure, unknown outcome).
    pub continuation: bool,
}

/// Errors that abort a run (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("shop configuration: {0}")]
    Config(String),
    #[error("fail point: {0}")]
    FailPoint(&'static str),
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Config(m) => HandlerError::Reject(m),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

/// The shipment-feedback service.
#[derive(Clone)]
pub struct Service {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    topology: Topology,
    settings: Settings,
    fail: Arc<FailPoints>,
    holder: String,
}

impl Service {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        settings: Settings,
    ) -> Self {
        Self {
            pool,
            keys,
            api,
            topology,
            settings,
            fail: Arc::new(FailPoints::default()),
            holder: format!("{SERVICE}@{}", std::process::id()),
        }
    }

    /// From the runtime context.
    pub fn from_ctx(ctx: runtime::Ctx) -> anyhow::Result<Self> {
        let api = ctx.spapi_client()?;
        let mut service = Self::new(ctx.pool, ctx.keys, api, ctx.topology, Settings::default());
        service.fail = Arc::new(FailPoints::from_env());
        Ok(service)
    }

    /// The crash hooks (tests).
    pub fn fail_points(&self) -> &Arc<FailPoints> {
        &self.fail
    }

    /// Runs the action for one shop now.
    pub async fn run(
        &self,
        shop_id: Uuid,
        command_id: Option<Uuid>,
        requested_by: &str,
    ) -> Result<RunReport, RunError> {
        let mut conn = self.pool.acquire().await?;
        if let Some(id) = command_id
            && runs::command_succeeded(&mut conn, id, ACTION).await?
        {
            return Ok(RunReport {
                duplicate: true,
                ..Default::default()
            });
        }
        let shop = store::shops::get(&mut conn, shop_id).await?.shop;
        let run_id = runs::insert(
            &mut conn,
            &NewRun {
                shop_id,
                action: ACTION,
                mode: Some(shop.shipment_strategy.as_str()),
                status: RunStatus::Running,
                command_id,
                requested_by: Some(requested_by),
            },
        )
        .await?;
        match runs::lease_new_run(
            &mut conn,
            shop_id,
            ACTION,
            run_id,
            command_id,
            &self.holder,
            self.settings.lease_ttl,
            &serde_json::json!({}),
        )
        .await?
        {
            NewRunLease::Leased => {}
            outcome => {
                return Ok(RunReport {
                    run_id: Some(run_id),
                    skipped: outcome == NewRunLease::Busy,
                    duplicate: outcome == NewRunLease::Duplicate,
                    ..Default::default()
                });
            }
        }
        drop(conn);
        let mut report = RunReport {
            run_id: Some(run_id),
            ..Default::default()
        };
        let result = self.run_leased(&shop, run_id, &mut report).await;
        let mut conn = self.pool.acquire().await?;
        let counts = serde_json::to_value(&report).unwrap_or_default();
        let calls = self.api.take_stats().total_calls() as i32;
        if let Err(RunError::FailPoint(_)) = &result {
            // Simulated crash: leave the ledger and the lease as a dead process would
            // (the lease expires; a test may release it).
            return result.map(|()| report);
        }
        let error = result.as_ref().err().map(ToString::to_string);
        runs::close_leased(
            &mut conn,
            shop_id,
            ACTION,
            run_id,
            &counts,
            calls,
            error.as_deref(),
        )
        .await?;
        result.map(|()| report)
    }

    async fn run_leased(
        &self,
        shop: &Shop,
        run_id: Uuid,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let api = self.shop_api(shop).await?;
        let now = Utc::now();

        // 1. Reconcile before anything could be sent twice.
        if self.reconcile(shop, &api, run_id, report).await? {
            return Ok(());
        }

        // 2. Targets.
        let today = domain::eligibility::today_in(shop.time_zone, now);
        let mut conn = self.pool.acquire().await?;
        let targets = db::targets(&mut conn, shop.id, today).await?;
        report.targets = targets.len();
        if targets.is_empty() {
            return Ok(());
        }
        let mappings = store::carriers::effective(&mut conn, shop.id).await?;

        // 3. Validate.
        let mut valid = Vec::new();
        for t in targets {
            match validate::check(&t, &mappings) {
                Ok(checked) => valid.push((t, checked)),
                Err(refusal) => {
                    report.refused += 1;
                    self.refuse(
                        &mut conn,
                        shop.id,
                        run_id,
                        &t,
                        &refusal.code,
                        &refusal.message,
                    )
                    .await?;
                }
            }
        }
        drop(conn);

        match shop.shipment_strategy {
            ShipmentStrategy::Feed => {
                self.send_feeds(shop, &api, run_id, valid, now, report)
                    .await
            }
            ShipmentStrategy::ConfirmShipment => {
                self.confirm_each(shop, &api, run_id, valid, now, report)
                    .await
            }
        }
    }

    async fn shop_api(&self, shop: &Shop) -> Result<spapi::Shop, RunError> {
        let mut conn = self.pool.acquire().await?;
        Ok(runtime::shop_api(&mut conn, &self.keys, &self.api, shop).await?)
    }

    async fn refuse(
        &self,
        conn: &mut PgConnection,
        shop_id: Uuid,
        run_id: Uuid,
        t: &Target,
        code: &str,
        message: &str,
    ) -> Result<(), RunError> {
        let text = format!("not sent to Amazon: {message}");
        db::set_api_error(conn, t.id, Some(&text)).await?;
        api_log::write(
            conn,
            &Entry {
                run_id: Some(run_id),
                amazon_order_id: t.amazon_order_id.as_deref(),
                code: Some(code),
                details: Some(serde_json::json!({"instruction_id": t.id})),
                ..Entry::new(Some(shop_id), ACTION, Level::Error, &text)
            },
        )
        .await?;
        Ok(())
    }

    /// Resolves submissions whose `createFeed` outcome was not recorded. Returns true when one
    /// could not be resolved (the run must not send anything now).
    async fn reconcile(
        &self,
        shop: &Shop,
        api: &spapi::Shop,
        run_id: Uuid,
        report: &mut RunReport,
    ) -> Result<bool, RunError> {
        let mut conn = self.pool.acquire().await?;
        let open = feeds_store::unresolved(&mut conn, shop.id, FEED_TYPE).await?;
        if open.is_empty() {
            return Ok(false);
        }
        for sub in open {
            if sub.state == feeds_store::state::PENDING {
                // createFeed was never called (the state moves to in_flight before it).
                feeds_store::mark_not_sent(
                    &mut conn,
                    sub.id,
                    "interrupted before createFeed: nothing was sent",
                )
                .await?;
                report.released += 1;
                continue;
            }
            let since = sub.in_flight_at.unwrap_or(sub.created_at) - self.settings.reconcile_skew;
            let known = feeds_store::known_amazon_ids(
                &mut conn,
                shop.id,
                since - chrono::Duration::days(1),
            )
            .await?;
            let mut candidates = Vec::new();
            let mut params = spapi::feeds::GetFeedsParams {
                feed_types: vec![FEED_TYPE.to_owned()],
                marketplace_ids: sub.marketplace_ids.clone(),
                page_size: Some(100),
                created_since: Some(since),
                ..Default::default()
            };
            loop {
                match api.get_feeds(&params).await {
                    Ok(page) => {
                        candidates.extend(
                            page.feeds
                                .into_iter()
                                .filter(|f| !known.contains(&f.feed_id)),
                        );
                        match page.next_token {
                            Some(t) => {
                                params = spapi::feeds::GetFeedsParams {
                                    next_token: Some(t),
                                    ..Default::default()
                                }
                            }
                            None => break,
                        }
                    }
                    Err(e) => {
                        self.api_failure(
                            &mut conn,
                            shop,
                            run_id,
                            "getFeeds (reconciliation)",
                            &e,
                            report,
                        )
                        .await?;
                        return Ok(true);
                    }
                }
            }
            candidates.sort_by_key(|f| f.created_time);
            match candidates.len() {
                0 => {
                    feeds_store::mark_not_sent(
                        &mut conn,
                        sub.id,
                        "Amazon has no feed for this submission (getFeeds): not accepted, its shipments are sent again",
                    )
                    .await?;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run_id),
                            details: Some(serde_json::json!({"feed_submission_id": sub.id})),
                            code: Some("feed_not_found"),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Warning,
                                "an interrupted feed submission never reached Amazon; its shipments will be sent again",
                            )
                        },
                    )
                    .await?;
                    report.released += 1;
                }
                1 => {
                    let feed_id = candidates.remove(0).feed_id;
                    let mut tx = self.pool.begin().await?;
                    self.record_accepted(&mut tx, shop, run_id, sub.id, &feed_id, true)
                        .await?;
                    tx.commit().await?;
                    report.reconciled += 1;
                    report.feed_submission_ids.push(sub.id);
                }
                n => {
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run_id),
                            code: Some("feed_ambiguous"),
                            details: Some(serde_json::json!({
                                "feed_submission_id": sub.id,
                                "candidates": candidates.iter().map(|f| &f.feed_id).collect::<Vec<_>>(),
                            })),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Attention,
                                &format!(
                                    "an interrupted feed submission matches {n} unknown feeds at Amazon; nothing is sent until an operator resolves it"
                                ),
                            )
                        },
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Amazon accepted `feed_id` for `submission`: feed id, instructions printed, log, event.
    async fn record_accepted(
        &self,
        tx: &mut PgConnection,
        shop: &Shop,
        run_id: Uuid,
        submission: Uuid,
        feed_id: &str,
        reconciled: bool,
    ) -> Result<(), RunError> {
        let next_poll = Utc::now() + self.settings.first_poll_delay;
        if !feeds_store::mark_submitted(tx, submission, feed_id, next_poll).await? {
            return Ok(());
        }
        let printed = db::mark_printed(tx, submission).await?;
        let message = if reconciled {
            format!(
                "feed {feed_id} found at Amazon after an interruption: {printed} shipments recorded as sent (印刷済み), nothing sent twice"
            )
        } else {
            format!("feed {feed_id} accepted by Amazon: {printed} shipments sent (印刷済み)")
        };
        api_log::write(
            tx,
            &Entry {
                run_id: Some(run_id),
                code: Some(if reconciled { "feed_reconciled" } else { "feed_submitted" }),
                details: Some(serde_json::json!({"feed_submission_id": submission, "feed_id": feed_id, "messages": printed})),
                ..Entry::new(Some(shop.id), ACTION, Level::Info, &message)
            },
        )
        .await?;
        let event = Event::new(
            shop.id,
            EventKind::FeedSubmitted {
                feed_submission_id: submission,
                feed_type: FEED_TYPE.to_owned(),
            },
            Utc::now(),
        );
        bus::outbox::enqueue(
            tx,
            OutboxMessage::new(
                self.topology.events_exchange(),
                event.kind.routing_key(),
                serde_json::to_value(&event).unwrap_or_default(),
            ),
        )
        .await?;
        Ok(())
    }

    async fn send_feeds(
        &self,
        shop: &Shop,
        api: &spapi::Shop,
        run_id: Uuid,
        valid: Vec<(Target, validate::Checked)>,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let offset = offset_of(shop, now);
        let confirmations: Vec<(Target, ShipmentConfirmation)> = valid
            .into_iter()
            .map(|(t, c)| {
                let conf = confirmation(shop, &t, &c, offset, now);
                (t, conf)
            })
            .collect();
        let chunks: Vec<Vec<(Target, ShipmentConfirmation)>> = {
            let mut out = Vec::new();
            let mut it = confirmations.into_iter().peekable();
            while it.peek().is_some() {
                out.push(
                    it.by_ref()
                        .take(self.settings.max_messages_per_feed.max(1))
                        .collect(),
                );
            }
            out
        };
        for chunk in chunks {
            {
                let mut conn = self.pool.acquire().await?;
                if !self.renew_lease(&mut conn, shop.id, run_id).await? {
                    return Ok(());
                }
            }
            let built = fulfillment_feed::build_fulfillment_feed(&shop.seller_id, chunk, now);
            {
                let mut conn = self.pool.acquire().await?;
                for r in &built.rejected {
                    report.refused += 1;
                    let msg = r.key.describe_problems(&r.problems);
                    self.refuse(
                        &mut conn,
                        shop.id,
                        run_id,
                        &r.key,
                        "invalid_shipment_data",
                        &msg,
                    )
                    .await?;
                }
            }
            let Some(xml) = built.xml else { continue };
            let marketplaces = {
                let mut m: Vec<String> = built
                    .messages
                    .iter()
                    .filter_map(|m| m.key.marketplace_id.clone())
                    .collect();
                m.sort();
                m.dedup();
                if m.is_empty() {
                    m.push(shop.primary_marketplace().id().to_owned());
                }
                m
            };
            let sha = hex(&Sha256::digest(xml.as_bytes()));
            let messages: Vec<NewMessage> = built
                .messages
                .iter()
                .map(|m| NewMessage {
                    message_id: m.message_id as i64,
                    instruction_id: Some(m.key.id),
                    amazon_order_id: Some(m.amazon_order_id.clone()),
                    ..Default::default()
                })
                .collect();
            // Intent: submission + MessageID ↔ instruction, committed before any call.
            let submission = {
                let mut tx = self.pool.begin().await?;
                let id = feeds_store::insert(
                    &mut tx,
                    shop.id,
                    Some(run_id),
                    FEED_TYPE,
                    &marketplaces,
                    &sha,
                    &messages,
                )
                .await?;
                tx.commit().await?;
                id
            };
            let mut conn = self.pool.acquire().await?;
            let document = match api
                .prepare_feed_document(spapi::feeds::XML_CONTENT_TYPE, xml.into_bytes())
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    feeds_store::mark_not_sent(
                        &mut conn,
                        submission,
                        &format!("document upload failed: {e}"),
                    )
                    .await?;
                    self.api_failure(
                        &mut conn,
                        shop,
                        run_id,
                        "createFeedDocument/upload",
                        &e,
                        report,
                    )
                    .await?;
                    return Ok(());
                }
            };
            feeds_store::mark_in_flight(&mut conn, submission, &document.feed_document_id).await?;
            let spec = spapi::feeds::CreateFeedSpecification {
                feed_type: FEED_TYPE.to_owned(),
                marketplace_ids: marketplaces.clone(),
                input_feed_document_id: document.feed_document_id.clone(),
                feed_options: None,
            };
            match api.create_feed(&spec).await {
                Ok(created) => {
                    if self.fail.crash_after_create_feed.load(Ordering::SeqCst) {
                        return Err(self.fail.hit("crash after createFeed"));
                    }
                    drop(conn);
                    let mut tx = self.pool.begin().await?;
                    self.record_accepted(
                        &mut tx,
                        shop,
                        run_id,
                        submission,
                        &created.feed_id,
                        false,
                    )
                    .await?;
                    tx.commit().await?;
                    report.sent += messages.len();
                    report.feed_submission_ids.push(submission);
                }
                Err(e) if e.class() == ErrorClass::Reconcile => {
                    // Stays in_flight: the continuation reconciles with getFeeds first.
                    self.api_failure(&mut conn, shop, run_id, "createFeed", &e, report)
                        .await?;
                    return Ok(());
                }
                Err(e) => {
                    // Amazon did not take the feed (refused, throttled, never reached).
                    feeds_store::mark_not_sent(&mut conn, submission, &format!("createFeed: {e}"))
                        .await?;
                    self.api_failure(&mut conn, shop, run_id, "createFeed", &e, report)
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn confirm_each(
        &self,
        shop: &Shop,
        api: &spapi::Shop,
        run_id: Uuid,
        valid: Vec<(Target, validate::Checked)>,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        use spapi::orders_v0::{ConfirmShipmentOrderItem, ConfirmShipmentRequest, PackageDetail};
        let offset = offset_of(shop, now);
        let mut conn = self.pool.acquire().await?;
        for (n, (t, c)) in valid.into_iter().enumerate() {
            if n > 0 && n % 50 == 0 && !self.renew_lease(&mut conn, shop.id, run_id).await? {
                return Ok(());
            }
            let Some(order_id) = t.amazon_order_id.clone() else {
                continue;
            };
            let lines = db::lines(&mut conn, t.id).await?;
            if lines.is_empty() {
                report.refused += 1;
                self.refuse(&mut conn, shop.id, run_id, &t, "no_order_items", "confirmShipment needs the order's item ids and quantities, and this instruction has no Amazon order items").await?;
                continue;
            }
            let conf = confirmation(shop, &t, &c, offset, now);
            let (carrier_code, carrier_name) = match &conf.carrier {
                Carrier::Code(code) => (code.clone(), None),
                Carrier::Other { name } => ("Other".to_owned(), Some(name.clone())),
            };
            let request = ConfirmShipmentRequest {
                marketplace_id: t
                    .marketplace_id
                    .clone()
                    .unwrap_or_else(|| shop.primary_marketplace().id().to_owned()),
                package_detail: PackageDetail {
                    package_reference_id: "1".into(),
                    carrier_code,
                    carrier_name,
                    shipping_method: conf.shipping_method.clone(),
                    tracking_number: conf.tracking_number.clone(),
                    ship_date: conf.fulfillment_date.with_timezone(&Utc),
                    ship_from_supply_source_id: None,
                    order_items: lines
                        .iter()
                        .map(|(item, qty)| ConfirmShipmentOrderItem {
                            order_item_id: item.clone(),
                            quantity: *qty as u32,
                            transparency_codes: vec![],
                        })
                        .collect(),
                },
                cod_collection_method: conf
                    .cod_collection_method
                    .map(|_| "DirectPayment".to_owned()),
            };
            let outcome = api.confirm_shipment(&order_id, &request).await;
            if self.fail.crash_after_confirm.load(Ordering::SeqCst) {
                return Err(self.fail.hit("crash after confirmShipment"));
            }
            let outcome = match outcome {
                Err(e) if matches!(e.class(), ErrorClass::Reconcile | ErrorClass::Permanent) => {
                    // Did it land (unknown outcome), or was it already confirmed with this
                    // tracking number (e.g. "already shipped" after a crash)? The order's
                    // packages decide.
                    match api
                        .get_order(&order_id, &[spapi::orders::IncludedData::Packages])
                        .await
                    {
                        Ok(order)
                            if order.packages.iter().any(|p| {
                                p.tracking_number.as_deref() == Some(conf.tracking_number.as_str())
                            }) =>
                        {
                            Ok(())
                        }
                        _ => Err(e),
                    }
                }
                other => other,
            };
            match outcome {
                Ok(()) => {
                    db::mark_confirmed(&mut conn, t.id).await?;
                    report.sent += 1;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run_id),
                            amazon_order_id: Some(&order_id),
                            code: Some("shipment_confirmed"),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Info,
                                "shipment confirmed by Amazon (confirmShipment): 出荷済み",
                            )
                        },
                    )
                    .await?;
                }
                Err(e) if e.class() == ErrorClass::Permanent => {
                    let (code, msg) = amazon_message(&e);
                    db::mark_failed(&mut conn, t.id, &msg).await?;
                    report.failed += 1;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run_id),
                            amazon_order_id: Some(&order_id),
                            code: Some(&code),
                            ..Entry::new(Some(shop.id), ACTION, Level::Error, &msg)
                        },
                    )
                    .await?;
                }
                Err(e) => {
                    self.api_failure(&mut conn, shop, run_id, "confirmShipment", &e, report)
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Extends this run's lease (long confirm-shipment runs at 2 req/s, split feeds). False
    /// when another run took it over (this one then stops).
    async fn renew_lease(
        &self,
        conn: &mut PgConnection,
        shop_id: Uuid,
        run_id: Uuid,
    ) -> Result<bool, RunError> {
        let kept = runs::try_lease(
            conn,
            shop_id,
            ACTION,
            run_id,
            &self.holder,
            self.settings.lease_ttl,
        )
        .await?;
        if !kept {
            tracing::warn!(%shop_id, %run_id, "shipment-feedback lease taken over by another run: stopping");
        }
        Ok(kept)
    }

    /// An SP-API failure that stops the run: logged, and a continuation scheduled when trying
    /// later can help.
    async fn api_failure(
        &self,
        conn: &mut PgConnection,
        shop: &Shop,
        run_id: Uuid,
        operation: &str,
        e: &spapi::Error,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let class = e.class();
        let (level, retry) = match class {
            ErrorClass::Reauthorize => {
                store::shops::set_auth_status(conn, shop.id, Some(&e.to_string())).await?;
                (Level::Attention, false)
            }
            ErrorClass::Permanent => (Level::Error, false),
            _ => (Level::Warning, true),
        };
        let message = match class {
            ErrorClass::Reauthorize => {
                format!("{operation}: the shop must be re-authorized in Seller Central: {e}")
            }
            ErrorClass::Reconcile => format!(
                "{operation}: outcome unknown; Amazon is checked before anything is sent again: {e}"
            ),
            _ => format!("{operation}: {e}"),
        };
        api_log::write(
            conn,
            &Entry {
                run_id: Some(run_id),
                code: Some(match class {
                    ErrorClass::Throttled => "throttled",
                    ErrorClass::Transient => "transient",
                    ErrorClass::Reconcile => "unknown_outcome",
                    ErrorClass::Reauthorize => "reauthorize",
                    _ => "api_error",
                }),
                ..Entry::new(Some(shop.id), ACTION, level, &message)
            },
        )
        .await?;
        if retry {
            let at = e
                .retry_at()
                .unwrap_or_else(Utc::now)
                .max(Utc::now() + self.settings.retry_delay);
            let cmd = Command::new(
                shop.id,
                Action::ShipmentFeedback,
                CommandParams::ShipmentFeedback {},
                "system",
                Utc::now(),
            );
            bus::outbox::enqueue(
                conn,
                OutboxMessage::command(&self.topology, &cmd).not_before(at),
            )
            .await?;
            report.continuation = true;
        }
        Ok(())
    }
}

impl Handler for Service {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let cmd = Command::decode(
            &serde_json::to_vec(&msg.payload).unwrap_or_default(),
            Utc::now(),
        )
        .map_err(HandlerError::reject)?;
        if cmd.action != Action::ShipmentFeedback {
            return Err(HandlerError::reject(format!(
                "{} command on the {SERVICE} queue",
                cmd.action
            )));
        }
        if !self.shop_known(&cmd).await? {
            return Ok(());
        }
        let report = self
            .run(cmd.shop_id, Some(cmd.message_id), &cmd.requested_by)
            .await?;
        tracing::info!(shop_id = %cmd.shop_id, sent = report.sent, refused = report.refused, skipped = report.skipped, duplicate = report.duplicate, "shipment feedback run");
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn offset_of(shop: &Shop, now: DateTime<Utc>) -> FixedOffset {
    use chrono::Offset;
    shop.time_zone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
}

/// When the parcel left: `shipped_at` when the WMS recorded it, else now for today's shipments,
/// else the ship date's evening in the shop's time zone (never in the future).
fn fulfillment_date(
    shop: &Shop,
    t: &Target,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> DateTime<FixedOffset> {
    let today = domain::eligibility::today_in(shop.time_zone, now);
    let at = match (t.shipped_at, t.shipped_on) {
        (Some(at), _) => at,
        (None, Some(day)) if day != today => shop
            .time_zone
            .from_local_datetime(
                &day.and_time(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default()),
            )
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(now),
        _ => now,
    };
    at.min(now).with_timezone(&offset)
}

fn confirmation(
    shop: &Shop,
    t: &Target,
    c: &validate::Checked,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> ShipmentConfirmation {
    let jp = t.marketplace_id.as_deref() == Some(domain::Marketplace::Japan.id());
    ShipmentConfirmation {
        amazon_order_id: t.amazon_order_id.clone().unwrap_or_default(),
        merchant_fulfillment_id: None,
        fulfillment_date: fulfillment_date(shop, t, offset, now),
        carrier: c.carrier.clone(),
        shipping_method: Some(truncate_chars(
            &t.delivery_method_name,
            fulfillment_feed::MAX_STRING_LEN,
        )),
        tracking_number: c.tracking_number.clone(),
        cod_collection_method: (jp && t.payment_method == "cod")
            .then_some(CodCollectionMethod::DirectPayment),
        items: Vec::<FulfillmentItem>::new(),
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// Amazon's code and message of a refused call (for the operator).
fn amazon_message(e: &spapi::Error) -> (String, String) {
    match e.api_errors().first() {
        Some(a) => (
            a.code.clone(),
            match &a.details {
                Some(d) if !d.is_empty() => format!("{} ({d})", a.message),
                _ => a.message.clone(),
            },
        ),
        None => ("api_error".into(), e.to_string()),
    }
}

impl Service {
    /// An unknown shop is refused once with an API-log error, and the message acknowledged.
    async fn shop_known(&self, cmd: &Command) -> Result<bool, HandlerError> {
        let mut conn = self.pool.acquire().await?;
        store::api_log::shop_known_or_refused(&mut conn, SERVICE, cmd.shop_id, cmd.message_id)
            .await
            .map_err(HandlerError::retry)
    }
}
