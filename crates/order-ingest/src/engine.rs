//! The run engine: command → run ledger row and lease → pages → continuation or finish.

use std::time::Instant;

use bus::{HandlerError, Incoming, Topology};
use chrono::{DateTime, Duration, Utc};
use domain::{
    messages::{Action, Command, CommandParams, MESSAGE_VERSION},
    window::{self, ImportMode, Window},
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use store::{
    StoreError, api_log,
    runs::{self, NewRun, Progress, RunStatus},
    shops::{self, ShopRecord},
};
use uuid::Uuid;

use spapi::{ErrorClass, SpApi, orders::SearchOrdersParams};

use orders::{Counts, apply_orders};

/// Action, queue and ledger name (the ledger name of every order import).
pub const ACTION: &str = orders::ACTION;

/// Tuning of the service.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// `maxResultsPerPage` (1-100).
    pub page_size: u32,
    /// The (shop, action) lease lasts this long past the last sign of life of a run.
    pub lease_ttl: Duration,
    /// First delay before continuing after a transient Amazon failure (doubles each time).
    pub transient_retry: Duration,
    /// Transient failures in a row after which the run fails.
    pub max_transient_failures: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            page_size: 100,
            lease_ttl: Duration::minutes(10),
            transient_retry: Duration::seconds(30),
            max_transient_failures: 5,
        }
    }
}

/// Where a run is in Amazon's pagination (stored in `action_runs.cursor`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// Token of the next page (valid 24 h); `None` before the first page.
    #[serde(default)]
    next_token: Option<String>,
    /// Transient failures in a row.
    #[serde(default)]
    transient_failures: u32,
}

/// Errors of the engine. Every variant is transient for the message (retry): the run's own
/// failures are recorded in the ledger and acknowledged instead of being returned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Orders(#[from] orders::Error),
    #[error(transparent)]
    Api(#[from] spapi::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<ImportError> for HandlerError {
    fn from(e: ImportError) -> Self {
        HandlerError::retry(e)
    }
}

/// The order-ingest handler. Cheap to clone.
#[derive(Clone)]
pub struct OrderIngest {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    topology: Topology,
    config: IngestConfig,
    holder: String,
}

impl std::fmt::Debug for OrderIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderIngest")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl OrderIngest {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        config: IngestConfig,
    ) -> Self {
        Self {
            pool,
            keys,
            api,
            topology,
            config,
            holder: format!("{ACTION}@{}", std::process::id()),
        }
    }

    /// The SP-API client (call statistics).
    pub fn api(&self) -> &SpApi {
        &self.api
    }

    async fn handle_message(&self, msg: &Incoming) -> Result<(), HandlerError> {
        let cmd: Command = msg.payload_as()?;
        if cmd.version != MESSAGE_VERSION {
            return Err(HandlerError::reject(format!(
                "command version {} is not supported: this service reads version {MESSAGE_VERSION}",
                cmd.version
            )));
        }
        match cmd.params {
            CommandParams::Continue { run_id } => self.resume(run_id).await?,
            _ => self.start(&cmd).await?,
        }
        Ok(())
    }

    /// A new trigger: validate, plan, open the run, take the lease, go.
    async fn start(&self, cmd: &Command) -> Result<(), ImportError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let shop = match shops::get(&mut tx, cmd.shop_id).await {
            Ok(s) => s,
            Err(StoreError::NotFound { .. }) => {
                api_log::refuse_unknown_shop(&mut tx, ACTION, cmd.shop_id, cmd.message_id).await?;
                tx.commit().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // A redelivered trigger: resume a run that died while running, else nothing to do.
        if let Some((run_id, status)) = runs::for_command(&mut tx, cmd.message_id, ACTION).await? {
            tx.commit().await?;
            if status == "running" {
                tracing::info!(%run_id, "trigger redelivered while its run was running: resuming");
                return self.execute(run_id).await;
            }
            tracing::info!(%run_id, status, "duplicate trigger, already handled");
            return Ok(());
        }
        let mode = match (cmd.action, &cmd.params) {
            (Action::OrderIngest, CommandParams::OrderIngest { mode }) => Some(*mode),
            _ => None,
        };
        let planned: Result<Window, String> = match mode {
            None => Err(format!(
                "trigger refused: {} parameters were sent to the order-ingest queue",
                cmd.params.action().map_or("continuation", |a| a.as_str())
            )),
            Some(mode) => {
                let watermark = if mode == ImportMode::Differential {
                    runs::last_watermark(&mut tx, shop.shop.id, ACTION, Some("differential"))
                        .await?
                } else {
                    None
                };
                window::plan(mode, watermark, now).map_err(|e| format!("trigger refused: {e}"))
            }
        };
        let mode_name = mode.map(|m| m.name());
        let window = match planned {
            Ok(w) => w,
            Err(message) => {
                let run = NewRun {
                    shop_id: shop.shop.id,
                    action: ACTION,
                    mode: mode_name,
                    status: RunStatus::Rejected,
                    command_id: Some(cmd.message_id),
                    requested_by: Some(&cmd.requested_by),
                };
                let details = serde_json::to_value(&cmd.params).ok();
                runs::reject(&mut tx, &run, &message, details).await?;
                tx.commit().await?;
                return Ok(());
            }
        };
        let run_id = runs::insert(
            &mut tx,
            &NewRun {
                shop_id: shop.shop.id,
                action: ACTION,
                mode: mode_name,
                status: RunStatus::Running,
                command_id: Some(cmd.message_id),
                requested_by: Some(&cmd.requested_by),
            },
        )
        .await?;
        if !runs::try_lease(
            &mut tx,
            shop.shop.id,
            ACTION,
            run_id,
            &self.holder,
            self.config.lease_ttl,
        )
        .await?
        {
            let message = "skipped: another order-ingest run of this shop is active (running or waiting for Amazon's quota)";
            runs::skip(&mut tx, run_id, shop.shop.id, ACTION, message).await?;
            tx.commit().await?;
            return Ok(());
        }
        runs::save_progress(
            &mut tx,
            run_id,
            RunStatus::Running,
            &Progress {
                window_from: Some(window.from),
                window_to: Some(window.to),
                cursor: Some(serde_json::to_value(Cursor::default()).unwrap_or_default()),
                counts: serde_json::to_value(Counts::default()).unwrap_or_default(),
                amazon_calls: 0,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%run_id, mode = mode_name, from = %window.from, to = %window.to, "order-ingest run started");
        self.execute(run_id).await
    }

    /// A continuation: the run waited for Amazon's quota and is due now.
    async fn resume(&self, run_id: Uuid) -> Result<(), ImportError> {
        let mut tx = self.pool.begin().await?;
        let claim =
            runs::claim_continuation(&mut tx, run_id, ACTION, &self.holder, self.config.lease_ttl)
                .await?;
        if let runs::Continuation::RetryAt { at, shop_id } = claim {
            let msg =
                runtime::continuation(&self.topology, Action::OrderIngest, shop_id, run_id, at);
            bus::outbox::enqueue(&mut tx, msg).await?;
        }
        tx.commit().await?;
        match claim {
            runs::Continuation::Run => self.execute(run_id).await,
            _ => Ok(()),
        }
    }

    /// Fetches and applies pages until the last one, or until Amazon's quota says "later".
    async fn execute(&self, run_id: Uuid) -> Result<(), ImportError> {
        let mut conn = self.pool.acquire().await?;
        let run = runs::get(&mut conn, run_id).await?;
        let shop = shops::get(&mut conn, run.shop_id).await?;
        let (Some(from), Some(to)) = (run.window_from, run.window_to) else {
            return Err(ImportError::Invalid(format!("run {run_id} has no window")));
        };
        let mut cursor: Cursor = run
            .cursor
            .clone()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        let mut counts: Counts = serde_json::from_value(run.counts.clone()).unwrap_or_default();
        let handle = match runtime::shop_api(&mut conn, &self.keys, &self.api, &shop.shop).await {
            Ok(h) => h,
            Err(e) => {
                drop(conn);
                return self
                    .fail(&shop, run_id, run.started_at, &counts, &e.to_string())
                    .await;
            }
        };
        drop(conn);
        let base = orders::import_search(&shop.shop, from, to, self.config.page_size);
        loop {
            let started = Instant::now();
            let params = SearchOrdersParams {
                pagination_token: cursor.next_token.clone(),
                ..base.clone()
            };
            match handle.search_orders(&params).await {
                Ok(resp) => {
                    *counts.calls.entry("searchOrders".into()).or_default() += 1;
                    let fetched = started.elapsed();
                    let mut tx = self.pool.begin().await?;
                    apply_orders(
                        &mut tx,
                        &self.keys,
                        &self.topology.events_exchange(),
                        shop.shop.id,
                        Some(run_id),
                        &resp.orders,
                        &mut counts,
                    )
                    .await?;
                    counts.pages += 1;
                    cursor.transient_failures = 0;
                    cursor.next_token = resp.pagination.and_then(|p| p.next_token);
                    counts.active_ms += started.elapsed().as_millis() as i64;
                    tracing::debug!(%run_id, orders = resp.orders.len(), fetch_ms = fetched.as_millis() as u64,
                        apply_ms = (started.elapsed() - fetched).as_millis() as u64, "page imported");
                    if cursor.next_token.is_some() {
                        runs::save_progress(
                            &mut tx,
                            run_id,
                            RunStatus::Running,
                            &progress(&cursor, &counts),
                        )
                        .await?;
                        runs::try_lease(
                            &mut tx,
                            shop.shop.id,
                            ACTION,
                            run_id,
                            &self.holder,
                            self.config.lease_ttl,
                        )
                        .await?;
                        tx.commit().await?;
                        continue;
                    }
                    let watermark = resp.created_before.unwrap_or(to);
                    self.finish_ok(&mut tx, &shop, &run, watermark, &mut counts)
                        .await?;
                    tx.commit().await?;
                    return Ok(());
                }
                Err(e) => {
                    counts.active_ms += started.elapsed().as_millis() as i64;
                    let now = Utc::now();
                    match e.class() {
                        ErrorClass::Throttled => {
                            // The shared limiter refused locally (no call was made) or Amazon
                            // kept answering 429: continue when a token is due.
                            let at = e.retry_at().unwrap_or(now + Duration::minutes(3)).max(now);
                            return self.schedule(&shop, run_id, &cursor, &mut counts, at).await;
                        }
                        ErrorClass::Transient => {
                            *counts.calls.entry("searchOrders".into()).or_default() += 1;
                            cursor.transient_failures += 1;
                            if cursor.transient_failures > self.config.max_transient_failures {
                                let msg = format!(
                                    "failed after {} transient Amazon errors in a row: {e}",
                                    cursor.transient_failures
                                );
                                return self
                                    .fail(&shop, run_id, run.started_at, &counts, &msg)
                                    .await;
                            }
                            let delay = self.config.transient_retry
                                * 2i32.pow(cursor.transient_failures.saturating_sub(1).min(6));
                            tracing::warn!(%run_id, error = %e, "transient Amazon error: continuing later");
                            return self
                                .schedule(&shop, run_id, &cursor, &mut counts, now + delay)
                                .await;
                        }
                        ErrorClass::Reauthorize => {
                            let mut c = self.pool.acquire().await?;
                            shops::set_auth_status(&mut c, shop.shop.id, Some(&e.to_string()))
                                .await?;
                            let msg = format!(
                                "failed: the shop must be re-authorized by the seller: {e}"
                            );
                            drop(c);
                            return self
                                .fail(&shop, run_id, run.started_at, &counts, &msg)
                                .await;
                        }
                        _ => {
                            *counts.calls.entry("searchOrders".into()).or_default() += 1;
                            let msg = format!("failed: Amazon refused the request: {e}");
                            return self
                                .fail(&shop, run_id, run.started_at, &counts, &msg)
                                .await;
                        }
                    }
                }
            }
        }
    }

    /// Stores the cursor, schedules a `Continue` at `at` and keeps the lease until then.
    async fn schedule(
        &self,
        shop: &ShopRecord,
        run_id: Uuid,
        cursor: &Cursor,
        counts: &mut Counts,
        at: DateTime<Utc>,
    ) -> Result<(), ImportError> {
        counts.continuations += 1;
        let mut tx = self.pool.begin().await?;
        runs::save_progress(
            &mut tx,
            run_id,
            RunStatus::Waiting,
            &progress(cursor, counts),
        )
        .await?;
        let ttl = (at - Utc::now()).max(Duration::zero()) + self.config.lease_ttl;
        runs::try_lease(&mut tx, shop.shop.id, ACTION, run_id, &self.holder, ttl).await?;
        let msg = runtime::continuation(
            &self.topology,
            Action::OrderIngest,
            shop.shop.id,
            run_id,
            at,
        );
        bus::outbox::enqueue(&mut tx, msg).await?;
        tx.commit().await?;
        tracing::info!(%run_id, continue_at = %at, "waiting for Amazon's quota: continuation scheduled, message released");
        Ok(())
    }

    async fn finish_ok(
        &self,
        tx: &mut PgConnection,
        shop: &ShopRecord,
        run: &runs::Run,
        watermark: DateTime<Utc>,
        counts: &mut Counts,
    ) -> Result<(), ImportError> {
        counts.duration_ms = Some((Utc::now() - run.started_at).num_milliseconds());
        let counts_json = serde_json::to_value(&*counts).unwrap_or_default();
        runs::finish(
            &mut *tx,
            run.id,
            RunStatus::Succeeded,
            Some(watermark),
            &counts_json,
            counts.total_calls(),
            None,
        )
        .await?;
        runs::release_lease(&mut *tx, shop.shop.id, ACTION, run.id).await?;
        let calls: Vec<String> = counts
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let message = format!(
            "order-ingest {} {} .. {}: {} page(s), {} order(s): {} new, {} updated, {} unchanged, {} not imported; \
             {} unmapped line(s); {} Amazon call(s) ({}); {} continuation(s); {:.1} s",
            run.mode.as_deref().unwrap_or("-"),
            run.window_from.map(|t| t.to_rfc3339()).unwrap_or_default(),
            run.window_to.map(|t| t.to_rfc3339()).unwrap_or_default(),
            counts.pages,
            counts.orders,
            counts.new,
            counts.updated,
            counts.unchanged,
            counts.failed,
            counts.unmapped_lines,
            counts.total_calls(),
            calls.join(", "),
            counts.continuations,
            counts.duration_ms.unwrap_or_default() as f64 / 1000.0,
        );
        let level = if counts.failed > 0 || counts.unmapped_lines > 0 {
            api_log::Level::Warning
        } else {
            api_log::Level::Info
        };
        api_log::write(
            &mut *tx,
            &api_log::Entry {
                run_id: Some(run.id),
                code: Some("run_summary"),
                details: Some(counts_json),
                ..api_log::Entry::new(Some(shop.shop.id), ACTION, level, &message)
            },
        )
        .await?;
        tracing::info!(run_id = %run.id, %message, "order-ingest run finished");
        Ok(())
    }

    async fn fail(
        &self,
        shop: &ShopRecord,
        run_id: Uuid,
        started_at: DateTime<Utc>,
        counts: &Counts,
        message: &str,
    ) -> Result<(), ImportError> {
        let mut counts = counts.clone();
        counts.duration_ms = Some((Utc::now() - started_at).num_milliseconds());
        let counts_json = serde_json::to_value(&counts).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        runs::finish(
            &mut tx,
            run_id,
            RunStatus::Failed,
            None,
            &counts_json,
            counts.total_calls(),
            Some(message),
        )
        .await?;
        runs::release_lease(&mut tx, shop.shop.id, ACTION, run_id).await?;
        api_log::write(
            &mut tx,
            &api_log::Entry {
                run_id: Some(run_id),
                code: Some("run_failed"),
                details: Some(counts_json),
                ..api_log::Entry::new(Some(shop.shop.id), ACTION, api_log::Level::Error, message)
            },
        )
        .await?;
        tx.commit().await?;
        tracing::error!(%run_id, %message, "order-ingest run failed");
        Ok(())
    }
}

fn progress(cursor: &Cursor, counts: &Counts) -> Progress {
    Progress {
        window_from: None,
        window_to: None,
        cursor: Some(serde_json::to_value(cursor).unwrap_or_default()),
        counts: serde_json::to_value(counts).unwrap_or_default(),
        amazon_calls: counts.total_calls(),
    }
}

impl bus::Handler for OrderIngest {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.handle_message(&msg).await
    }
}
