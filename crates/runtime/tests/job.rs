//! The job runner against a real PostgreSQL: ledger, lease, duplicates, continuations and the
//! error policy, with a scripted job.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{Duration, Utc};
use domain::messages::{Action, Command, CommandParams};
use domain::shop::ShopCode;
use runtime::job::{
    Job, JobError, Planned, Planning, Resume, RunCtx, RunOutcome, Runner, RunnerError, Running,
    Settings, Step, Summary, Trigger,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use store::api_log::Level;
use uuid::Uuid;

/// What the scripted job's next step does.
#[derive(Debug, Clone, Copy)]
enum Act {
    Page,
    Last,
    Throttled,
    Transient,
    Refused,
    Revoked,
    DbDown,
    Permanent,
    Crash,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Counts {
    pages: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    page: u32,
}

/// A job whose steps follow a script; `NEXT` chooses [`Resume::NextRun`].
struct Scripted<const NEXT: bool> {
    script: Mutex<VecDeque<Act>>,
    /// Pages seen by each step (the cursor it got).
    seen: Mutex<Vec<u32>>,
    inactive_skips: bool,
    /// What `retry_when_busy` answers.
    retry_busy: Option<Duration>,
}

impl<const NEXT: bool> Scripted<NEXT> {
    fn new(script: &[Act]) -> Self {
        Self {
            script: Mutex::new(script.iter().copied().collect()),
            seen: Mutex::new(Vec::new()),
            inactive_skips: true,
            retry_busy: None,
        }
    }
}

fn api_error(status: u16) -> spapi::Error {
    spapi::Error::Api {
        operation: "searchOrders",
        status,
        request_id: None,
        errors: vec![],
    }
}

impl<const NEXT: bool> Job for Scripted<NEXT> {
    type Plan = String;
    type Cursor = Cursor;
    type Counts = Counts;
    const ACTION: Action = Action::OrderIngest;
    const RESUME: Resume = if NEXT {
        Resume::NextRun
    } else {
        Resume::SameRun
    };

    async fn plan(&self, at: Planning<'_>) -> Result<Planned<String>, JobError> {
        let (shop, trigger) = (at.shop, at.trigger);
        if self.inactive_skips && !shop.active {
            return Ok(Planned::Skip {
                message: "shop is inactive".into(),
                mode: None,
            });
        }
        if trigger.requested_by == "mallory" {
            return Err(JobError::Permanent {
                code: "invalid_trigger",
                message: "trigger refused: not allowed".into(),
            });
        }
        Ok(Planned::Run {
            plan: "the plan".into(),
            mode: Some("test".into()),
        })
    }

    async fn step(&self, running: &mut Running<'_, Self>) -> Result<Step, JobError> {
        let Running {
            ctx: run,
            cursor,
            counts,
            ..
        } = running;
        assert_eq!(run.plan, "the plan");
        self.seen.lock().unwrap().push(cursor.page);
        let act = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .expect("script too short");
        match act {
            Act::Page => {
                cursor.page += 1;
                counts.pages += 1;
                Ok(Step::More)
            }
            Act::Last => {
                counts.pages += 1;
                Ok(Step::Done {
                    watermark: Some(Utc::now()),
                })
            }
            Act::Throttled => Err(JobError::api(
                "searchOrders",
                spapi::Error::Throttled {
                    operation: "searchOrders",
                    retry_at: Utc::now() + Duration::minutes(7),
                },
            )),
            Act::Transient => Err(JobError::api("searchOrders", api_error(503))),
            Act::Refused => Err(JobError::api_with(
                "searchOrders",
                api_error(400),
                "nothing was imported",
                None,
            )),
            Act::Revoked => Err(JobError::api(
                "searchOrders",
                spapi::Error::Authorization {
                    kind: spapi::AuthorizationKind::InvalidGrant,
                    message: "revoked".into(),
                },
            )),
            Act::DbDown => Err(JobError::Db(sqlx::Error::PoolTimedOut)),
            Act::Crash => Err(JobError::Abandoned("crash")),
            Act::Permanent => Err(JobError::Permanent {
                code: "no_marketplace",
                message: "the shop has no marketplace: add one with ctl shop".into(),
            }),
        }
    }

    fn summary(&self, _run: &RunCtx<'_, String>, counts: &Counts) -> Option<Summary> {
        Some(Summary {
            level: Level::Info,
            code: "run_summary",
            message: format!("{} page(s)", counts.pages),
            details: None,
        })
    }

    fn amazon_calls(&self, counts: &Counts) -> i32 {
        counts.pages as i32
    }

    fn retry_when_busy(&self, _plan: &String) -> Option<Duration> {
        self.retry_busy
    }

    fn next_run_params(&self, _plan: &String) -> CommandParams {
        CommandParams::Continue {
            run_id: Uuid::nil(),
        }
    }
}

fn settings() -> Settings {
    Settings {
        max_transient_failures: 1,
        ..Settings::default()
    }
}

fn runner<const NEXT: bool>(pool: &PgPool, script: &[Act]) -> Runner<Scripted<NEXT>> {
    Runner::new(
        Scripted::new(script),
        pool.clone(),
        bus::Topology::new("t", 5),
        settings(),
    )
}

async fn shop(pool: &PgPool) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    store::shops::insert(
        &mut conn,
        &crypto::Keyring::for_testing(),
        &store::shops::NewShop::japan_at(
            "acme".parse::<ShopCode>().unwrap(),
            "Acme",
            "A1SELLER",
            "http://127.0.0.1:9",
        ),
    )
    .await
    .unwrap()
    .shop
    .id
}

const PARAMS: CommandParams = CommandParams::ShipmentFeedback {};

fn trigger(shop_id: Uuid, command_id: Option<Uuid>) -> Trigger<'static> {
    Trigger {
        shop_id,
        command_id,
        requested_by: "test",
        params: &PARAMS,
    }
}

async fn run_row(pool: &PgPool, id: Uuid) -> store::runs::Run {
    let mut conn = pool.acquire().await.unwrap();
    store::runs::get(&mut conn, id).await.unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn lease_held(pool: &PgPool, shop_id: Uuid) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM action_leases WHERE shop_id = $1")
        .bind(shop_id)
        .fetch_one(pool)
        .await
        .unwrap()
        > 0
}

/// Pages until done: counts and the cursor saved between steps, the ledger `succeeded` with the
/// counts, the Amazon calls and the watermark, the summary logged, the lease released; the same
/// trigger again is a duplicate (the ledger is the one duplicate check).
#[sqlx::test(migrations = "../../migrations")]
async fn pages_until_done_then_the_same_trigger_is_a_duplicate(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Page, Act::Page, Act::Last]);
    let command = Uuid::now_v7();
    let outcome = r.start(trigger(shop_id, Some(command))).await.unwrap();
    let RunOutcome::Succeeded {
        run_id,
        counts,
        continued_at: None,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(counts.pages, 3);
    assert_eq!(*r.job().seen.lock().unwrap(), vec![0, 1, 2]);
    let run = run_row(&pool, run_id).await;
    assert_eq!(run.status, "succeeded");
    assert_eq!(
        (run.counts["pages"].as_u64(), run.amazon_calls),
        (Some(3), 3)
    );
    assert!(run.watermark.is_some() && run.cursor.is_none());
    assert_eq!(run.mode.as_deref(), Some("test"));
    assert!(!lease_held(&pool, shop_id).await);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE code = 'run_summary'"
        )
        .await,
        1
    );
    let again = runner::<false>(&pool, &[]);
    let dup = again.start(trigger(shop_id, Some(command))).await.unwrap();
    assert_eq!(dup, RunOutcome::Duplicate { run_id: None });
    assert_eq!(count(&pool, "SELECT count(*) FROM action_runs").await, 1);
}

/// Throttling (same-run jobs): the run waits with its cursor and lease, a `Continue` goes to the
/// outbox for Amazon's time, a new trigger meanwhile is skipped, and the continuation goes on
/// from the cursor.
#[sqlx::test(migrations = "../../migrations")]
async fn throttled_run_waits_and_continues_from_its_cursor(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Page, Act::Throttled, Act::Page, Act::Last]);
    let outcome = r.start(trigger(shop_id, None)).await.unwrap();
    let RunOutcome::Waiting { run_id, at, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        at > Utc::now() + Duration::minutes(6),
        "Amazon's time: {at}"
    );
    let run = run_row(&pool, run_id).await;
    assert_eq!(run.status, "waiting");
    assert_eq!(run.counts["pages"], 1);
    assert!(lease_held(&pool, shop_id).await);
    let (payload, not_before): (serde_json::Value, chrono::DateTime<Utc>) =
        sqlx::query_as("SELECT payload, not_before FROM outbox WHERE routing_key = 'order-ingest'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let cmd: Command = serde_json::from_value(payload).unwrap();
    assert_eq!(cmd.params, CommandParams::Continue { run_id });
    assert_eq!(not_before.timestamp(), at.timestamp());
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE code = 'throttled' AND level = 'warning'"
        )
        .await,
        1
    );

    let other = runner::<false>(&pool, &[]);
    let skipped = other.start(trigger(shop_id, None)).await.unwrap();
    assert!(matches!(skipped, RunOutcome::Skipped { .. }), "{skipped:?}");

    let done = r.resume(run_id).await.unwrap();
    assert!(matches!(done, RunOutcome::Succeeded { .. }), "{done:?}");
    assert_eq!(*r.job().seen.lock().unwrap(), vec![0, 1, 1, 2]);
    let run = run_row(&pool, run_id).await;
    assert_eq!(
        (run.status.as_str(), run.counts["pages"].as_u64()),
        ("succeeded", Some(3))
    );
    // A second copy of the continuation finds the run finished.
    assert_eq!(r.resume(run_id).await.unwrap(), RunOutcome::Nothing);
}

/// Transient failures back off through continuations; past the limit the run fails with an
/// API-log error.
#[sqlx::test(migrations = "../../migrations")]
async fn transient_failures_back_off_then_fail(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Transient, Act::Transient]);
    let outcome = r.start(trigger(shop_id, None)).await.unwrap();
    let RunOutcome::Waiting { run_id, at, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(at >= Utc::now() + Duration::seconds(55), "{at}");
    let failed = r.resume(run_id).await.unwrap();
    let RunOutcome::Failed { error, .. } = failed else {
        panic!("{failed:?}")
    };
    assert!(error.contains("2 transient Amazon errors"), "{error}");
    assert_eq!(run_row(&pool, run_id).await.status, "failed");
    assert!(!lease_held(&pool, shop_id).await);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE code = 'run_failed' AND level = 'error'"
        )
        .await,
        1
    );
}

/// Amazon refusing (permanent) fails the run with an API-log error saying what to do; a revoked
/// authorization marks the shop and asks for re-authorization; neither is retried.
#[sqlx::test(migrations = "../../migrations")]
async fn permanent_and_reauthorize_fail_the_run_and_say_what_to_do(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<true>(&pool, &[Act::Refused, Act::Revoked, Act::Permanent]);
    let refused = r.start(trigger(shop_id, None)).await.unwrap();
    assert!(matches!(refused, RunOutcome::Failed { .. }), "{refused:?}");
    let (level, message): (String, String) =
        sqlx::query_as("SELECT level, message FROM api_log WHERE code = 'api_error'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(level, "error");
    assert!(
        message.contains("nothing was imported") && message.contains("trigger the action again"),
        "{message}"
    );

    let revoked = r.start(trigger(shop_id, None)).await.unwrap();
    assert!(matches!(revoked, RunOutcome::Failed { .. }), "{revoked:?}");
    let status: String = sqlx::query_scalar("SELECT auth_status FROM shops WHERE id = $1")
        .bind(shop_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "needs_reauthorization");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM api_log WHERE code = 'reauthorize' AND level = 'attention' AND message LIKE '%Seller Central%'").await,
        1
    );

    let permanent = r.start(trigger(shop_id, None)).await.unwrap();
    let RunOutcome::Failed { error, .. } = permanent else {
        panic!("{permanent:?}")
    };
    assert!(error.contains("ctl shop"), "{error}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM outbox").await,
        0,
        "never retried"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM action_runs WHERE status = 'failed'"
        )
        .await,
        3
    );
    assert!(!lease_held(&pool, shop_id).await);
}

/// Next-run jobs: throttling ends the run `succeeded` with what it did and queues a fresh
/// trigger of the action for Amazon's time (never sooner than `retry_delay`); the lease is free.
#[sqlx::test(migrations = "../../migrations")]
async fn next_run_jobs_end_the_run_and_queue_a_fresh_trigger(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<true>(&pool, &[Act::Page, Act::Transient]);
    let outcome = r.start(trigger(shop_id, None)).await.unwrap();
    let RunOutcome::Succeeded {
        run_id,
        counts,
        continued_at: Some(at),
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(counts.pages, 1);
    assert!(at >= Utc::now() + Duration::seconds(55));
    assert_eq!(run_row(&pool, run_id).await.status, "succeeded");
    assert!(!lease_held(&pool, shop_id).await);
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE routing_key = 'order-ingest'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let cmd: Command = serde_json::from_value(payload).unwrap();
    assert_eq!(cmd.requested_by, "system");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE code IN ('transient', 'run_summary')"
        )
        .await,
        2
    );
}

/// Plans that refuse or skip: a run `rejected` with an `invalid_trigger` error, or `skipped`.
#[sqlx::test(migrations = "../../migrations")]
async fn plan_refuses_or_skips(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[]);
    let t = Trigger {
        requested_by: "mallory",
        ..trigger(shop_id, None)
    };
    let RunOutcome::Refused { run_id } = r.start(t).await.unwrap() else {
        panic!()
    };
    assert_eq!(run_row(&pool, run_id).await.status, "rejected");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE code = 'invalid_trigger'"
        )
        .await,
        1
    );
    sqlx::query("UPDATE shops SET active = false")
        .execute(&pool)
        .await
        .unwrap();
    let RunOutcome::Skipped { run_id } = r.start(trigger(shop_id, None)).await.unwrap() else {
        panic!()
    };
    let run = run_row(&pool, run_id).await;
    assert_eq!(
        (run.status.as_str(), run.error.as_deref()),
        ("skipped", Some("shop is inactive"))
    );
}

/// A database failure in a step closes the run `failed` and hands the message back for a retry.
#[sqlx::test(migrations = "../../migrations")]
async fn infrastructure_failure_closes_the_run_and_retries_the_message(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::DbDown]);
    let err = r.start(trigger(shop_id, None)).await.unwrap_err();
    assert!(matches!(err, RunnerError::Infrastructure(_)), "{err:?}");
    assert!(matches!(
        bus::HandlerError::from(err),
        bus::HandlerError::Retry(_)
    ));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM action_runs WHERE status = 'failed'"
        )
        .await,
        1
    );
    assert!(!lease_held(&pool, shop_id).await);
}

/// Messages: malformed and foreign commands are refused (dead-lettered); an unknown shop is
/// refused once in the API log and acknowledged; a good one runs.
#[sqlx::test(migrations = "../../migrations")]
async fn handle_decodes_checks_the_action_and_the_shop(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Last]);
    let msg = |payload| bus::Incoming::new(Uuid::now_v7(), "order-ingest", payload);
    let err = r
        .handle(&msg(serde_json::json!({"nope": 1})))
        .await
        .unwrap_err();
    assert!(matches!(err, RunnerError::Refused(_)), "{err:?}");
    let foreign = Command::new(
        shop_id,
        Action::InventorySync,
        CommandParams::InventorySync { full: false },
        "t",
        Utc::now(),
    );
    let err = r
        .handle(&msg(serde_json::to_value(&foreign).unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(bus::HandlerError::from(err), bus::HandlerError::Reject(m) if m.contains("inventory-sync"))
    );
    let mut old = Command::new(
        shop_id,
        Action::OrderIngest,
        CommandParams::Continue {
            run_id: Uuid::nil(),
        },
        "t",
        Utc::now(),
    );
    old.version += 1;
    let err = r
        .handle(&msg(serde_json::to_value(&old).unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");

    let stranger = Command::new(
        Uuid::now_v7(),
        Action::OrderIngest,
        CommandParams::Continue {
            run_id: Uuid::nil(),
        },
        "t",
        Utc::now(),
    );
    let nothing = r
        .handle(&msg(serde_json::to_value(&stranger).unwrap()))
        .await
        .unwrap();
    assert_eq!(nothing, RunOutcome::Nothing);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_log WHERE shop_id IS NULL AND level = 'error'"
        )
        .await,
        1
    );

    let good = Command::new(
        shop_id,
        Action::OrderIngest,
        CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Differential,
        },
        "t",
        Utc::now(),
    );
    let ran = r
        .handle(&msg(serde_json::to_value(&good).unwrap()))
        .await
        .unwrap();
    assert!(matches!(ran, RunOutcome::Succeeded { .. }), "{ran:?}");
    let command_id: Option<Uuid> = sqlx::query_scalar("SELECT command_id FROM action_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(command_id, Some(good.message_id));
}

/// A redelivered trigger of a same-run job: a run left `running` by a process that died goes on
/// from its cursor once the dead holder's lease has expired (no second run, no page done twice);
/// a run `waiting` for its continuation makes the copy a duplicate.
#[sqlx::test(migrations = "../../migrations")]
async fn redelivered_trigger_resumes_a_run_left_running_from_its_cursor(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Page, Act::Crash, Act::Last]);
    let command = Uuid::now_v7();
    let err = r.start(trigger(shop_id, Some(command))).await.unwrap_err();
    assert!(matches!(err, RunnerError::Abandoned("crash")), "{err:?}");
    sqlx::query("UPDATE action_leases SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let outcome = r.start(trigger(shop_id, Some(command))).await.unwrap();
    let RunOutcome::Succeeded { counts, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        counts.pages, 2,
        "the page before the crash is not done again"
    );
    assert_eq!(*r.job().seen.lock().unwrap(), vec![0, 1, 1]);
    assert_eq!(count(&pool, "SELECT count(*) FROM action_runs").await, 1);

    // Redelivered by the broker (the consumer that held it died): taken over at once, without
    // waiting for the dead holder's lease to expire.
    let k = runner::<false>(&pool, &[Act::Page, Act::Crash, Act::Last]);
    let cmd = Command::new(
        shop_id,
        Action::OrderIngest,
        CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Differential,
        },
        "t",
        Utc::now(),
    );
    let mut msg = bus::Incoming::new(
        Uuid::now_v7(),
        "order-ingest",
        serde_json::to_value(&cmd).unwrap(),
    );
    let err = k.handle(&msg).await.unwrap_err();
    assert!(matches!(err, RunnerError::Abandoned("crash")), "{err:?}");
    assert!(
        lease_held(&pool, shop_id).await,
        "the dead holder's lease is live"
    );
    msg.redelivered = true;
    let outcome = k.handle(&msg).await.unwrap();
    assert!(
        matches!(outcome, RunOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    assert_eq!(*k.job().seen.lock().unwrap(), vec![0, 1, 1]);
    assert_eq!(count(&pool, "SELECT count(*) FROM action_runs").await, 2);

    let w = runner::<false>(&pool, &[Act::Throttled]);
    let waiting = Uuid::now_v7();
    let outcome = w.start(trigger(shop_id, Some(waiting))).await.unwrap();
    let RunOutcome::Waiting { run_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let copy = w.start(trigger(shop_id, Some(waiting))).await.unwrap();
    assert_eq!(
        copy,
        RunOutcome::Duplicate {
            run_id: Some(run_id)
        }
    );
}

/// A window Amazon cannot serve is not refused at decoding: the plan gets the command (and
/// order-ingest's plan records a `rejected` run with the reason).
#[sqlx::test(migrations = "../../migrations")]
async fn an_impossible_window_reaches_the_plan(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let r = runner::<false>(&pool, &[Act::Last]);
    let cmd = Command::new(
        shop_id,
        Action::OrderIngest,
        CommandParams::OrderIngest {
            mode: domain::window::ImportMode::Hours { hours: 500 },
        },
        "t",
        Utc::now(),
    );
    let msg = bus::Incoming::new(
        Uuid::now_v7(),
        "order-ingest",
        serde_json::to_value(&cmd).unwrap(),
    );
    let ran = r.handle(&msg).await.unwrap();
    assert!(matches!(ran, RunOutcome::Succeeded { .. }), "{ran:?}");
}

/// SIGTERM between two pages (nextest runs each test in its own process, so the process-wide
/// flag is this test's): the run stops after the page in hand, goes `waiting` with a
/// continuation due now and its cursor saved; the next process (a second runner) claims the
/// continuation and finishes from that cursor — no page read twice, none skipped. A job that
/// ends its run instead ([`Resume::NextRun`]) is not cut short.
#[sqlx::test(migrations = "../../migrations")]
async fn sigterm_hands_a_paging_run_to_the_next_process(pool: PgPool) {
    let shop_id = shop(&pool).await;
    let first = runner::<false>(&pool, &[Act::Page, Act::Page, Act::Page, Act::Last]);
    runtime::job::request_shutdown();
    let outcome = first.start(trigger(shop_id, None)).await.unwrap();
    let RunOutcome::Waiting { run_id, at, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(at <= Utc::now(), "due at once: {at}");
    assert_eq!(
        *first.job().seen.lock().unwrap(),
        vec![0],
        "one page, then stop"
    );
    let run = run_row(&pool, run_id).await;
    assert_eq!(run.status, "waiting");
    assert_eq!(run.counts["pages"], 1);
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE routing_key = 'order-ingest'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let cmd: Command = serde_json::from_value(payload).unwrap();
    assert_eq!(cmd.params, CommandParams::Continue { run_id });

    // The restarted process (the flag is process-wide here, so the second runner stands for it
    // with a script of one page per step: it hands over again after each page until the last).
    let next = runner::<false>(&pool, &[Act::Page, Act::Page, Act::Last]);
    let mut outcome = next.resume(run_id).await.unwrap();
    while let RunOutcome::Waiting { .. } = outcome {
        outcome = next.resume(run_id).await.unwrap();
    }
    assert!(
        matches!(outcome, RunOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    assert_eq!(*next.job().seen.lock().unwrap(), vec![1, 2, 3]);
    let run = run_row(&pool, run_id).await;
    assert_eq!(
        (run.status.as_str(), run.counts["pages"].as_u64()),
        ("succeeded", Some(4))
    );
    assert!(!lease_held(&pool, shop_id).await);

    // A one-step job finishes its step and its run as usual.
    let feed = runner::<true>(&pool, &[Act::Last]);
    let outcome = feed.start(trigger(shop_id, None)).await.unwrap();
    assert!(
        matches!(outcome, RunOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
}

/// A trigger that finds the lease held is skipped — and, for a job whose trigger carries work
/// no other run covers (`retry_when_busy`: status-sync's announced orders), waited for a while
/// (it runs as soon as the lease is free) or, past that, written to the outbox again for later,
/// with a new message id and the same parameters.
#[sqlx::test(migrations = "../../migrations")]
async fn a_busy_trigger_is_retried_later_when_the_job_asks(pool: PgPool) {
    let shop_id = shop(&pool).await;
    // A run waiting for Amazon holds the lease.
    let holder = runner::<false>(&pool, &[Act::Throttled]);
    let held = holder.start(trigger(shop_id, None)).await.unwrap();
    assert!(matches!(held, RunOutcome::Waiting { .. }), "{held:?}");
    let outbox = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = outbox().await;

    let plain = runner::<false>(&pool, &[]);
    let skipped = plain
        .start(trigger(shop_id, Some(Uuid::now_v7())))
        .await
        .unwrap();
    assert!(matches!(skipped, RunOutcome::Skipped { .. }), "{skipped:?}");
    assert_eq!(outbox().await, before, "skipped, nothing written");

    let mut job = Scripted::<false>::new(&[]);
    job.retry_busy = Some(Duration::seconds(2));
    let retrying = Runner::new(job, pool.clone(), bus::Topology::new("t", 5), settings());
    let first_id = Uuid::now_v7();
    let asked = std::time::Instant::now();
    let skipped = retrying
        .start(trigger(shop_id, Some(first_id)))
        .await
        .unwrap();
    assert!(
        asked.elapsed() >= std::time::Duration::from_secs(2),
        "waited for the lease"
    );
    assert!(matches!(skipped, RunOutcome::Skipped { .. }), "{skipped:?}");
    assert_eq!(outbox().await, before + 1);
    let (payload, not_before): (serde_json::Value, chrono::DateTime<Utc>) =
        sqlx::query_as("SELECT payload, not_before FROM outbox ORDER BY id DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let again: Command = serde_json::from_value(payload).unwrap();
    assert_ne!(
        again.message_id, first_id,
        "a new trigger, not a duplicate of the skipped one"
    );
    assert_eq!(again.shop_id, shop_id);
    assert_eq!(again.params, *trigger(shop_id, None).params);
    let wait = not_before - Utc::now();
    assert!(
        wait > Duration::seconds(1) && wait <= Duration::seconds(2),
        "{wait}"
    );

    // A lease freed while the trigger waits: it runs.
    let mut job = Scripted::<false>::new(&[Act::Last]);
    job.retry_busy = Some(Duration::seconds(10));
    let patient = Runner::new(job, pool.clone(), bus::Topology::new("t", 5), settings());
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        sqlx::query("DELETE FROM action_leases")
            .execute(&pool)
            .await
            .unwrap();
    };
    let (ran, ()) = tokio::join!(
        patient.start(trigger(shop_id, Some(Uuid::now_v7()))),
        release
    );
    let ran = ran.unwrap();
    assert!(matches!(ran, RunOutcome::Succeeded { .. }), "{ran:?}");
}
