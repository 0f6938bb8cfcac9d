//! The runner's ledger side: start, resume, steps, continuation, finish and fail.

use chrono::{DateTime, Duration, Utc};
use domain::messages::Command;
use store::api_log::{self, Entry, Level};
use store::runs::{self, NewRun, NewRunLease, RunStatus};
use store::shops::{self, ShopRecord};
use uuid::Uuid;

use super::errors::Decision;
use super::{
    Job, JobError, Planned, Planning, Resume, RunCtx, RunOutcome, Runner, RunnerError, Running,
    Step, Trigger,
};

/// What a run keeps in `action_runs.cursor` between messages.
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "P: serde::de::DeserializeOwned, C: serde::de::DeserializeOwned"))]
struct Saved<P, C> {
    plan: P,
    cursor: C,
    #[serde(default)]
    transient_failures: u32,
}

/// Records the run's wall-clock duration in the job's tally (before its last ledger write).
fn ended<J: Job>(started_at: DateTime<Utc>, counts: &mut J::Counts) {
    if let Some(t) = J::tally(counts) {
        t.duration_ms = Some((Utc::now() - started_at).num_milliseconds());
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

impl<J: Job> Runner<J> {
    /// Starts a new run for `trigger` (steps 3–8 of the module documentation).
    pub async fn start(&self, trigger: Trigger<'_>) -> Result<RunOutcome<J::Counts>, RunnerError> {
        self.begin(trigger, false).await
    }

    /// [`Runner::start`] for a trigger the broker may have delivered before (`redelivered`).
    pub(super) async fn begin(
        &self,
        trigger: Trigger<'_>,
        redelivered: bool,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let action = J::ACTION.as_str();
        let mut conn = self.pool.acquire().await?;
        if let Some(id) = trigger.command_id
            && runs::command_succeeded(&mut conn, id, action).await?
        {
            return Ok(RunOutcome::Duplicate { run_id: None });
        }
        // A redelivered trigger of a run that pages with a cursor: a run still `running` was
        // left by a process that died, and goes on from its cursor (taken over once the dead
        // holder's lease has expired); a run `waiting` has its continuation queued already.
        if J::RESUME == Resume::SameRun
            && let Some(id) = trigger.command_id
            && let Some((run_id, status)) = runs::for_command(&mut conn, id, action).await?
        {
            match status.as_str() {
                s if s == RunStatus::Running.as_str() => {
                    drop(conn);
                    if redelivered {
                        return self.take_over(run_id).await;
                    }
                    tracing::info!(%run_id, action, "trigger redelivered while its run was running: resuming it");
                    return self.resume(run_id).await;
                }
                s if s == RunStatus::Waiting.as_str() => {
                    return Ok(RunOutcome::Duplicate {
                        run_id: Some(run_id),
                    });
                }
                _ => {}
            }
        }
        drop(conn);
        let waiting_since = std::time::Instant::now();
        loop {
            // The run is created, leased and given its plan in one transaction: a process that dies
            // in between leaves no run without a plan to continue from.
            let mut conn = self.pool.begin().await?;
            let shop = shops::get(&mut conn, trigger.shop_id).await?;
            let at = Planning {
                conn: &mut conn,
                shop: &shop,
                trigger: &trigger,
                now: Utc::now(),
            };
            let planned = match self.job.plan(at).await {
                Ok(p) => p,
                Err(JobError::Permanent { message, .. }) => Planned::Refuse {
                    message,
                    mode: None,
                    details: serde_json::to_value(trigger.params).ok(),
                },
                Err(e) => return Err(RunnerError::Infrastructure(e)),
            };
            let new_run = |mode, status| NewRun {
                shop_id: trigger.shop_id,
                action,
                mode,
                status,
                command_id: trigger.command_id,
                requested_by: Some(trigger.requested_by),
            };
            let (plan, mode) = match planned {
                Planned::Run { plan, mode } => (plan, mode),
                Planned::Refuse {
                    message,
                    mode,
                    details,
                } => {
                    let run = new_run(mode.as_deref(), RunStatus::Rejected);
                    let run_id = runs::reject(&mut conn, &run, &message, details).await?;
                    conn.commit().await?;
                    return Ok(RunOutcome::Refused { run_id });
                }
                Planned::Skip { message, mode } => {
                    let run_id =
                        runs::insert(&mut conn, &new_run(mode.as_deref(), RunStatus::Running))
                            .await?;
                    let counts = json(&J::Counts::default());
                    runs::finish(
                        &mut conn,
                        run_id,
                        RunStatus::Skipped,
                        None,
                        &counts,
                        0,
                        Some(&message),
                    )
                    .await?;
                    conn.commit().await?;
                    return Ok(RunOutcome::Skipped { run_id });
                }
            };
            let run_id =
                runs::insert(&mut conn, &new_run(mode.as_deref(), RunStatus::Running)).await?;
            let started_at = Utc::now();
            let empty = json(&J::Counts::default());
            match runs::lease_new_run(
                &mut conn,
                trigger.shop_id,
                action,
                run_id,
                trigger.command_id,
                &self.holder,
                self.settings.lease_ttl,
                &empty,
            )
            .await?
            {
                NewRunLease::Leased => {}
                NewRunLease::Busy => {
                    if let Some(delay) = self.job.retry_when_busy(&plan) {
                        // Short runs of the same kind follow each other: wait for the lease a while
                        // (nothing written meanwhile), then hand the trigger to the outbox for later.
                        if waiting_since.elapsed() < delay.to_std().unwrap_or_default() {
                            conn.rollback().await?;
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                        let now = Utc::now();
                        let again = Command::new(
                            trigger.shop_id,
                            J::ACTION,
                            trigger.params.clone(),
                            trigger.requested_by,
                            now,
                        );
                        let at = now + delay;
                        let msg =
                            bus::OutboxMessage::command(&self.topology, &again).not_before(at);
                        bus::outbox::enqueue(&mut conn, msg).await?;
                        tracing::info!(%run_id, action, retry_at = %at, "another run holds the lease: the trigger is tried again later");
                    }
                    conn.commit().await?;
                    return Ok(RunOutcome::Skipped { run_id });
                }
                NewRunLease::Duplicate => {
                    conn.commit().await?;
                    return Ok(RunOutcome::Duplicate {
                        run_id: Some(run_id),
                    });
                }
            }
            let live = Running::<J> {
                ctx: self.ctx(run_id, &shop, &plan, mode.as_deref(), started_at),
                cursor: J::Cursor::default(),
                counts: J::Counts::default(),
                transient_failures: 0,
            };
            let mut first = live.progress(0);
            (first.window_from, first.window_to) = self.job.window(&plan);
            runs::save_progress(&mut conn, run_id, RunStatus::Running, &first).await?;
            conn.commit().await?;
            return self.execute(live).await;
        }
    }

    /// A continuation of a run that waited (`Continue { run_id }`): claims it and goes on from
    /// its cursor.
    pub async fn resume(&self, run_id: Uuid) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let action = J::ACTION.as_str();
        let mut tx = self.pool.begin().await?;
        let claim = runs::claim_continuation(
            &mut tx,
            run_id,
            action,
            &self.holder,
            self.settings.lease_ttl,
        )
        .await?;
        if let runs::Continuation::RetryAt { at, shop_id } = claim {
            let msg = crate::continuation(&self.topology, J::ACTION, shop_id, run_id, at);
            bus::outbox::enqueue(&mut tx, msg).await?;
        }
        tx.commit().await?;
        if claim != runs::Continuation::Run {
            return Ok(RunOutcome::Nothing);
        }
        self.continue_run(run_id).await
    }

    /// A redelivered trigger of a run still `running`: the broker handed the message back
    /// because the consumer that held it is gone, so its process no longer runs the run. The
    /// run's lease (held by the run itself) is renewed for this process at once and the run goes
    /// on from its cursor.
    async fn take_over(&self, run_id: Uuid) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let action = J::ACTION.as_str();
        let mut conn = self.pool.acquire().await?;
        let run = runs::get(&mut conn, run_id).await?;
        let ttl = self.settings.lease_ttl;
        if run.status != RunStatus::Running.as_str()
            || !runs::try_lease(&mut conn, run.shop_id, action, run_id, &self.holder, ttl).await?
        {
            return Ok(RunOutcome::Nothing);
        }
        tracing::warn!(%run_id, action, "trigger redelivered: taking over the run its dead consumer left running");
        drop(conn);
        self.continue_run(run_id).await
    }

    /// Goes on with a run this process holds (claimed or taken over) from its saved cursor.
    async fn continue_run(&self, run_id: Uuid) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let mut conn = self.pool.acquire().await?;
        let run = runs::get(&mut conn, run_id).await?;
        let shop = shops::get(&mut conn, run.shop_id).await?;
        drop(conn);
        let saved: Option<Saved<J::Plan, J::Cursor>> = run
            .cursor
            .clone()
            .and_then(|c| serde_json::from_value(c).ok());
        let counts: J::Counts = serde_json::from_value(run.counts.clone()).unwrap_or_default();
        let Some(saved) = saved else {
            let plan_less = RunCtx::<()> {
                run_id,
                shop: &shop,
                plan: &(),
                mode: run.mode.as_deref(),
                started_at: run.started_at,
                action: J::ACTION,
                holder: &self.holder,
                lease_ttl: self.settings.lease_ttl,
            };
            let message = "failed: the run cannot be continued, its saved plan does not read";
            return self
                .fail(&plan_less, &counts, 0, Level::Error, "run_failed", message)
                .await;
        };
        let live = Running::<J> {
            ctx: self.ctx(
                run_id,
                &shop,
                &saved.plan,
                run.mode.as_deref(),
                run.started_at,
            ),
            cursor: saved.cursor,
            counts,
            transient_failures: saved.transient_failures,
        };
        self.execute(live).await
    }

    fn ctx<'a>(
        &'a self,
        run_id: Uuid,
        shop: &'a ShopRecord,
        plan: &'a J::Plan,
        mode: Option<&'a str>,
        started_at: DateTime<Utc>,
    ) -> RunCtx<'a, J::Plan> {
        RunCtx {
            run_id,
            shop,
            plan,
            mode,
            started_at,
            action: J::ACTION,
            holder: &self.holder,
            lease_ttl: self.settings.lease_ttl,
        }
    }

    /// Steps until the job is done, waits or fails.
    async fn execute(
        &self,
        mut live: Running<'_, J>,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        loop {
            let started = std::time::Instant::now();
            let stepped = self.job.step(&mut live).await;
            if let Some(t) = J::tally(&mut live.counts) {
                t.active_ms += started.elapsed().as_millis() as i64;
            }
            match stepped {
                Ok(Step::More) => {
                    live.transient_failures = 0;
                    let calls = self.job.amazon_calls(&live.counts);
                    let mut tx = self.pool.begin().await?;
                    runs::save_progress(
                        &mut tx,
                        live.ctx.run_id,
                        RunStatus::Running,
                        &live.progress(calls),
                    )
                    .await?;
                    live.ctx.keep_lease(&mut tx).await?;
                    tx.commit().await?;
                    if J::RESUME == Resume::SameRun && super::shutdown_requested() {
                        return self.hand_over(&mut live).await;
                    }
                }
                Ok(Step::Done { watermark }) => {
                    return self.succeed(&live, watermark, None).await;
                }
                Err(JobError::Abandoned(point)) => return Err(RunnerError::Abandoned(point)),
                Err(e) if e.is_infrastructure() => {
                    // Best effort: the database may be what failed.
                    let calls = self.job.amazon_calls(&live.counts);
                    if let Ok(mut conn) = self.pool.acquire().await {
                        let _ = runs::close_leased(
                            &mut conn,
                            live.ctx.shop.shop.id,
                            J::ACTION.as_str(),
                            live.ctx.run_id,
                            &json(&live.counts),
                            calls,
                            Some(&e.to_string()),
                        )
                        .await;
                    }
                    return Err(RunnerError::Infrastructure(e));
                }
                Err(JobError::Permanent { code, message }) => {
                    let calls = self.job.amazon_calls(&live.counts);
                    return self
                        .fail(&live.ctx, &live.counts, calls, Level::Error, code, &message)
                        .await;
                }
                Err(JobError::Api {
                    operation,
                    error,
                    note,
                    details,
                }) => {
                    return self
                        .api_failure(&mut live, &operation, &error, note.as_deref(), details)
                        .await;
                }
                Err(other) => return Err(RunnerError::Infrastructure(other)),
            }
        }
    }

    /// The process is stopping ([`super::request_shutdown`]) between two steps of a paging run:
    /// the run goes `waiting` (its cursor is saved, its lease kept for the run, not the
    /// process) with a continuation due now in the outbox; the next process to consume the
    /// queue claims it ([`Self::resume`]) and goes on from the cursor.
    async fn hand_over(
        &self,
        live: &mut Running<'_, J>,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let now = Utc::now();
        let (run_id, shop_id) = (live.ctx.run_id, live.ctx.shop.shop.id);
        if let Some(t) = J::tally(&mut live.counts) {
            t.continuations += 1;
        }
        let calls = self.job.amazon_calls(&live.counts);
        let mut tx = self.pool.begin().await?;
        runs::save_progress(&mut tx, run_id, RunStatus::Waiting, &live.progress(calls)).await?;
        let msg = crate::continuation(&self.topology, J::ACTION, shop_id, run_id, now);
        bus::outbox::enqueue(&mut tx, msg).await?;
        tx.commit().await?;
        tracing::info!(%run_id, "shutting down: the run goes on in the next process from its saved cursor");
        Ok(RunOutcome::Waiting {
            run_id,
            counts: live.counts.clone(),
            at: now,
        })
    }

    /// The error policy for an SP-API failure (see [`super::errors`]).
    async fn api_failure(
        &self,
        live: &mut Running<'_, J>,
        operation: &str,
        e: &spapi::Error,
        note: Option<&str>,
        details: Option<serde_json::Value>,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let decision = Decision::of(e);
        let shop_id = live.ctx.shop.shop.id;
        let note = note.map(|n| format!("; {n}")).unwrap_or_default();
        match decision {
            Decision::Reauthorize | Decision::Refuse => {
                let (level, code, message) = if decision == Decision::Reauthorize {
                    let mut conn = self.pool.acquire().await?;
                    shops::set_auth_status(&mut conn, shop_id, Some(&e.to_string())).await?;
                    drop(conn);
                    (
                        Level::Attention,
                        "reauthorize",
                        format!(
                            "{operation}: the shop must be re-authorized in Seller Central{note}: {e}"
                        ),
                    )
                } else {
                    (
                        Level::Error,
                        "api_error",
                        format!(
                            "{operation}: Amazon refused the request{note}; check the shop's data and settings, then trigger the action again: {e}"
                        ),
                    )
                };
                return self
                    .fail(
                        &live.ctx,
                        &live.counts,
                        self.job.amazon_calls(&live.counts),
                        level,
                        code,
                        &message,
                    )
                    .await;
            }
            Decision::Wait | Decision::Retry => {}
        }
        let now = Utc::now();
        if decision == Decision::Retry {
            live.transient_failures += 1;
            if live.transient_failures > self.settings.max_transient_failures {
                let message = format!(
                    "failed after {} transient Amazon errors in a row: {operation}: {e}",
                    live.transient_failures
                );
                return self
                    .fail(
                        &live.ctx,
                        &live.counts,
                        self.job.amazon_calls(&live.counts),
                        Level::Error,
                        "run_failed",
                        &message,
                    )
                    .await;
            }
        }
        let base = match (J::RESUME, decision) {
            (Resume::NextRun, _) => e.retry_at().unwrap_or(now),
            (Resume::SameRun, Decision::Wait) => e.retry_at().unwrap_or(now + Duration::minutes(3)),
            (Resume::SameRun, _) => {
                now + self.settings.transient_retry
                    * 2i32.pow(live.transient_failures.saturating_sub(1).min(6))
            }
        };
        let at = base.max(now + self.settings.retry_delay);
        let what = match e.class() {
            spapi::ErrorClass::Throttled => "Amazon's quota is used up",
            spapi::ErrorClass::Reconcile => {
                "outcome unknown; Amazon is checked before anything is sent again"
            }
            _ => "Amazon did not answer properly",
        };
        let code = Decision::log_code(e);
        let message = format!(
            "{operation}: {what}{note}; continuing at {}: {e}",
            at.to_rfc3339()
        );
        if let Some(t) = J::tally(&mut live.counts) {
            t.continuations += 1;
        }
        let calls = self.job.amazon_calls(&live.counts);
        let mut tx = self.pool.begin().await?;
        api_log::write(
            &mut tx,
            &Entry {
                run_id: Some(live.ctx.run_id),
                code: Some(code),
                details,
                ..Entry::new(Some(shop_id), J::ACTION.as_str(), Level::Warning, &message)
            },
        )
        .await?;
        match J::RESUME {
            Resume::SameRun => {
                runs::save_progress(
                    &mut tx,
                    live.ctx.run_id,
                    RunStatus::Waiting,
                    &live.progress(calls),
                )
                .await?;
                let ttl = (at - now).max(Duration::zero()) + self.settings.lease_ttl;
                runs::try_lease(
                    &mut tx,
                    shop_id,
                    J::ACTION.as_str(),
                    live.ctx.run_id,
                    &self.holder,
                    ttl,
                )
                .await?;
                let msg =
                    crate::continuation(&self.topology, J::ACTION, shop_id, live.ctx.run_id, at);
                bus::outbox::enqueue(&mut tx, msg).await?;
                tx.commit().await?;
                tracing::info!(run_id = %live.ctx.run_id, continue_at = %at, "waiting for Amazon: continuation scheduled");
                Ok(RunOutcome::Waiting {
                    run_id: live.ctx.run_id,
                    counts: live.counts.clone(),
                    at,
                })
            }
            Resume::NextRun => {
                let cmd = Command::new(
                    shop_id,
                    J::ACTION,
                    self.job.next_run_params(live.ctx.plan),
                    "system",
                    now,
                );
                bus::outbox::enqueue(
                    &mut tx,
                    bus::OutboxMessage::command(&self.topology, &cmd).not_before(at),
                )
                .await?;
                tx.commit().await?;
                self.succeed(live, None, Some(at)).await
            }
        }
    }

    /// Ends the run `succeeded` with its summary, and gives the lease back.
    async fn succeed(
        &self,
        live: &Running<'_, J>,
        watermark: Option<DateTime<Utc>>,
        continued_at: Option<DateTime<Utc>>,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let ctx = &live.ctx;
        let mut final_counts = live.counts.clone();
        ended::<J>(ctx.started_at, &mut final_counts);
        let counts = json(&final_counts);
        let mut tx = self.pool.begin().await?;
        runs::finish(
            &mut tx,
            ctx.run_id,
            RunStatus::Succeeded,
            watermark,
            &counts,
            self.job.amazon_calls(&final_counts),
            None,
        )
        .await?;
        runs::release_lease(&mut tx, ctx.shop.shop.id, J::ACTION.as_str(), ctx.run_id).await?;
        if let Some(s) = self.job.summary(ctx, &final_counts) {
            api_log::write(
                &mut tx,
                &Entry {
                    run_id: Some(ctx.run_id),
                    code: Some(s.code),
                    details: s.details,
                    ..Entry::new(
                        Some(ctx.shop.shop.id),
                        J::ACTION.as_str(),
                        s.level,
                        &s.message,
                    )
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(RunOutcome::Succeeded {
            run_id: ctx.run_id,
            counts: final_counts,
            continued_at,
        })
    }

    /// Ends the run `failed` with `message` in the ledger and the API log, and gives the lease
    /// back.
    async fn fail<P>(
        &self,
        ctx: &RunCtx<'_, P>,
        counts: &J::Counts,
        calls: i32,
        level: Level,
        code: &str,
        message: &str,
    ) -> Result<RunOutcome<J::Counts>, RunnerError> {
        let mut counts = counts.clone();
        ended::<J>(ctx.started_at, &mut counts);
        let counts_json = json(&counts);
        let mut tx = self.pool.begin().await?;
        runs::finish(
            &mut tx,
            ctx.run_id,
            RunStatus::Failed,
            None,
            &counts_json,
            calls,
            Some(message),
        )
        .await?;
        runs::release_lease(&mut tx, ctx.shop.shop.id, J::ACTION.as_str(), ctx.run_id).await?;
        api_log::write(
            &mut tx,
            &Entry {
                run_id: Some(ctx.run_id),
                code: Some(code),
                details: Some(counts_json),
                ..Entry::new(Some(ctx.shop.shop.id), J::ACTION.as_str(), level, message)
            },
        )
        .await?;
        tx.commit().await?;
        tracing::error!(run_id = %ctx.run_id, action = %J::ACTION, %message, "run failed");
        Ok(RunOutcome::Failed {
            run_id: ctx.run_id,
            counts,
            error: message.to_owned(),
        })
    }
}
