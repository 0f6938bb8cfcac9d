//! inventory-sync (在庫連携): pushes the free stock (フリー在庫数) of our products, and the handling
//! time (出荷作業日数) where one is set, to the Amazon SKUs mapped to them in the external-product
//! mapping table (seed section 4).
//!
//! One run per command, one run at a time per shop (lease):
//! 1. **Release** submissions an interrupted run left without a recorded `createFeed` outcome:
//!    they are closed as not sent and their SKUs become targets again. (A stock push is
//!    idempotent: sending it twice is harmless, so no `getFeeds` reconciliation is needed, unlike
//!    shipment confirmations.)
//! 2. **Targets**, read in one statement ([`store::inventory::targets`]): mapped SKUs whose
//!    product's free stock changed since their last push (`stock.change_seq`), whose handling
//!    time differs from what was pushed, never pushed, or whose last push failed; every mapped
//!    SKU in `full` mode. Nothing else is sent; with no target no Amazon call is made at all.
//! 3. Per marketplace, one `JSON_LISTINGS_FEED` (split at 25,000 messages): `PATCH` `merge` on
//!    `/attributes/fulfillment_availability` with `fulfillment_channel_code: DEFAULT`, the
//!    quantity, and `lead_time_to_ship_max_days` only when set (a merge leaves Amazon's handling
//!    time alone otherwise).
//! 4. Per feed: record the submission and every messageId ↔ SKU with the quantity, handling
//!    days and change sequence sent (**intent**, committed before any call), upload, mark
//!    `in_flight`, `createFeed`, then in one transaction: feed id, SKUs `sent`, API log,
//!    `feed.submitted` (outbox). feed-poller applies the processing report with
//!    [`store::inventory::apply_listing_results`] (see [`results`]).
//! 5. When Amazon throttles or fails, the SKUs not accepted are marked `failed` and a
//!    continuation command is scheduled (outbox `not_before`); the next run sends them.
//!
//! A stock change that lands while a run builds its feed has a higher `change_seq` than the one
//! recorded for the push, so the next run picks it up.

pub mod results;

use std::collections::BTreeMap;

use bus::{Handler, HandlerError, Incoming, OutboxMessage, Topology};
use chrono::Utc;
use domain::Marketplace;
use domain::messages::{Action, Command, CommandParams, Event, EventKind};
use domain::shop::Shop;
use serde::Serialize;
use sha2::{Digest, Sha256};
use spapi::listings_feed::{self, InventoryUpdate, ListingsFeedOptions};
use spapi::{ErrorClass, SpApi};
use sqlx::PgPool;
use store::api_log::{self, Entry, Level};
use store::feeds as feeds_store;
use store::inventory::{self, ListingMessage};
use store::runs::{self, NewRun, NewRunLease, RunStatus};
use uuid::Uuid;

/// Service, queue and API-log action name.
pub const SERVICE: &str = "inventory-sync";
const ACTION: &str = "inventory-sync";
/// Feed type of the pushes.
pub const FEED_TYPE: &str = spapi::feeds::JSON_LISTINGS_FEED;

/// Tuning.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lease of one run per shop.
    pub lease_ttl: chrono::Duration,
    /// First `getFeed` of a new feed after this long (feed-poller).
    pub first_poll_delay: chrono::Duration,
    /// Messages per feed (Amazon's maximum is 25,000).
    pub max_messages_per_feed: usize,
    /// When Amazon throttles or fails transiently, the continuation runs after this long (at least).
    pub retry_delay: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease_ttl: chrono::Duration::minutes(15),
            first_poll_delay: chrono::Duration::seconds(60),
            max_messages_per_feed: listings_feed::MAX_MESSAGES_PER_FEED,
            retry_delay: chrono::Duration::seconds(60),
        }
    }
}

/// What a run did (also the ledger's `counts`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: Option<Uuid>,
    /// Another run held the lease, or the shop is inactive: nothing done.
    pub skipped: bool,
    /// The command already ran (redelivery): nothing done.
    pub duplicate: bool,
    pub full: bool,
    /// SKUs selected.
    pub targets: usize,
    /// Why they were selected (`never`, `failed`, `stock`, `handling_days`, `full`).
    pub by_reason: BTreeMap<String, usize>,
    /// Refused by the feed builder (logged, marked failed).
    pub rejected: usize,
    /// Messages in feeds Amazon accepted (all marketplaces).
    pub sent: usize,
    /// SKUs whose feed Amazon did not accept (marked failed, sent by the next run).
    pub not_sent: usize,
    /// Feeds submitted by this run.
    pub feed_submission_ids: Vec<Uuid>,
    /// Submissions of an interrupted run closed as not sent.
    pub released: usize,
    /// A continuation was scheduled (throttling, transient failure, unknown outcome).
    pub continuation: bool,
    /// SP-API calls made by this run (createFeedDocument, createFeed).
    pub amazon_calls: u32,
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
}

impl From<RunError> for HandlerError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Config(m) => HandlerError::Reject(m),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

/// The inventory-sync service.
#[derive(Clone)]
pub struct Service {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    topology: Topology,
    settings: Settings,
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
            holder: format!("{SERVICE}@{}", std::process::id()),
        }
    }

    /// From the runtime context.
    pub fn from_ctx(ctx: runtime::Ctx) -> anyhow::Result<Self> {
        let api = ctx.spapi_client()?;
        Ok(Self::new(
            ctx.pool,
            ctx.keys,
            api,
            ctx.topology,
            Settings::default(),
        ))
    }

    /// The SP-API handle of a shop (its endpoints and decrypted credentials).
    pub async fn shop_api(&self, shop: &Shop) -> Result<spapi::Shop, RunError> {
        let mut conn = self.pool.acquire().await?;
        Ok(runtime::shop_api(&mut conn, &self.keys, &self.api, shop).await?)
    }

    /// Runs the action for one shop now (`full`: every mapped SKU).
    pub async fn run(
        &self,
        shop_id: Uuid,
        full: bool,
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
        let record = store::shops::get(&mut conn, shop_id).await?;
        let shop = record.shop;
        let run_id = runs::insert(
            &mut conn,
            &NewRun {
                shop_id,
                action: ACTION,
                mode: Some(if full { "full" } else { "changes" }),
                status: RunStatus::Running,
                command_id,
                requested_by: Some(requested_by),
            },
        )
        .await?;
        let mut report = RunReport {
            run_id: Some(run_id),
            full,
            ..Default::default()
        };
        if !record.active {
            report.skipped = true;
            let counts = serde_json::to_value(&report).unwrap_or_default();
            runs::finish(
                &mut conn,
                run_id,
                RunStatus::Skipped,
                None,
                &counts,
                0,
                Some("shop is inactive"),
            )
            .await?;
            return Ok(report);
        }
        let mut skipped_counts = serde_json::to_value(&report).unwrap_or_default();
        skipped_counts["skipped"] = true.into();
        match runs::lease_new_run(
            &mut conn,
            shop_id,
            ACTION,
            run_id,
            command_id,
            &self.holder,
            self.settings.lease_ttl,
            &skipped_counts,
        )
        .await?
        {
            NewRunLease::Leased => {}
            NewRunLease::Busy => {
                report.skipped = true;
                return Ok(report);
            }
            NewRunLease::Duplicate => {
                report.duplicate = true;
                return Ok(report);
            }
        }
        drop(conn);
        let result = self.run_leased(&shop, run_id, full, &mut report).await;
        let mut conn = self.pool.acquire().await?;
        let counts = serde_json::to_value(&report).unwrap_or_default();
        let calls = i32::try_from(report.amazon_calls).unwrap_or(i32::MAX);
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
        full: bool,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        // 1. Submissions an interrupted run left open: their SKUs are sent again.
        {
            let mut conn = self.pool.acquire().await?;
            for sub in feeds_store::unresolved(&mut conn, shop.id, FEED_TYPE).await? {
                let why =
                    "interrupted before Amazon's answer was recorded: the SKUs are sent again";
                let mut tx = self.pool.begin().await?;
                feeds_store::mark_not_sent(&mut tx, sub.id, why).await?;
                inventory::mark_skus_not_sent(&mut tx, sub.id, why).await?;
                tx.commit().await?;
                report.released += 1;
            }
        }

        // 2. Targets: one consistent read of stock and mappings.
        let targets = {
            let mut conn = self.pool.acquire().await?;
            inventory::targets(&mut conn, shop.id, full).await?
        };
        report.targets = targets.len();
        for t in &targets {
            *report
                .by_reason
                .entry(
                    serde_json::to_value(t.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                )
                .or_default() += 1;
        }
        if targets.is_empty() {
            let mut conn = self.pool.acquire().await?;
            api_log::write(
                &mut conn,
                &Entry {
                    run_id: Some(run_id),
                    code: Some("nothing_to_push"),
                    ..Entry::new(Some(shop.id), ACTION, Level::Info, "no stock or handling-time change since the last run: nothing sent to Amazon")
                },
            )
            .await?;
            return Ok(());
        }

        // 3–4. One feed per marketplace (split at 25,000 messages).
        let api = self.shop_api(shop).await?;
        let mut unsent: Vec<Uuid> = Vec::new();
        let mut stop: Option<String> = None;
        for (n, marketplace) in shop.marketplaces.iter().enumerate() {
            let built = listings_feed::build_listings_feeds(
                &shop.seller_id,
                targets.iter().enumerate().map(|(i, t)| {
                    (
                        i,
                        InventoryUpdate {
                            sku: t.sku.clone(),
                            quantity: u32::try_from(t.quantity).unwrap_or(0),
                            handling_days: t.handling_days.and_then(|d| u32::try_from(d).ok()),
                            product_type: None,
                        },
                    )
                }),
                &ListingsFeedOptions {
                    issue_locale: Some(issue_locale(*marketplace).to_owned()),
                    max_messages_per_feed: self.settings.max_messages_per_feed,
                    ..Default::default()
                },
            );
            if n == 0 && !built.rejected.is_empty() {
                let mut tx = self.pool.begin().await?;
                for r in &built.rejected {
                    let t = &targets[r.key];
                    let text = format!("not sent to Amazon: {}", r.problem);
                    inventory::mark_failed(&mut tx, &[t.external_product_id], &text).await?;
                    api_log::write(
                        &mut tx,
                        &Entry {
                            run_id: Some(run_id),
                            sku: Some(&t.sku),
                            code: Some("invalid_inventory_update"),
                            ..Entry::new(Some(shop.id), ACTION, Level::Error, &text)
                        },
                    )
                    .await?;
                }
                tx.commit().await?;
                report.rejected = built.rejected.len();
            }
            for feed in built.feeds {
                if stop.is_some() {
                    unsent.extend(
                        feed.messages
                            .iter()
                            .map(|m| targets[m.key].external_product_id),
                    );
                    continue;
                }
                let messages: Vec<ListingMessage<'_>> = feed
                    .messages
                    .iter()
                    .map(|m| ListingMessage {
                        message_id: i64::try_from(m.message_id).unwrap_or(i64::MAX),
                        target: &targets[m.key],
                    })
                    .collect();
                match self
                    .submit(
                        shop,
                        &api,
                        run_id,
                        marketplace.id(),
                        feed.json,
                        &messages,
                        report,
                    )
                    .await?
                {
                    None => {}
                    Some(reason) => stop = Some(reason),
                }
            }
        }
        if !unsent.is_empty() {
            let why = format!(
                "not sent yet: {}; sent by the next run",
                stop.as_deref().unwrap_or("the run stopped")
            );
            let mut conn = self.pool.acquire().await?;
            unsent.sort();
            unsent.dedup();
            inventory::mark_failed(&mut conn, &unsent, &why).await?;
            report.not_sent += unsent.len();
        }

        // Summary.
        let mut conn = self.pool.acquire().await?;
        let level = if stop.is_some() {
            Level::Warning
        } else {
            Level::Info
        };
        let message = format!(
            "{} SKU(s) to push ({}), {} message(s) in {} feed(s) accepted by Amazon for {} marketplace(s){}",
            report.targets,
            if full { "full" } else { "changes" },
            report.sent,
            report.feed_submission_ids.len(),
            shop.marketplaces.len(),
            match &stop {
                Some(why) => format!("; stopped: {why}"),
                None => String::new(),
            }
        );
        api_log::write(
            &mut conn,
            &Entry {
                run_id: Some(run_id),
                code: Some("inventory_sync_summary"),
                details: serde_json::to_value(&*report).ok(),
                ..Entry::new(Some(shop.id), ACTION, level, &message)
            },
        )
        .await?;
        Ok(())
    }

    /// Records, uploads and submits one feed. Returns why the run must stop sending (Amazon
    /// refused, throttled or failed), after recording it.
    #[allow(clippy::too_many_arguments)]
    async fn submit(
        &self,
        shop: &Shop,
        api: &spapi::Shop,
        run_id: Uuid,
        marketplace_id: &str,
        json: String,
        messages: &[ListingMessage<'_>],
        report: &mut RunReport,
    ) -> Result<Option<String>, RunError> {
        let sha = hex(&Sha256::digest(json.as_bytes()));
        // Intent: submission + messageId ↔ SKU, quantity, handling days, change sequence.
        let submission = {
            let mut tx = self.pool.begin().await?;
            let id = inventory::insert_listing_submission(
                &mut tx,
                shop.id,
                run_id,
                marketplace_id,
                &sha,
                messages,
            )
            .await?;
            tx.commit().await?;
            id
        };
        report.amazon_calls += 1;
        let document = match api
            .prepare_feed_document(spapi::feeds::JSON_CONTENT_TYPE, json.into_bytes())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return self
                    .not_accepted(
                        shop,
                        run_id,
                        submission,
                        "createFeedDocument/upload",
                        &e,
                        report,
                    )
                    .await
                    .map(Some);
            }
        };
        {
            let mut conn = self.pool.acquire().await?;
            feeds_store::mark_in_flight(&mut conn, submission, &document.feed_document_id).await?;
        }
        let spec = spapi::feeds::CreateFeedSpecification {
            feed_type: FEED_TYPE.to_owned(),
            marketplace_ids: vec![marketplace_id.to_owned()],
            input_feed_document_id: document.feed_document_id.clone(),
            feed_options: None,
        };
        report.amazon_calls += 1;
        match api.create_feed(&spec).await {
            Ok(created) => {
                let mut tx = self.pool.begin().await?;
                let next_poll = Utc::now() + self.settings.first_poll_delay;
                if feeds_store::mark_submitted(&mut tx, submission, &created.feed_id, next_poll)
                    .await?
                {
                    let skus = inventory::mark_skus_sent(&mut tx, submission, run_id).await?;
                    api_log::write(
                        &mut tx,
                        &Entry {
                            run_id: Some(run_id),
                            code: Some("feed_submitted"),
                            details: Some(serde_json::json!({
                                "feed_submission_id": submission,
                                "feed_id": created.feed_id,
                                "marketplace_id": marketplace_id,
                                "messages": messages.len(),
                            })),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Info,
                                &format!(
                                    "feed {} accepted by Amazon: stock of {skus} SKU(s) for marketplace {marketplace_id}",
                                    created.feed_id
                                ),
                            )
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
                        &mut tx,
                        OutboxMessage::new(
                            self.topology.events_exchange(),
                            event.kind.routing_key(),
                            serde_json::to_value(&event).unwrap_or_default(),
                        ),
                    )
                    .await?;
                }
                tx.commit().await?;
                report.sent += messages.len();
                report.feed_submission_ids.push(submission);
                Ok(None)
            }
            Err(e) => self
                .not_accepted(shop, run_id, submission, "createFeed", &e, report)
                .await
                .map(Some),
        }
    }

    /// Amazon did not accept a feed (or its outcome is unknown: a stock push is safe to repeat,
    /// so it is treated as not sent). Its SKUs are `failed` and sent by the next run; the
    /// failure is logged and a continuation scheduled when waiting can help.
    async fn not_accepted(
        &self,
        shop: &Shop,
        run_id: Uuid,
        submission: Uuid,
        operation: &str,
        e: &spapi::Error,
        report: &mut RunReport,
    ) -> Result<String, RunError> {
        let class = e.class();
        let reason = format!("{operation}: {e}");
        let mut tx = self.pool.begin().await?;
        feeds_store::mark_not_sent(&mut tx, submission, &reason).await?;
        let n = inventory::mark_skus_not_sent(&mut tx, submission, &format!("not sent: {reason}"))
            .await?;
        report.not_sent += usize::try_from(n).unwrap_or(usize::MAX);
        let (level, retry) = match class {
            ErrorClass::Reauthorize => {
                store::shops::set_auth_status(&mut tx, shop.id, Some(&e.to_string())).await?;
                (Level::Attention, false)
            }
            ErrorClass::Permanent => (Level::Error, false),
            _ => (Level::Warning, true),
        };
        let message = match class {
            ErrorClass::Reauthorize => {
                format!("{operation}: the shop must be re-authorized in Seller Central: {e}")
            }
            ErrorClass::Throttled => format!(
                "{operation}: Amazon's feed quota is used up; the stock is sent by the next run: {e}"
            ),
            _ => format!("{operation}: the stock is sent by the next run: {e}"),
        };
        api_log::write(
            &mut tx,
            &Entry {
                run_id: Some(run_id),
                code: Some(match class {
                    ErrorClass::Throttled => "throttled",
                    ErrorClass::Transient => "transient",
                    ErrorClass::Reconcile => "unknown_outcome",
                    ErrorClass::Reauthorize => "reauthorize",
                    _ => "api_error",
                }),
                details: Some(serde_json::json!({"feed_submission_id": submission})),
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
                Action::InventorySync,
                CommandParams::InventorySync { full: false },
                "system",
                Utc::now(),
            );
            bus::outbox::enqueue(
                &mut tx,
                OutboxMessage::command(&self.topology, &cmd).not_before(at),
            )
            .await?;
            report.continuation = true;
        }
        tx.commit().await?;
        Ok(reason)
    }
}

impl Handler for Service {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        let cmd = Command::decode(
            &serde_json::to_vec(&msg.payload).unwrap_or_default(),
            Utc::now(),
        )
        .map_err(HandlerError::reject)?;
        if cmd.action != Action::InventorySync {
            return Err(HandlerError::reject(format!(
                "{} command on the {SERVICE} queue",
                cmd.action
            )));
        }
        if !self.shop_known(&cmd).await? {
            return Ok(());
        }
        let full = match cmd.params {
            CommandParams::InventorySync { full } => full,
            // A continuation is a differential run: what was not accepted is marked failed.
            CommandParams::Continue { .. } => false,
            ref other => {
                return Err(HandlerError::reject(format!(
                    "unexpected parameters for {SERVICE}: {other:?}"
                )));
            }
        };
        let report = self
            .run(cmd.shop_id, full, Some(cmd.message_id), &cmd.requested_by)
            .await?;
        tracing::info!(
            shop_id = %cmd.shop_id,
            targets = report.targets,
            sent = report.sent,
            feeds = report.feed_submission_ids.len(),
            skipped = report.skipped,
            duplicate = report.duplicate,
            "inventory sync run"
        );
        Ok(())
    }
}

/// `header.issueLocale` for a marketplace (Amazon's issue texts in the shop's language).
pub fn issue_locale(m: Marketplace) -> &'static str {
    match m {
        Marketplace::Japan => "ja_JP",
        Marketplace::Australia => "en_AU",
        Marketplace::Singapore => "en_SG",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
