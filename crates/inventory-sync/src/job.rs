//! The service's part of a run on the job runner: plan (`full` or changes; an inactive shop is
//! skipped) and one step (release → targets → one feed per marketplace).

use domain::Marketplace;
use domain::messages::{Action, CommandParams};
use job_api::errors::Decision;
use job_api::{
    Build, Deps, Job, JobError, Planned, Planning, Resume, RunCtx, Running, Step, Summary,
};
use serde::{Deserialize, Serialize};
use spapi::listings_feed::{
    self, InventoryUpdate, ListingsFeedOptions, ListingsFeeds, RejectedUpdate,
};
use store::api_log::{self, Entry, Level};
use store::feeds as feeds_store;
use store::inventory::{self, ListingMessage, Target};
use uuid::Uuid;

use crate::submit::{Feed, Stop};
use crate::{ACTION, FEED_TYPE, RunReport, Settings, issue_locale};

/// What a run pushes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Plan {
    /// Every mapped SKU, not only the changed ones.
    pub full: bool,
}

/// The run context of an inventory-sync step.
pub(crate) type Run<'a> = RunCtx<'a, Plan>;

/// The inventory-sync job.
pub(crate) struct Sync {
    pub(crate) deps: Deps,
    pub(crate) settings: Settings,
}

impl Build for Sync {
    type Config = Settings;

    fn build(deps: Deps, settings: Settings) -> (Self, job_api::Settings) {
        let runner = job_api::Settings::one_step(settings.lease_ttl, settings.retry_delay);
        (Self { deps, settings }, runner)
    }
}

impl Job for Sync {
    type Plan = Plan;
    type Cursor = ();
    type Counts = RunReport;
    const ACTION: Action = Action::InventorySync;
    /// Each run selects its SKUs again: what Amazon did not take is marked failed and sent by the
    /// next run.
    const RESUME: Resume = Resume::NextRun;

    async fn plan(&self, at: Planning<'_>) -> Result<Planned<Plan>, JobError> {
        let full = matches!(
            at.trigger.params,
            CommandParams::InventorySync { full: true }
        );
        let mode = Some(if full { "full" } else { "changes" }.to_owned());
        if !at.shop.active {
            return Ok(Planned::Skip {
                message: "shop is inactive".into(),
                mode,
            });
        }
        Ok(Planned::Run {
            plan: Plan { full },
            mode,
        })
    }

    async fn step(&self, running: &mut Running<'_, Self>) -> Result<Step, JobError> {
        let Running {
            ctx: run,
            counts: report,
            ..
        } = running;
        report.full = run.plan.full;
        self.run_once(run, report).await?;
        Ok(Step::Done { watermark: None })
    }

    fn summary(&self, run: &Run<'_>, report: &RunReport) -> Option<Summary> {
        let shop = &run.shop.shop;
        if report.targets == 0 {
            return Some(Summary {
                level: Level::Info,
                code: "nothing_to_push",
                message:
                    "no stock or handling-time change since the last run: nothing sent to Amazon"
                        .into(),
                details: None,
            });
        }
        let message = format!(
            "{} SKU(s) to push ({}), {} message(s) in {} feed(s) accepted by Amazon for {} marketplace(s){}",
            report.targets,
            if report.full { "full" } else { "changes" },
            report.sent,
            report.feed_submission_ids.len(),
            shop.marketplaces.len(),
            match &report.stopped {
                Some(why) => format!("; stopped: {why}"),
                None => String::new(),
            }
        );
        Some(Summary {
            level: if report.stopped.is_some() {
                Level::Warning
            } else {
                Level::Info
            },
            code: "inventory_sync_summary",
            message,
            details: serde_json::to_value(report).ok(),
        })
    }

    fn amazon_calls(&self, report: &RunReport) -> i32 {
        i32::try_from(report.amazon_calls).unwrap_or(i32::MAX)
    }

    fn next_run_params(&self, _plan: &Plan) -> CommandParams {
        // A continuation is a differential run: what was not accepted is marked failed.
        CommandParams::InventorySync { full: false }
    }
}

impl Sync {
    /// Release, targets, feeds (see the crate documentation).
    async fn run_once(&self, run: &Run<'_>, report: &mut RunReport) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let t = std::time::Instant::now();
        // 1. Submissions an interrupted run left open: their SKUs are sent again.
        let unresolved = {
            let mut conn = self.deps.pool.acquire().await?;
            feeds_store::unresolved(&mut conn, shop.id, FEED_TYPE).await?
        };
        for sub in unresolved {
            let why = "interrupted before Amazon's answer was recorded: the SKUs are sent again";
            self.close_not_sent(sub.id, why, why).await?;
            report.released += 1;
        }
        report.timed("release", t);
        let t = std::time::Instant::now();

        // 2. Targets: one consistent read of stock and mappings; and whether SKUs without
        //    handling days get Amazon's default handling time back (the seed) or keep Amazon's.
        let (targets, keep_amazon_handling_time) = {
            let mut conn = self.deps.pool.acquire().await?;
            let targets = inventory::targets(&mut conn, shop.id, run.plan.full).await?;
            let keep = store::shops::keep_amazon_handling_time(&mut conn, shop.id).await?;
            (targets, keep)
        };
        report.timed("targets", t);
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
            return Ok(());
        }

        // 3–4. One feed per marketplace (split at 25,000 messages).
        let api = {
            let mut conn = self.deps.pool.acquire().await?;
            job_api::shop_api(&mut conn, &self.deps.keys, &self.deps.api, shop).await?
        };
        let mut marketplaces = shop.marketplaces.iter().copied();
        let Some(first) = marketplaces.next() else {
            return Ok(());
        };
        let t = std::time::Instant::now();
        let built = self.build(shop, &targets, first, keep_amazon_handling_time);
        report.timed("build", t);
        if !built.rejected.is_empty() {
            self.reject(run, &targets, &built.rejected).await?;
            report.rejected = built.rejected.len();
        }
        // The other marketplaces' feeds are built when their turn comes.
        let feeds = feeds_of(first, built, &targets).chain(marketplaces.flat_map(|m| {
            feeds_of(
                m,
                self.build(shop, &targets, m, keep_amazon_handling_time),
                &targets,
            )
        }));
        match self.send_feeds(run, &api, feeds, report).await? {
            None => Ok(()),
            Some(stop) => {
                report.stopped = Some(stop.reason);
                report.continuation = Decision::of(&stop.error).continues();
                Err(JobError::api_with(
                    stop.operation,
                    stop.error,
                    "the stock is sent by the next run",
                    Some(serde_json::json!({"feed_submission_id": stop.submission})),
                ))
            }
        }
    }

    /// The `JSON_LISTINGS_FEED` documents of `targets` for one marketplace.
    fn build(
        &self,
        shop: &domain::shop::Shop,
        targets: &[Target],
        marketplace: Marketplace,
        keep_amazon_handling_time: bool,
    ) -> ListingsFeeds<usize> {
        listings_feed::build_listings_feeds(
            &shop.seller_id,
            targets.iter().enumerate().map(|(i, t)| {
                (
                    i,
                    InventoryUpdate {
                        sku: t.sku.clone(),
                        quantity: u32::try_from(t.quantity).unwrap_or(0),
                        handling_days: t.handling_days.and_then(|d| u32::try_from(d).ok()),
                        default_handling_time: !keep_amazon_handling_time,
                        product_type: None,
                    },
                )
            }),
            &ListingsFeedOptions {
                issue_locale: Some(issue_locale(marketplace).to_owned()),
                max_messages_per_feed: self.settings.max_messages_per_feed,
                ..Default::default()
            },
        )
    }

    /// Updates the feed builder refused: marked failed, each with an API-log error.
    async fn reject(
        &self,
        run: &Run<'_>,
        targets: &[Target],
        rejected: &[RejectedUpdate<usize>],
    ) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let mut tx = self.deps.pool.begin().await?;
        for r in rejected {
            let t = &targets[r.key];
            let text = format!("not sent to Amazon: {}", r.problem);
            inventory::mark_failed(&mut tx, &[t.external_product_id], &text).await?;
            api_log::write(
                &mut tx,
                &Entry {
                    run_id: Some(run.run_id),
                    sku: Some(&t.sku),
                    code: Some("invalid_inventory_update"),
                    ..Entry::new(Some(shop.id), ACTION, Level::Error, &text)
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records and sends the feeds in order, the next feed's intent (and document, when its
    /// marketplace's turn comes) being written while the current one is uploaded, created and
    /// marked sent: each intent is still committed before its own upload. When Amazon does not
    /// accept a feed, the next one, already recorded, is closed as not sent and the SKUs of the
    /// feeds not attempted are marked failed; returns why the run stopped.
    async fn send_feeds<'t>(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        mut feeds: impl Iterator<Item = Feed<'t>>,
        report: &mut RunReport,
    ) -> Result<Option<Stop>, JobError> {
        let mut next = match feeds.next() {
            Some(feed) => {
                let (recorded, took) = self.record(run, feed).await?;
                report.add("intent", took);
                Some(recorded)
            }
            None => None,
        };
        while let Some(current) = next.take() {
            let following = async {
                let t = std::time::Instant::now();
                let feed = feeds.next();
                let built = t.elapsed();
                match feed {
                    Some(feed) => {
                        let (recorded, took) = self.record(run, feed).await?;
                        Ok::<_, JobError>((Some(recorded), built, took))
                    }
                    None => Ok((None, built, std::time::Duration::ZERO)),
                }
            };
            let (outcome, following) =
                tokio::join!(self.send(run, api, current, report), following);
            let (recorded, built, took) = following?;
            report.add("build", built);
            report.add("intent", took);
            if let Some(stop) = outcome? {
                let why = format!("not sent yet: {}; sent by the next run", stop.reason);
                if let Some(recorded) = recorded {
                    report.not_sent += self.close_not_sent(recorded.submission, &why, &why).await?;
                }
                self.mark_unsent(feeds, &why, report).await?;
                return Ok(Some(stop));
            }
            next = recorded;
        }
        Ok(None)
    }

    /// The SKUs of feeds the run did not attempt: `failed` with `why`, sent by the next run.
    async fn mark_unsent<'t>(
        &self,
        feeds: impl Iterator<Item = Feed<'t>>,
        why: &str,
        report: &mut RunReport,
    ) -> Result<(), JobError> {
        let mut unsent: Vec<Uuid> = feeds
            .flat_map(|f| f.messages)
            .map(|m| m.target.external_product_id)
            .collect();
        if unsent.is_empty() {
            return Ok(());
        }
        unsent.sort();
        unsent.dedup();
        let mut conn = self.deps.pool.acquire().await?;
        inventory::mark_failed(&mut conn, &unsent, why).await?;
        report.not_sent += unsent.len();
        Ok(())
    }
}

/// The feeds of one marketplace, their messages pointing at the targets they were built from.
fn feeds_of(
    marketplace: Marketplace,
    built: ListingsFeeds<usize>,
    targets: &[Target],
) -> impl Iterator<Item = Feed<'_>> {
    built.feeds.into_iter().map(move |f| Feed {
        marketplace_id: marketplace.id(),
        messages: f
            .messages
            .iter()
            .map(|m| ListingMessage {
                message_id: i64::try_from(m.message_id).unwrap_or(i64::MAX),
                target: &targets[m.key],
            })
            .collect(),
        json: f.json,
    })
}
