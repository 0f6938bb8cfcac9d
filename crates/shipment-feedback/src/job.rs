//! The service's part of a run on the job runner: plan (the shop's strategy) and one step
//! (reconcile → select → validate → send).

use std::sync::Arc;

use chrono::Utc;
use domain::messages::{Action, CommandParams};
use domain::shop::ShipmentStrategy;
use job_api::errors::Decision;
use job_api::{
    Build, Deps, Job, JobError, Planned, Planning, Resume, RunCtx, Running, Step, Summary,
};
use sqlx::PgConnection;
use store::api_log::{self, Entry, Level};

use crate::validate::Parcel;
use crate::{ACTION, FailPoints, RunReport, Settings, validate};
use store::shipments::{self as db, Target};

/// What a run needs from its plan: nothing beyond the shop (the strategy is read at each step).
pub type Plan = ();

/// The run context of a shipment-feedback step.
pub(crate) type Run<'a> = RunCtx<'a, Plan>;

/// The shipment-feedback job.
pub(crate) struct Feedback {
    pub(crate) deps: Deps,
    pub(crate) settings: Settings,
    pub(crate) fail: Arc<FailPoints>,
}

impl Build for Feedback {
    /// The service's tuning and the crash hooks of its tests.
    type Config = (Settings, FailPoints);

    fn build(deps: Deps, (settings, fail): Self::Config) -> (Self, job_api::Settings) {
        let runner = job_api::Settings::one_step(settings.lease_ttl, settings.retry_delay);
        let fail = Arc::new(fail);
        (
            Self {
                deps,
                settings,
                fail,
            },
            runner,
        )
    }
}

impl Job for Feedback {
    type Plan = Plan;
    type Cursor = ();
    type Counts = RunReport;
    const ACTION: Action = Action::ShipmentFeedback;
    /// Each run selects its targets again: what Amazon did not take is sent by the next run.
    const RESUME: Resume = Resume::NextRun;

    async fn plan(&self, at: Planning<'_>) -> Result<Planned<Plan>, JobError> {
        let mode = at.shop.shop.shipment_strategy.as_str().to_owned();
        Ok(Planned::Run {
            plan: (),
            mode: Some(mode),
        })
    }

    async fn step(&self, running: &mut Running<'_, Self>) -> Result<Step, JobError> {
        let Running {
            ctx: run,
            counts: report,
            ..
        } = running;
        let result = self.run_once(run, report).await;
        if let Err(JobError::Api { error, .. }) = &result {
            report.continuation = Decision::of(error).continues();
        }
        result.map(|()| Step::Done { watermark: None })
    }

    fn summary(&self, _run: &Run<'_>, _counts: &RunReport) -> Option<Summary> {
        None
    }

    fn amazon_calls(&self, _counts: &RunReport) -> i32 {
        i32::try_from(self.deps.api.take_stats().total_calls()).unwrap_or(i32::MAX)
    }

    fn next_run_params(&self, _plan: &Plan) -> CommandParams {
        CommandParams::ShipmentFeedback {}
    }
}

impl Feedback {
    /// Reconcile, select, validate, send (see the crate documentation).
    async fn run_once(&self, run: &Run<'_>, report: &mut RunReport) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let api = {
            let mut conn = self.deps.pool.acquire().await?;
            job_api::shop_api(&mut conn, &self.deps.keys, &self.deps.api, shop).await?
        };
        let now = Utc::now();

        // 1. Reconcile before anything could be sent twice.
        if self.reconcile(run, &api, report).await? {
            return Ok(());
        }

        // 1b. Buyer cancellations an operator accepted, told to Amazon.
        self.acknowledge(run, &api, report).await?;

        // 2. Targets (each order on its marketplace's day), and the late ones told once.
        let mut conn = self.deps.pool.acquire().await?;
        report.late = notice_late(&mut conn, run, now).await?;
        let mut targets = db::targets(&mut conn, shop.id, shop.time_zone, now).await?;
        // Partial shipments (a shop that sends every package): the packages that left today.
        targets.extend(db::partial_targets(&mut conn, shop.id, shop.time_zone, now).await?);
        report.targets = targets.len();
        if targets.is_empty() {
            return Ok(());
        }
        let mappings = store::carriers::effective(&mut conn, shop.id).await?;

        // 3. Validate: the first tracking number (the seed's rule), or, for a shop that sends
        // every package, each package the warehouse recorded.
        let every_package = store::packages::send_every_package(&mut conn, shop.id).await?;
        let mut valid = Vec::new();
        for t in targets {
            let parcels = match validate::check(&t, &mappings) {
                Ok(checked) if every_package => {
                    let packages = store::packages::states(&mut conn, t.id).await?;
                    if packages.is_empty() {
                        Ok(vec![Parcel::whole(checked)])
                    } else {
                        let ordered: Vec<(String, u32)> = db::lines(&mut conn, t.id)
                            .await?
                            .into_iter()
                            .map(|(item, q)| (item, q.max(0) as u32))
                            .collect();
                        // Every package is checked against the order; only the ones Amazon has
                        // not confirmed (nor is processing) are sent.
                        let unsent: Vec<u16> = packages
                            .iter()
                            .filter(|p| p.unsent())
                            .map(|p| p.package.number)
                            .collect();
                        let all: Vec<_> = packages.into_iter().map(|p| p.package).collect();
                        validate::check_packages(&t, &all, &unsent, &ordered, &mappings)
                    }
                }
                Ok(checked) => Ok(vec![Parcel::whole(checked)]),
                Err(refusal) => Err(refusal),
            };
            match parcels {
                Ok(parcels) if parcels.is_empty() => {}
                Ok(parcels) => valid.push((t, parcels)),
                Err(refusal) => {
                    report.refused += 1;
                    refuse(&mut conn, run, &t, &refusal.code, &refusal.message).await?;
                }
            }
        }
        drop(conn);

        // 4. Send.
        match shop.shipment_strategy {
            ShipmentStrategy::Feed => self.send_feeds(run, &api, valid, now, report).await,
            ShipmentStrategy::ConfirmShipment => {
                self.confirm_each(run, &api, valid, now, report).await
            }
        }
    }
}

/// A target refused before sending: it stays awaiting print, with the reason on the
/// instruction and an API-log error.
pub(crate) async fn refuse(
    conn: &mut PgConnection,
    run: &Run<'_>,
    t: &Target,
    code: &str,
    message: &str,
) -> Result<(), JobError> {
    let text = format!("not sent to Amazon: {message}");
    db::set_api_error(conn, t.id, Some(&text)).await?;
    api_log::write(
        conn,
        &Entry {
            run_id: Some(run.run_id),
            amazon_order_id: t.amazon_order_id.as_deref(),
            code: Some(code),
            details: Some(serde_json::json!({"instruction_id": t.id})),
            ..Entry::new(Some(run.shop.shop.id), ACTION, Level::Error, &text)
        },
    )
    .await?;
    Ok(())
}

/// Seed 3 sends only what shipped on the order's day (「出荷日がアクション実行日当日」). A shipment
/// from an earlier day still 印刷待ち (shipped after that day's last run, or its retry landed the
/// next day) is never sent automatically: one attention entry per instruction says so and what
/// to do. Returns how many were new.
async fn notice_late(
    conn: &mut PgConnection,
    run: &Run<'_>,
    now: chrono::DateTime<Utc>,
) -> Result<usize, JobError> {
    let shop = &run.shop.shop;
    let late: Vec<_> = db::late(conn, &[shop.id], |_| shop.time_zone, now)
        .await?
        .into_iter()
        .filter(|l| l.noticed_at.is_none())
        .collect();
    if late.is_empty() {
        return Ok(0);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for l in &late {
        let message = format!(
            "order {} shipped on {} with tracking number {} was never sent to Amazon: only the \
             shipments of the day are sent automatically, and this one missed its day's runs. \
             Amazon counts it as shipped late until it is confirmed: resend it (console: 要対応 > \
             late shipments, or `ctl resend-shipment --shop {} {}`)",
            l.amazon_order_id, l.shipped_on, l.tracking_number, shop.code, l.amazon_order_id
        );
        api_log::write(
            &mut tx,
            &Entry {
                run_id: Some(run.run_id),
                amazon_order_id: Some(&l.amazon_order_id),
                code: Some("late_shipment"),
                details: Some(serde_json::json!({
                    "instruction_id": l.id,
                    "shipped_on": l.shipped_on,
                    "tracking_number": l.tracking_number,
                })),
                ..Entry::new(Some(shop.id), ACTION, Level::Attention, &message)
            },
        )
        .await?;
    }
    let ids: Vec<_> = late.iter().map(|l| l.id).collect();
    db::mark_late_noticed(&mut tx, &ids).await?;
    tx.commit().await?;
    Ok(late.len())
}
