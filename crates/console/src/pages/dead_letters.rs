//! デッドレター (dead letters), for console administrators only: per service, how many messages
//! sit in its dead-letter queue and the first [`SHOWN`] of them (peeked, nothing removed), and a
//! replay button that sends them back to the service's work queue ([`bus::dlq_replay`], what
//! `ctl dlq replay` does). The queues are per service, not per shop, so they hold every shop's
//! messages: an operator who sees only some shops gets 403 here and no menu entry.
//!
//! RabbitMQ (`AMQP_URL`) is connected per request (10 s to connect), the service's queues are
//! declared idempotently first (as `ctl dlq` does) and the connection is closed afterwards; a
//! broker that cannot be reached is said in the page (503), not a bare error. Each replay is
//! written to the API log with the operator's name (action `console`, code `dlq_replay`, no shop:
//! the queue holds messages of every shop) and the latest ones are listed under the queues.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Form,
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use bus::lapin::{
    Connection, ConnectionProperties,
    options::QueueDeclareOptions,
    types::{FieldTable, ShortString},
};
use domain::messages::Action;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, flash, table, url_enc},
    i18n::Lang,
    pages::api_log::log_table,
};

/// Messages listed per service.
pub const SHOWN: usize = 50;
/// Messages one press of the replay button sends back at most.
pub const REPLAY_LIMIT: usize = 1000;
/// Characters of a message's body shown.
const PAYLOAD_CHARS: usize = 160;
/// How long connecting to RabbitMQ, and then reading one service's queue, may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// API-log code of a replay.
pub const REPLAY_CODE: &str = "dlq_replay";
/// Replays listed under the queues.
const RECENT_REPLAYS: i64 = 20;

#[derive(Deserialize)]
pub struct Q {
    /// The service just replayed (after the redirect), with what happened.
    service: Option<String>,
    replayed: Option<usize>,
    failed: Option<usize>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Response, AppError> {
    ctx.require_admin()?;
    let replayed = q
        .service
        .as_deref()
        .and_then(|s| s.parse::<Action>().ok())
        .map(|service| {
            replay_flash(
                ctx.lang,
                service,
                q.replayed.unwrap_or(0),
                q.failed.unwrap_or(0),
            )
        });
    render(&ctx, replayed.unwrap_or_default(), None).await
}

/// What a replay did, in the operator's language.
fn replay_flash(lang: Lang, service: Action, replayed: usize, failed: usize) -> Markup {
    let name = format!("{} ({})", lang.action(service), service.as_str());
    let done = match lang {
        Lang::Ja => format!("{name}: {replayed}件を作業キューに戻しました。"),
        Lang::En => format!("{name}: {replayed} message(s) sent back to the work queue."),
    };
    let more = (replayed >= REPLAY_LIMIT).then(|| match lang {
        Lang::Ja => format!(
            "一度に戻すのは{REPLAY_LIMIT}件までです。残りがあればもう一度「再投入」を押してください。"
        ),
        Lang::En => format!(
            "At most {REPLAY_LIMIT} are sent back at once: press Replay again for the rest."
        ),
    });
    let not_done = (failed > 0).then(|| match lang {
        Lang::Ja => format!(
            "{failed}件は RabbitMQ が受け取りを確認しなかったため、デッドレターキューに残っています。RabbitMQ の状態（ディスク・メモリの警告、キューの上限）を確認してから、もう一度「再投入」を押してください。"
        ),
        Lang::En => format!(
            "{failed} could not be sent back (RabbitMQ did not confirm them) and stay in the dead-letter queue. Check RabbitMQ (disk or memory alarms, queue limits), then press Replay again."
        ),
    });
    html! {
        p class={ "flash " (if failed > 0 { "err" } else { "ok" }) } id="replayed" {
            (done)
            @if let Some(m) = more { " " (m) }
            @if let Some(m) = not_done { " " (m) }
        }
    }
}

/// One service's dead-letter queue as read for the page.
struct ServiceDlq {
    /// Messages ready in the DLQ.
    count: u32,
    /// The first [`SHOWN`] of them.
    messages: Vec<bus::DlqMessage>,
}

/// Connects to RabbitMQ (at most [`BROKER_TIMEOUT`]); the error is the text the page shows.
///
/// A one-shot connection, closed at the end of the request, made without lapin's automatic
/// recovery: `bus::connect` enables it for the services' long-lived connections, and with it a
/// broker that is down would be retried (16 attempts, minutes) in a background thread long after
/// the page answered, once per page load.
async fn connect(ctx: &Ctx) -> Result<Arc<Connection>, String> {
    let properties = ConnectionProperties::default().with_connection_name("console".into());
    match tokio::time::timeout(
        BROKER_TIMEOUT,
        Connection::connect(&ctx.state.amqp_url, properties),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(Arc::new(conn)),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {} s", BROKER_TIMEOUT.as_secs())),
    }
}

/// Declares the service's queues (idempotent: makes its DLQ exist even if the service never
/// started), counts its DLQ and peeks at the first [`SHOWN`] messages.
async fn read_service(
    conn: &Connection,
    topo: &bus::Topology,
    service: Action,
) -> Result<ServiceDlq, String> {
    let work = async {
        let channel = conn.create_channel().await?;
        topo.declare_service(&channel, service.as_str(), &[])
            .await?;
        let dlq = channel
            .queue_declare(
                ShortString::from(topo.dlq(service.as_str())),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "OK".into()).await;
        let messages = bus::dlq_peek(conn, &topo.queue(service.as_str()), SHOWN).await?;
        Ok::<_, bus::BusError>(ServiceDlq {
            count: dlq.message_count(),
            messages,
        })
    };
    match tokio::time::timeout(BROKER_TIMEOUT, work).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {} s", BROKER_TIMEOUT.as_secs())),
    }
}

/// A message's body for the table: compact JSON (or its size when it is not JSON), cut after
/// [`PAYLOAD_CHARS`] characters.
fn payload_text(m: &bus::DlqMessage) -> String {
    let full = match m.payload_json() {
        Some(v) => v.to_string(),
        None => format!("<{} bytes, not JSON>", m.payload.len()),
    };
    if full.chars().count() <= PAYLOAD_CHARS {
        full
    } else {
        let mut cut: String = full.chars().take(PAYLOAD_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// The `shop_id` of a message's JSON body, when it has one.
fn shop_of(m: &bus::DlqMessage) -> Option<Uuid> {
    m.payload_json()?
        .get("shop_id")?
        .as_str()?
        .parse::<Uuid>()
        .ok()
}

/// A dead-letter reason (`x-first-death-reason`) in the operator's language.
fn reason_label(lang: Lang, reason: &str) -> &str {
    match reason {
        "rejected" => lang.t("処理できず拒否", "rejected by the service"),
        "delivery_limit" => lang.t("配信回数の上限", "delivery limit reached"),
        "expired" => lang.t("期限切れ", "expired"),
        "maxlen" => lang.t("キュー長の上限", "queue length limit"),
        other => other,
    }
}

/// The page; `unreachable` (why RabbitMQ could not be reached, found out by the caller) shows
/// that instead of connecting again.
async fn render(
    ctx: &Ctx,
    flash_html: Markup,
    unreachable: Option<String>,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let title = t("デッドレター", "Dead letters");
    let topo = bus::Topology::new(ctx.state.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let connected = match unreachable {
        Some(err) => Err(err),
        None => connect(ctx).await,
    };
    let (services, unreachable) = match connected {
        Ok(conn) => {
            let mut read = Vec::with_capacity(Action::ALL.len());
            for service in Action::ALL {
                read.push((service, read_service(&conn, &topo, service).await));
            }
            let _ = bus::close(&conn).await;
            (read, None)
        }
        Err(err) => {
            tracing::warn!(error = %err, "console: RabbitMQ unreachable for the dead-letters page");
            (Vec::new(), Some(err))
        }
    };

    let mut conn = ctx.state.pool.acquire().await?;
    let mut shop_codes: HashMap<Uuid, Option<String>> = HashMap::new();
    for (_, read) in &services {
        for m in read.iter().flat_map(|r| &r.messages) {
            if let Some(id) = shop_of(m)
                && !shop_codes.contains_key(&id)
            {
                let code = match store::shops::get(&mut conn, id).await {
                    Ok(s) => Some(s.shop.code.to_string()),
                    Err(store::StoreError::NotFound { .. }) => None,
                    Err(err) => return Err(err.into()),
                };
                shop_codes.insert(id, code);
            }
        }
    }
    let replays = store::api_log::query(
        &mut conn,
        &store::api_log::Filter {
            action: Some("console".into()),
            code: Some(REPLAY_CODE.into()),
            limit: RECENT_REPLAYS,
            ..Default::default()
        },
    )
    .await?;

    let shop_cell = |m: &bus::DlqMessage| match shop_of(m) {
        Some(id) => match shop_codes.get(&id).cloned().flatten() {
            Some(code) => html! { (code) },
            None => {
                html! { span class="hint" { (id) " " (t("（不明なショップ）", "(unknown shop)")) } }
            }
        },
        None => html! { "—" },
    };
    let sections = html! {
        @for (service, read) in &services {
            @let id = service.as_str();
            @let wide = read.as_ref().is_ok_and(|r| !r.messages.is_empty());
            section class={ "card dlq" @if wide { " wide" } } id={ "dlq-" (id) } {
                h3 { (ctx.lang.action(*service)) " " span class="hint" { "(" (id) ")" } }
                @match read {
                    Err(err) => {
                        (flash("err", &format!("dlq-error-{id}"), &format!(
                            "{} {err}",
                            t(
                                "このサービスのデッドレターキューを読めませんでした:",
                                "Could not read this service's dead-letter queue:"
                            )
                        )))
                    }
                    Ok(read) => {
                        p {
                            (t("デッドレターキューのメッセージ:", "Messages in the dead-letter queue:"))
                            " " b class="dlq-count" { (read.count) }
                            @if read.count as usize > read.messages.len() && !read.messages.is_empty() {
                                " " span class="hint" {
                                    (match ctx.lang {
                                        Lang::Ja => format!("（先頭{}件を表示）", read.messages.len()),
                                        Lang::En => format!("(the first {} shown)", read.messages.len()),
                                    })
                                }
                            }
                        }
                        @if !read.messages.is_empty() {
                            (table(
                                None,
                                &[
                                    Col::text(t("メッセージID", "Message id")),
                                    Col::text(t("理由", "Reason")),
                                    Col::text(t("元のルーティングキー", "Original routing key")),
                                    Col::text(t("ショップ", "Shop")),
                                    Col::text(t("内容（先頭160文字）", "Body (first 160 characters)")),
                                ],
                                None,
                                html! {
                                    @for m in &read.messages {
                                        tr class="dlq-message" {
                                            td { code { (m.raw_message_id.as_deref().unwrap_or("—")) } }
                                            td {
                                                @match &m.reason {
                                                    Some(r) => {
                                                        (badge("rejected", reason_label(ctx.lang, r)))
                                                        " " code class="reason" { (r) }
                                                    }
                                                    None => "—",
                                                }
                                            }
                                            td { code { (m.original_routing_key) } }
                                            td class="shop" { (shop_cell(m)) }
                                            td { div class="msg" { (payload_text(m)) } }
                                        }
                                    }
                                },
                            ))
                        }
                        @if read.count > 0 || !read.messages.is_empty() {
                            form method="post" action="/dead-letters/replay" class="replay" {
                                input type="hidden" name="csrf" value=(ctx.op.csrf);
                                input type="hidden" name="service" value=(id);
                                button type="submit" id={ "replay-" (id) } { (t("再投入", "Replay")) }
                                " " span class="hint" {
                                    (match ctx.lang {
                                        Lang::Ja => format!("作業キューに戻します（一度に{REPLAY_LIMIT}件まで）。原因を直してから押してください。また失敗するとここに戻ります。"),
                                        Lang::En => format!("Sends them back to the work queue (up to {REPLAY_LIMIT} at once). Fix the cause first: a message that fails again comes back here."),
                                    })
                                }
                            }
                        } @else {
                            p class="hint empty" { (t("空です。", "Empty.")) }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        (flash_html)
        @if let Some(err) = &unreachable {
            p class="flash err" id="broker-unreachable" {
                (t(
                    "RabbitMQ に接続できないため、デッドレターキューを表示できません。RabbitMQ が動いているか、コンソールの AMQP_URL を確認してください。",
                    "RabbitMQ cannot be reached, so the dead-letter queues cannot be shown. Check that RabbitMQ is running and the console's AMQP_URL.",
                ))
                br;
                span class="hint" { (err) }
            }
        }
        p class="hint" {
            (t(
                "処理できなかったメッセージ（サービスごと、全ショップ分）。表示しても取り出しません。メッセージにはIDとパラメータだけが入り、購入者の情報は入りません。",
                "Messages the services could not process (per service, every shop's). Showing them removes nothing. Messages hold ids and parameters only, never buyer data.",
            ))
        }
        div class="cards" { (sections) }
        h2 { (t("再投入の履歴", "Replays")) }
        (log_table(ctx, &replays))
    };
    let status = if unreachable.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((status, ctx.page(title, body)).into_response())
}

#[derive(Deserialize)]
pub struct ReplayForm {
    csrf: String,
    service: String,
}

/// Sends up to [`REPLAY_LIMIT`] dead letters of one service back to its work queue, writes the
/// API-log entry, and shows the page again with what happened.
pub async fn replay(ctx: Ctx, Form(f): Form<ReplayForm>) -> Result<Response, AppError> {
    ctx.require_admin()?;
    ctx.check_csrf(&f.csrf)?;
    let service: Action = f.service.parse().map_err(|_| AppError::NotFound)?;
    let topo = bus::Topology::new(ctx.state.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let queue = topo.queue(service.as_str());
    let conn = match connect(&ctx).await {
        Ok(conn) => conn,
        Err(err) => {
            tracing::warn!(error = %err, %service, "console: RabbitMQ unreachable for a replay");
            return render(&ctx, html! {}, Some(err)).await;
        }
    };
    let outcome = async {
        let channel = conn.create_channel().await?;
        topo.declare_service(&channel, service.as_str(), &[])
            .await?;
        let _ = channel.close(200, "OK".into()).await;
        bus::dlq_replay(&conn, &queue, REPLAY_LIMIT).await
    }
    .await;
    let _ = bus::close(&conn).await;

    let operator = ctx.op.username.as_str();
    let (level, message, details) = match &outcome {
        Ok(stats) => (
            if stats.failed > 0 {
                store::api_log::Level::Warning
            } else {
                store::api_log::Level::Info
            },
            format!(
                "dead letters of {service} replayed by {operator}: {} sent back to {queue}, {} left in the dead-letter queue (not confirmed)",
                stats.replayed, stats.failed
            ),
            serde_json::json!({
                "operator": operator,
                "service": service.as_str(),
                "queue": queue,
                "replayed": stats.replayed,
                "failed": stats.failed,
            }),
        ),
        Err(err) => (
            store::api_log::Level::Error,
            format!("replay of the dead letters of {service} by {operator} failed: {err}"),
            serde_json::json!({
                "operator": operator,
                "service": service.as_str(),
                "queue": queue,
                "error": err.to_string(),
            }),
        ),
    };
    let mut db = ctx.state.pool.acquire().await?;
    store::api_log::write(
        &mut db,
        &store::api_log::Entry {
            code: Some(REPLAY_CODE),
            details: Some(details),
            ..store::api_log::Entry::new(None, "console", level, &message)
        },
    )
    .await?;
    match outcome {
        Ok(stats) => {
            tracing::info!(%service, operator, replayed = stats.replayed, failed = stats.failed, "console: dead letters replayed");
            Ok(Redirect::to(&format!(
                "/dead-letters?service={}&replayed={}&failed={}",
                url_enc(service.as_str()),
                stats.replayed,
                stats.failed
            ))
            .into_response())
        }
        Err(err) => {
            tracing::warn!(%service, operator, error = %err, "console: replay failed");
            let msg = format!(
                "{} {err}",
                ctx.t(
                    "再投入できませんでした（戻せたものは作業キューに、残りはデッドレターキューにあります。もう一度押してください）:",
                    "The replay failed (what was sent back is in the work queue, the rest stays in the dead-letter queue; press Replay again):"
                )
            );
            let mut resp = render(&ctx, flash("err", "replay-error", &msg), None).await?;
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &[u8]) -> bus::DlqMessage {
        bus::DlqMessage {
            message_id: None,
            raw_message_id: None,
            original_routing_key: "order-ingest".into(),
            original_exchange: "commands".into(),
            reason: Some("rejected".into()),
            headers: Default::default(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn payloads_are_cut_and_shops_read() {
        let shop = Uuid::now_v7();
        let long = serde_json::json!({"shop_id": shop, "filler": "x".repeat(400)});
        let m = message(long.to_string().as_bytes());
        let text = payload_text(&m);
        assert_eq!(text.chars().count(), PAYLOAD_CHARS + 1);
        assert!(text.ends_with('…'));
        assert_eq!(shop_of(&m), Some(shop));
        let binary = message(b"\xff\x00");
        assert_eq!(payload_text(&binary), "<2 bytes, not JSON>");
        assert_eq!(shop_of(&binary), None);
    }
}
