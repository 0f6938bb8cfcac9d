//! The service's part of a run on the job runner: plan (the shop's strategy) and one step
//! (reconcile → select → validate → send).

use std::sync::Arc;

use bus::Topology;
use chrono::Utc;
use domain::messages::{Action, CommandParams};
use domain::shop::ShipmentStrategy;
use runtime::job::errors::Decision;
use runtime::job::{Job, JobError, Planned, Resume, RunCtx, Step, Summary, Trigger};
use spapi::SpApi;
use sqlx::{PgConnection, PgPool};
use store::api_log::{self, Entry, Level};
use store::shops::ShopRecord;

use crate::{ACTION, FailPoints, RunReport, Settings, validate};
use store::shipments::{self as db, Target};

/// What a run needs from its plan: nothing beyond the shop (the strategy is read at each step).
pub type Plan = ();

/// The run context of a shipment-feedback step.
pub(crate) type Run<'a> = RunCtx<'a, Plan>;

/// The shipment-feedback job.
pub(crate) struct Feedback {
    pub(crate) pool: PgPool,
    pub(crate) keys: crypto::Keyring,
    pub(crate) api: SpApi,
    pub(crate) topology: Topology,
    pub(crate) settings: Settings,
    pub(crate) fail: Arc<FailPoints>,
}

impl Job for Feedback {
    type Plan = Plan;
    type Cursor = ();
    type Counts = RunReport;
    const ACTION: Action = Action::ShipmentFeedback;
    /// Each run selects its targets again: what Amazon did not take is sent by the next run.
    const RESUME: Resume = Resume::NextRun;

    async fn plan(
        &self,
        _conn: &mut PgConnection,
        shop: &ShopRecord,
        _trigger: &Trigger<'_>,
    ) -> Result<Planned<Plan>, JobError> {
        Ok(Planned::Run {
            plan: (),
            mode: Some(shop.shop.shipment_strategy.as_str().to_owned()),
        })
    }

    async fn step(
        &self,
        run: &Run<'_>,
        _cursor: &mut (),
        report: &mut RunReport,
    ) -> Result<Step, JobError> {
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
        i32::try_from(self.api.take_stats().total_calls()).unwrap_or(i32::MAX)
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
            let mut conn = self.pool.acquire().await?;
            runtime::shop_api(&mut conn, &self.keys, &self.api, shop).await?
        };
        let now = Utc::now();

        // 1. Reconcile before anything could be sent twice.
        if self.reconcile(run, &api, report).await? {
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
