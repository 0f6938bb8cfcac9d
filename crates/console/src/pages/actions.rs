//! アクション実行: buttons for the five actions, the range and hours forms (checked in the page
//! and again here, with the same rules as `ctl trigger`), and the recent triggers. A trigger is
//! written to the transactional outbox like every other command; nothing is published when it
//! is refused.

use axum::{
    Form,
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use domain::{
    messages::{Action, Command, CommandError, CommandParams, StatusSyncMode},
    window::{ImportMode, WindowError},
};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    auth::ShopRef,
    html::{Col, badge, flash, table, time, url_enc},
    i18n::Lang,
    nz,
};

/// Triggers listed under the buttons.
const RECENT_TRIGGERS: i64 = 20;

#[derive(Deserialize)]
pub struct Q {
    shop: Option<String>,
    queued: Option<Uuid>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Response, AppError> {
    let shop = ctx.pick_shop(nz(&q.shop))?;
    let flash = match (q.queued, shop) {
        (Some(id), Some(_)) => queued_flash(&ctx, id).await?,
        _ => html! {},
    };
    render(&ctx, shop, flash, StatusCode::OK).await
}

async fn queued_flash(ctx: &Ctx, id: Uuid) -> Result<Markup, AppError> {
    let mut conn = ctx.state.pool.acquire().await?;
    let row = store::read::actions::queued_command(&mut conn, id).await?;
    let Some(row) = row else {
        return Ok(html! {});
    };
    let visible = row
        .payload
        .get("shop_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Uuid>().ok())
        .is_some_and(|s| ctx.op.shop_by_id(s).is_some());
    if !visible {
        return Ok(html! {});
    }
    Ok(html! {
        p class="flash ok" id="queued" {
            (ctx.t("実行を依頼しました:", "Triggered:"))
            " "
            (params_summary(ctx.lang, &row.routing_key, &row.payload))
            " — "
            (ctx.t("メッセージID", "message id"))
            " "
            code { (id) }
        }
    })
}

/// `出荷指示取得（時間指定で取得 6時間）` from a command payload.
fn params_summary(lang: Lang, routing_key: &str, payload: &serde_json::Value) -> String {
    let name = lang.action_str(routing_key);
    let p = &payload["params"];
    let detail = match p["mode"].as_str() {
        Some("hours") => format!(
            "{} {}{}",
            lang.mode("hours"),
            p["hours"],
            lang.t("時間", " h")
        ),
        Some("range") => format!(
            "{} {} – {}",
            lang.mode("range"),
            p["from"].as_str().unwrap_or("?"),
            p["to"].as_str().unwrap_or("?")
        ),
        Some(m) => lang.mode(m),
        None if p["full"].as_bool() == Some(true) => lang.mode("full"),
        None => String::new(),
    };
    if detail.is_empty() {
        name
    } else {
        format!("{name}（{detail}）")
    }
}

async fn render(
    ctx: &Ctx,
    shop: Option<&ShopRef>,
    flash: Markup,
    status: StatusCode,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let Some(shop) = shop else {
        return Ok(ctx.no_shops_page(t("アクション実行", "Actions"), flash, status));
    };
    let tz = shop.time_zone.as_str();
    let hidden = |action: &str, mode: &str| {
        html! {
            (ctx.shop_form_fields(&shop.code))
            input type="hidden" name="action" value=(action);
            input type="hidden" name="mode" value=(mode);
        }
    };
    let card_title = |a: Action| {
        html! {
            h3 { (ctx.lang.action(a)) " " span class="hint" { "(" (a.as_str()) ")" } }
        }
    };
    // order-ingest: three modes.
    let oi = Action::OrderIngest;
    let order_ingest = html! {
        div class="card" id="card-order-ingest" {
            (card_title(oi))
            form method="post" action="/actions" id="differential-form" {
                (hidden(oi.as_str(), "differential"))
                button type="submit" id="differential-submit" { (ctx.lang.mode("differential")) }
                span class="hint" {
                    (t(
                        "前回の実行時刻から現在まで（初回は1週間前から）",
                        "From the previous run until now (first run: one week back)"
                    ))
                }
            }
            form method="post" action="/actions" id="range-form" data-range
                data-msg-too-long=(t(
                    "範囲が長すぎます。範囲指定で取得できるのは最大7日間です。1週間ごとに分けてください。",
                    "The range is too long: a range may span at most 7 days. Split it into weekly ranges."
                ))
                data-msg-inverted=(t(
                    "開始日時を終了日時より前にしてください。",
                    "The start must be before the end."
                )) {
                (hidden(oi.as_str(), "range"))
                label { (t("開始", "From")) " " input type="datetime-local" name="from" required; }
                label { (t("終了", "To")) " " input type="datetime-local" name="to" required; }
                button type="submit" id="range-submit" { (ctx.lang.mode("range")) }
                span class="flash err form-error" hidden {}
                span class="hint" { (t("1回の範囲は最大7日間", "One range spans at most 7 days")) }
            }
            form method="post" action="/actions" id="hours-form" {
                (hidden(oi.as_str(), "hours"))
                label {
                    (t("過去", "Last")) " "
                    input type="number" name="hours" min="1" max="168" step="1" required placeholder="6" style="width:6em";
                    " " (t("時間", "hours"))
                }
                button type="submit" id="hours-submit" { (ctx.lang.mode("hours")) }
                span class="hint" { (t("1〜168時間（最大1週間）", "1–168 hours (at most one week)")) }
            }
        }
    };
    let simple = |a: Action, buttons: &[(&str, &str, &str)]| {
        html! {
            div class="card" id={ "card-" (a.as_str()) } {
                (card_title(a))
                @for (mode, label, hint) in buttons {
                    form method="post" action="/actions" {
                        (hidden(a.as_str(), mode))
                        button type="submit" id={ (a.as_str()) "-" (if mode.is_empty() { "run" } else { mode }) "-submit" } { (label) }
                        span class="hint" { (hint) }
                    }
                }
            }
        }
    };
    let cards = html! {
        (order_ingest)
        (simple(
            Action::StatusSync,
            &[
                (
                    "changes",
                    t("ステータス同期を実行", "Run status sync"),
                    t("入金・キャンセルを反映", "Apply payments and cancellations"),
                ),
                (
                    "reconcile",
                    t("全件照合", "Reconcile all open"),
                    t(
                        "障害後に未完了の出荷指示をすべて確認",
                        "After an outage: check every open instruction",
                    ),
                ),
            ],
        ))
        (simple(
            Action::ShipmentFeedback,
            &[(
                "",
                t("出荷実績戻しを実行", "Run shipment-result return"),
                t(
                    "本日出荷分の配送業者と問番を送信",
                    "Send carrier and tracking numbers of today's shipments",
                ),
            )],
        ))
        (simple(
            Action::InventorySync,
            &[
                (
                    "",
                    t("在庫連携を実行", "Run inventory sync"),
                    t(
                        "在庫が変わったSKUのフリー在庫を送信",
                        "Push free stock of SKUs whose stock changed",
                    ),
                ),
                (
                    "full",
                    t("全SKUを送信", "Push every SKU"),
                    t("対応表のすべてのSKU", "Every mapped SKU"),
                ),
            ],
        ))
        (simple(
            Action::FeedPoller,
            &[(
                "",
                t("フィード送信結果取得を実行", "Fetch feed results"),
                t(
                    "送信済みフィードの処理結果を取得",
                    "Fetch processing results of submitted feeds",
                ),
            )],
        ))
    };

    // Recent triggers of this shop.
    let topo = bus::Topology::new(ctx.state.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::actions::recent_triggers(
        &mut conn,
        &topo.commands_exchange(),
        shop.id,
        RECENT_TRIGGERS,
    )
    .await?;
    let trigger_rows = html! {
        @for r in &rows {
            tr {
                td { (time(r.created_at, ctx.state.tz)) }
                td { (params_summary(ctx.lang, &r.routing_key, &r.payload)) }
                td { (r.payload["requested_by"].as_str().unwrap_or("")) }
                td {
                    @if r.sent_at.is_some() {
                        (badge("ok", t("配信済み", "Published")))
                    } @else {
                        (badge("pending", t("配信待ち", "Waiting for relay")))
                    }
                }
                td {
                    @match (&r.run_status, r.run_id) {
                        (Some(s), Some(id)) => a href={ "/runs?shop=" (url_enc(&shop.code)) "#run-" (id) } {
                            (badge(s, &ctx.lang.run_status(s)))
                        },
                        _ => "—",
                    }
                }
            }
        }
    };
    let body = html! {
        (flash)
        (ctx.shop_switch(&shop.code))
        p class="hint" {
            (t("対象ショップ:", "Shop:")) " " b { (shop.name) } " (" (shop.code) ") — "
            (t("日時はショップのタイムゾーン:", "Times are in the shop's time zone:")) " " (tz)
        }
        div class="cards" { (cards) }
        script { (PreEscaped(SCRIPT)) }
        h2 { (t("最近の実行依頼", "Recent triggers")) }
        (table(
            Some("triggers"),
            &[
                Col::text(t("依頼日時", "Requested")),
                Col::text(t("アクション", "Action")),
                Col::text(t("依頼者", "Requested by")),
                Col::text(t("キュー", "Queue")),
                Col::text(t("実行", "Run")),
            ],
            rows.is_empty().then(|| t("まだありません", "None yet")),
            trigger_rows,
        ))
    };
    Ok((status, ctx.page(t("アクション実行", "Actions"), body)).into_response())
}

/// Page-side checks of the range form (the server checks again): a constant, the only
/// `PreEscaped` of this page.
const SCRIPT: &str = r#"
document.querySelectorAll('form[data-range]').forEach(function (f) {
  f.addEventListener('submit', function (ev) {
    var out = f.querySelector('.form-error');
    var ms = Date.parse(f.elements.to.value) - Date.parse(f.elements.from.value);
    var msg = '';
    if (!(ms > 0)) msg = f.dataset.msgInverted;
    else if (ms > 7 * 24 * 3600 * 1000) msg = f.dataset.msgTooLong;
    if (msg) { ev.preventDefault(); out.textContent = msg; out.hidden = false; }
    else { out.hidden = true; }
  });
});
"#;

#[derive(Deserialize)]
pub struct TriggerForm {
    csrf: String,
    shop: String,
    action: String,
    #[serde(default)]
    mode: String,
    from: Option<String>,
    to: Option<String>,
    hours: Option<String>,
}

/// A `datetime-local` value (`2026-11-01T09:00`) in the shop's time zone, or RFC 3339.
fn parse_time(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Why a trigger was refused, in the operator's language.
fn refusal(lang: Lang, err: &CommandError, tz: Tz) -> String {
    let nothing = lang.t("何も送信していません。", "Nothing was sent.");
    let ja = match err {
        CommandError::Window(WindowError::RangeTooLong { from, to, hours }) => format!(
            "範囲が長すぎます: {} 〜 {} は{}日{}時間です。範囲指定で取得できるのは最大7日間（168時間）です。1週間ごとに分けて実行してください。",
            time(*from, tz),
            time(*to, tz),
            hours / 24,
            hours % 24
        ),
        CommandError::Window(WindowError::Inverted { .. }) => {
            "開始日時が終了日時より後になっています。開始を終了より前にしてください。".to_owned()
        }
        CommandError::Window(WindowError::HoursOutOfRange { hours }) => {
            format!("時間は1〜168の整数で指定してください（指定値: {hours}）。")
        }
        CommandError::Window(WindowError::Empty { .. }) => {
            "終了日時が現在の2分前より後のため、取得対象の期間がありません。もっと前の期間を指定してください。"
                .to_owned()
        }
        other => other.to_string(),
    };
    match lang {
        Lang::Ja => format!("{ja} {nothing}"),
        Lang::En => format!("{err}. {nothing}"),
    }
}

fn params(f: &TriggerForm, action: Action, tz: Tz, lang: Lang) -> Result<CommandParams, String> {
    Ok(match action {
        Action::OrderIngest => CommandParams::OrderIngest {
            mode: match f.mode.as_str() {
                "" | "differential" => ImportMode::Differential,
                "range" => {
                    let get = |v: &Option<String>| {
                        nz(v).and_then(|s| parse_time(s, tz)).ok_or_else(|| {
                            lang.t(
                                "開始と終了の日時を入力してください（例: 2026-11-01T09:00）。何も送信していません。",
                                "Enter both start and end (e.g. 2026-11-01T09:00). Nothing was sent.",
                            )
                            .to_owned()
                        })
                    };
                    ImportMode::Range {
                        from: get(&f.from)?,
                        to: get(&f.to)?,
                    }
                }
                "hours" => {
                    let hours = nz(&f.hours)
                        .and_then(|h| h.parse::<i64>().ok())
                        .ok_or_else(|| {
                            lang.t(
                                "時間は1〜168の整数で指定してください。何も送信していません。",
                                "Give the hours as a whole number from 1 to 168. Nothing was sent.",
                            )
                            .to_owned()
                        })?;
                    ImportMode::Hours { hours }
                }
                other => return Err(format!("unknown mode {other:?}")),
            },
        },
        Action::StatusSync => CommandParams::StatusSync {
            mode: if f.mode == "reconcile" {
                StatusSyncMode::Reconcile
            } else {
                StatusSyncMode::Changes
            },
        },
        Action::ShipmentFeedback => CommandParams::ShipmentFeedback {},
        Action::InventorySync => CommandParams::InventorySync {
            full: f.mode == "full",
        },
        Action::FeedPoller => CommandParams::FeedPoll {
            feed_submission_id: None,
        },
    })
}

pub async fn trigger(ctx: Ctx, Form(f): Form<TriggerForm>) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let shop = ctx.op.shop_by_code(&f.shop).ok_or(AppError::NotFound)?;
    let action: Action = f.action.parse().map_err(|_| AppError::NotFound)?;
    let tz: Tz = shop.time_zone.parse().unwrap_or(ctx.state.tz);
    let now = Utc::now();
    let params = match params(&f, action, tz, ctx.lang) {
        Ok(p) => p,
        Err(msg) => return refused(&ctx, shop, &msg).await,
    };
    let cmd = Command::new(shop.id, action, params, ctx.op.username.clone(), now);
    if let Err(err) = cmd.validate(now) {
        tracing::info!(shop = %shop.code, action = %action, error = %err, "console trigger refused");
        return refused(&ctx, shop, &refusal(ctx.lang, &err, tz)).await;
    }
    let topo = bus::Topology::new(ctx.state.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let msg = bus::OutboxMessage::command(&topo, &cmd);
    let mut tx = ctx.state.pool.begin().await?;
    bus::outbox::enqueue(&mut tx, msg).await?;
    tx.commit().await?;
    tracing::info!(shop = %shop.code, action = %action, message_id = %cmd.message_id,
        requested_by = %ctx.op.username, "console trigger queued");
    Ok(Redirect::to(&format!(
        "/actions?shop={}&queued={}",
        url_enc(&shop.code),
        cmd.message_id
    ))
    .into_response())
}

/// The actions page again, with why the trigger was refused (HTTP 422).
async fn refused(ctx: &Ctx, shop: &ShopRef, msg: &str) -> Result<Response, AppError> {
    let flash = flash("err", "refused", msg);
    render(ctx, Some(shop), flash, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_is_read_in_the_shop_zone() {
        let t = parse_time("2026-11-01T09:00", chrono_tz::Asia::Tokyo).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        let t = parse_time("2026-11-01T09:00:00+09:00", chrono_tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert!(parse_time("yesterday", chrono_tz::UTC).is_none());
    }
}
