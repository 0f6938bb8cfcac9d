//! Delivers notifications from the outbox to their SQS queues, at least once and in no
//! guaranteed order: the `notification*` options delay, duplicate, reorder and drop them (seeded
//! RNG), and the counter records what was sent. Runs as its own task, so the HTTP handler that
//! changed an order never waits for SQS.
//!
//! Sends with SQS's JSON protocol (`POST {endpoint}/`, `X-Amz-Target: AmazonSQS.SendMessage`,
//! `Content-Type: application/x-amz-json-1.0`, body `{"QueueUrl","MessageBody"}`) and an
//! unsigned AWS4 `Authorization` header whose credential scope names the ARN's region and the
//! `sqs` service: moto routes requests by that scope and does not check signatures; real SQS
//! would refuse the request.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::notify::{Outgoing, parse_arn, queue_url};
use crate::sim::Sim;

/// With `notificationReorder`, messages are held until this many are waiting…
const REORDER_BATCH: usize = 5;
/// …or the oldest has waited this long, then released shuffled.
const REORDER_HOLD: Duration = Duration::from_millis(300);
/// Attempts per message before it counts as failed.
const ATTEMPTS: u32 = 3;

struct Held {
    arrived: Instant,
    due: Instant,
    msg: Outgoing,
}

/// The delivery loop (spawned by [`crate::spawn_on`]).
pub(crate) async fn run(sim: Sim) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notification delivery: no HTTP client");
            return;
        }
    };
    let endpoint = sim.config().sqs_endpoint.clone();
    let mut held: Vec<Held> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let release = take_due(&sim, &mut held);
        for msg in release {
            let result = send_with_retries(&client, &endpoint, &msg).await;
            let mut st = sim.lock();
            let n = &mut st.notifications;
            n.counter.pending = n.counter.pending.saturating_sub(1);
            match result {
                Ok(()) => n.counter.record(&msg.notification_type, |c| c.sent = 1),
                Err(e) => {
                    tracing::warn!(arn = %msg.arn, error = %e, "notification not delivered");
                    n.counter.record(&msg.notification_type, |c| c.failed = 1);
                }
            }
        }
    }
}

/// Moves new messages from the outbox into `held` (dropping and duplicating as the options
/// say) and returns those to send now.
fn take_due(sim: &Sim, held: &mut Vec<Held>) -> Vec<Outgoing> {
    let now = Instant::now();
    let mut st = sim.lock();
    let o = st.options.clone();
    let n = &mut st.notifications;
    let delay = Duration::from_millis(o.notification_delay_ms);
    while let Some(msg) = n.outbox.pop_front() {
        if o.notification_drop_rate > 0.0
            && n.rng.random_bool(o.notification_drop_rate.clamp(0.0, 1.0))
        {
            n.counter.pending = n.counter.pending.saturating_sub(1);
            n.counter.record(&msg.notification_type, |c| c.dropped = 1);
            continue;
        }
        if o.notification_duplicate_rate > 0.0
            && n.rng
                .random_bool(o.notification_duplicate_rate.clamp(0.0, 1.0))
        {
            n.counter.pending += 1;
            n.counter
                .record(&msg.notification_type, |c| c.duplicated = 1);
            held.push(Held {
                arrived: now,
                due: now + delay,
                msg: msg.clone(),
            });
        }
        held.push(Held {
            arrived: now,
            due: now + delay,
            msg,
        });
    }
    if held.is_empty() {
        return Vec::new();
    }
    if o.notification_reorder {
        let oldest = held.iter().map(|h| h.arrived).min().unwrap_or(now);
        if held.len() < REORDER_BATCH && now.duration_since(oldest) < REORDER_HOLD {
            return Vec::new();
        }
    }
    let (ready, waiting): (Vec<Held>, Vec<Held>) = held.drain(..).partition(|h| h.due <= now);
    *held = waiting;
    let mut out: Vec<Outgoing> = ready.into_iter().map(|h| h.msg).collect();
    if o.notification_reorder {
        out.shuffle(&mut n.rng);
    }
    out
}

async fn send_with_retries(
    client: &reqwest::Client,
    endpoint: &str,
    msg: &Outgoing,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        match send(client, endpoint, msg).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One SQS `SendMessage` (JSON protocol).
async fn send(client: &reqwest::Client, endpoint: &str, msg: &Outgoing) -> Result<(), String> {
    let (region, _, _) = parse_arn(&msg.arn).ok_or_else(|| format!("bad ARN {}", msg.arn))?;
    let url = queue_url(endpoint, &msg.arn).ok_or_else(|| format!("bad ARN {}", msg.arn))?;
    let date = chrono::Utc::now().format("%Y%m%d");
    let resp = client
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("X-Amz-Target", "AmazonSQS.SendMessage")
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=spapi-sim/{date}/{region}/sqs/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .body(json!({"QueueUrl": url, "MessageBody": msg.body}).to_string())
        .send()
        .await
        .map_err(|e| format!("SendMessage to {url}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(format!("SendMessage to {url}: {status} {text}"))
}
