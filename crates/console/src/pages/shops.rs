//! ショップ: the operator's shops (authorization state, what to do when Amazon refuses the
//! token) and one shop with its recent runs and its Amazon notifications, which the shop's
//! operators subscribe and unsubscribe here (the `subscriptions` crate, as `ctl notifications`).

use std::time::Duration;

use axum::{
    Form,
    extract::{Path, Query},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use domain::schedule::Cadence;
use maud::{Markup, html};
use serde::Deserialize;
use store::read::runs::RunFilter;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, flash, opt, table, time, time_opt, url_enc},
    i18n::Lang,
    nz,
    pages::{runs::runs_table, schedules::refusal},
};

/// How long a subscribe or unsubscribe waits for the Notifications API's quota (1/s, burst 5)
/// before giving up: an operator can wait a few seconds.
const SPAPI_LIMITER_WAIT: Duration = Duration::from_secs(10);

/// Runs shown on a shop's page.
const RECENT_RUNS: i64 = 20;

pub async fn list(ctx: Ctx) -> Result<Html<String>, AppError> {
    let body = shops_table(&ctx, &ctx.op.shop_ids()).await?;
    Ok(ctx.page(ctx.t("ショップ", "Shops"), body))
}

/// What a shop's page says after a subscribe or unsubscribe (the redirect's query).
#[derive(Debug, Default, Deserialize)]
pub struct DetailQ {
    /// `subscribed`, `unsubscribed` or `unchanged`.
    notifications: Option<String>,
    /// status-sync's cadence now.
    cron: Option<String>,
}

pub async fn detail(
    ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<DetailQ>,
) -> Result<Response, AppError> {
    let flash = done_flash(&ctx, &q);
    render(&ctx, &code, flash, None, StatusCode::OK).await
}

/// What the operator typed in the subscribe form, shown again after a refusal.
struct Retry<'a> {
    sqs_arn: &'a str,
    sweep: &'a str,
}

async fn render(
    ctx: &Ctx,
    code: &str,
    flash: Markup,
    retry: Option<Retry<'_>>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let ids = ctx.scope(Some(code))?;
    let shops = shops_table(ctx, &ids).await?;
    let mut conn = ctx.state.pool.acquire().await?;
    let runs = store::read::runs::list(
        &mut conn,
        &RunFilter {
            shops: Some(&ids),
            limit: RECENT_RUNS,
            ..Default::default()
        },
    )
    .await?;
    let notifications = match ids.as_slice() {
        [id] => Some(notifications(ctx, &mut conn, *id, code, retry).await?),
        _ => None,
    };
    let q = url_enc(code);
    let body = html! {
        (flash)
        (shops)
        @if let Some(n) = notifications { (n) }
        h2 { (ctx.t("最近の実行", "Recent runs")) }
        (runs_table(ctx, &runs))
        p {
            a class="button" href={ "/actions?shop=" (q) } { (ctx.t("アクション実行", "Actions")) }
            " "
            a href={ "/schedules?shop=" (q) } { (ctx.t("自動実行", "Schedules")) }
            " · "
            a href={ "/instructions?shop=" (q) } { (ctx.t("タスク一覧", "Shipping instructions")) }
            " · "
            a href={ "/api-log?shop=" (q) } { (ctx.t("APIログ", "API log")) }
        }
    };
    let page = ctx.page(&format!("{} {code}", ctx.t("ショップ", "Shop")), body);
    Ok((status, page).into_response())
}

/// Amazon's notifications for one shop: its subscriptions, the last notification received and
/// the last 24 hours by outcome (what `ctl notifications status` prints), and how to subscribe.
async fn notifications(
    ctx: &Ctx,
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    code: &str,
    retry: Option<Retry<'_>>,
) -> Result<Markup, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let subs = store::notifications::subscriptions(&mut *conn, shop_id).await?;
    let last = store::notifications::last_received(&mut *conn, shop_id).await?;
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let counts = store::notifications::counts_since(&mut *conn, shop_id, since).await?;
    let rows = html! {
        @for s in &subs {
            tr {
                td { (s.notification_type) }
                td { code { (s.subscription_id) } }
                td { code { (s.destination_id) } }
                td { (time(s.subscribed_at, ctx.state.tz)) }
            }
        }
    };
    Ok(html! {
        h2 id="notifications" { (t("Amazonの通知", "Amazon notifications")) }
        (table(
            Some("notification-subscriptions"),
            &[
                Col::text(t("通知の種類", "Notification type")),
                Col::text(t("サブスクリプションID", "Subscription id")),
                Col::text(t("送信先ID", "Destination id")),
                Col::text(t("登録日時", "Subscribed")),
            ],
            subs.is_empty().then(|| t(
                "未登録：ステータス同期は自動実行の間隔でAmazonに問い合わせます",
                "Not subscribed: status-sync asks Amazon at its schedule's cadence"
            )),
            rows,
        ))
        p {
            (t("最後に受信した通知", "Last notification received")) ": "
            @match &last {
                Some((kind, subject, outcome, at)) => {
                    (kind) " " code { (opt(subject.as_deref())) } " " (badge(outcome, outcome))
                    " " (time(*at, ctx.state.tz))
                }
                None => { (t("なし", "none")) }
            }
            " · " (t("24時間", "24 hours")) ": "
            @if counts.is_empty() { "0" }
            @for (i, (outcome, n)) in counts.iter().enumerate() {
                @if i > 0 { ", " }
                (outcome) " " (n)
            }
        }
        @if subs.is_empty() {
            form method="post" action={ "/shops/" (url_enc(code)) "/notifications/subscribe" }
                id="notifications-subscribe" {
                input type="hidden" name="csrf" value=(ctx.op.csrf);
                label {
                    (t("SQSキューのARN", "SQS queue ARN"))
                    input type="text" name="sqs_arn" required size="60"
                        placeholder="arn:aws:sqs:us-west-2:123456789012:connector-notifications"
                        value=[retry.as_ref().map(|r| r.sqs_arn)]
                        aria-invalid=[retry.as_ref().map(|_| "true")];
                }
                " "
                label {
                    (t("スイープの間隔（cron、空欄は毎時）", "Sweep cadence (cron; empty: hourly)"))
                    input type="text" name="sweep" size="16"
                        placeholder=(subscriptions::DEFAULT_SWEEP)
                        value=[retry.as_ref().map(|r| r.sweep)];
                }
                " "
                button type="submit" { (t("通知を登録", "Subscribe")) }
            }
            p class="hint" {
                (t(
                    "登録中はAmazonが注文の変更を通知し、ステータス同期はスイープ（取りこぼしの確認）だけを実行し、出荷指示取得は新規注文だけを5分ごとに取得します。",
                    "While subscribed, Amazon announces order changes, status-sync runs only as the sweep (finding what no notification announced) and order-ingest asks for new orders only, every 5 minutes."
                ))
                " " (t("コマンドラインでは", "From the command line:")) " "
                code { "ctl notifications subscribe " (code) " --sqs-arn ARN" }
            }
        } @else {
            p class="hint" {
                (t(
                    "通知が届かない変更はステータス同期の定期確認（スイープ）が反映し、要対応に notifications_missed として表示します。",
                    "Changes no notification announces are applied by status-sync's sweep and listed under Attention (notifications_missed)."
                ))
            }
            form method="post" action={ "/shops/" (url_enc(code)) "/notifications/unsubscribe" }
                id="notifications-unsubscribe" {
                input type="hidden" name="csrf" value=(ctx.op.csrf);
                button type="submit" class="secondary" {
                    (t("通知の登録を解除", "Unsubscribe"))
                }
                " "
                span class="hint" {
                    (t(
                        "Amazonのサブスクリプションを削除し、ステータス同期の間隔を登録前に戻します。",
                        "Deletes the subscriptions at Amazon and restores status-sync's cadence from before subscribing."
                    ))
                    " " (t("コマンドラインでは", "From the command line:")) " "
                    code { "ctl notifications unsubscribe " (code) }
                }
            }
        }
    })
}

async fn shops_table(ctx: &Ctx, ids: &[Uuid]) -> Result<Markup, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::shops::overview(&mut conn, ids).await?;
    let body = html! {
        @for r in &rows {
            @let auth = badge(&r.auth_status, &ctx.lang.auth_status(&r.auth_status));
            tr {
                td {
                    a href={ "/shops/" (url_enc(&r.code)) } { (r.code) }
                    @if !r.active {
                        " " (badge("neutral", t("停止中", "inactive")))
                    }
                }
                td { (r.name) }
                td { (r.seller_id) }
                td { (r.marketplaces.join(", ")) }
                td { (r.time_zone) }
                td {
                    (match r.shipment_strategy.as_str() {
                        "feed" => t(
                            "フィード（POST_ORDER_FULFILLMENT_DATA）",
                            "Feed (POST_ORDER_FULFILLMENT_DATA)"
                        ),
                        "confirm_shipment" => "confirmShipment",
                        other => other,
                    })
                }
                td {
                    (auth)
                    @if r.auth_status == "needs_reauthorization" {
                        div class="msg" { (opt(r.auth_error.as_deref())) }
                        div class="todo" {
                            (t(
                                "セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを登録してください（ctl shop reauthorize）。",
                                "Re-authorize the app in Seller Central and store the new refresh token (ctl shop reauthorize)."
                            ))
                        }
                    }
                }
                td { (time_opt(r.last_ok, ctx.state.tz)) }
            }
        }
    };
    Ok(table(
        Some("shops"),
        &[
            Col::text(t("コード", "Code")),
            Col::text(t("名前", "Name")),
            Col::text(t("セラーID", "Seller id")),
            Col::text(t("マーケットプレイス", "Marketplaces")),
            Col::text(t("タイムゾーン", "Time zone")),
            Col::text(t("出荷実績の送信方法", "Shipment return")),
            Col::text(t("認可状態", "Authorization")),
            Col::text(t("最終成功実行", "Last successful run")),
        ],
        rows.is_empty()
            .then(|| t("閲覧できるショップがありません", "You have no shops")),
        body,
    ))
}

/// The fields the subscribe and unsubscribe forms post.
#[derive(Debug, Deserialize)]
pub struct NotificationsForm {
    csrf: String,
    #[serde(default)]
    sqs_arn: Option<String>,
    #[serde(default)]
    sweep: Option<String>,
}

/// The shop's record and its SP-API handle, built as `ctl` builds it (the console's keyring).
async fn shop_api(
    ctx: &Ctx,
    code: &str,
) -> Result<(store::shops::ShopRecord, spapi::Shop), AppError> {
    let mut conn = ctx.state.pool.acquire().await?;
    let rec = store::shops::get_by_code(&mut conn, code).await?;
    let api = runtime::spapi_client(&ctx.state.pool, 1.0, SPAPI_LIMITER_WAIT)?;
    let shop = runtime::shop_api(&mut conn, &ctx.state.keys, &api, &rec.shop).await?;
    Ok((rec, shop))
}

/// Subscribes the shop to Amazon's notifications (an operator of the shop: 404 otherwise).
pub async fn subscribe(
    ctx: Ctx,
    Path(code): Path<String>,
    Form(f): Form<NotificationsForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let shop = ctx.op.shop_by_code(&code).ok_or(AppError::NotFound)?;
    let code = shop.code.clone();
    let typed_arn = f.sqs_arn.as_deref().unwrap_or_default().trim();
    let typed_sweep = f.sweep.as_deref().unwrap_or_default().trim();
    let retry = || {
        Some(Retry {
            sqs_arn: typed_arn,
            sweep: typed_sweep,
        })
    };
    if let Err(err) = subscriptions::check_sqs_arn(typed_arn) {
        tracing::info!(shop = %code, input = typed_arn, "console subscribe refused: not an SQS ARN");
        let msg = match ctx.lang {
            Lang::Ja => format!(
                "「{}」はSQSキューのARNではありません。arn:aws:sqs:リージョン:アカウントID（12桁）:キュー名 の形式で指定してください。例: arn:aws:sqs:us-west-2:123456789012:connector-notifications。何も変更していません。",
                err.input
            ),
            Lang::En => format!("{err}. Nothing was changed."),
        };
        return refused(&ctx, &code, &msg, retry(), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let sweep: Cadence = match nz(&f.sweep).unwrap_or(subscriptions::DEFAULT_SWEEP).parse() {
        Ok(c) => c,
        Err(err) => {
            let msg = refusal(ctx.lang, &err);
            return refused(&ctx, &code, &msg, retry(), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let (rec, api) = shop_api(&ctx, &code).await?;
    let operator = ctx.op.username.as_str();
    match subscriptions::subscribe(&ctx.state.pool, &api, &rec, typed_arn, &sweep, operator).await {
        Ok(done) => {
            tracing::info!(shop = %code, operator, sqs_arn = typed_arn, "console subscribed the shop to Amazon's notifications");
            Ok(Redirect::to(&format!(
                "/shops/{}?notifications=subscribed&cron={}#notifications",
                url_enc(&code),
                url_enc(&done.sweep)
            ))
            .into_response())
        }
        Err(err) => {
            tracing::warn!(shop = %code, operator, error = %err_chain(&err), "console subscribe failed");
            let msg = failure(
                &ctx,
                ctx.t("登録できませんでした", "Subscribing failed"),
                &err,
            );
            refused(&ctx, &code, &msg, retry(), status_of(&err)).await
        }
    }
}

/// Unsubscribes the shop (an operator of the shop: 404 otherwise).
pub async fn unsubscribe(
    ctx: Ctx,
    Path(code): Path<String>,
    Form(f): Form<NotificationsForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let shop = ctx.op.shop_by_code(&code).ok_or(AppError::NotFound)?;
    let code = shop.code.clone();
    let (rec, api) = shop_api(&ctx, &code).await?;
    let operator = ctx.op.username.as_str();
    match subscriptions::unsubscribe(&ctx.state.pool, &api, &rec, operator).await {
        Ok(done) => {
            tracing::info!(shop = %code, operator, changed = done.changed, "console unsubscribed the shop from Amazon's notifications");
            let what = if done.changed {
                "unsubscribed"
            } else {
                "unchanged"
            };
            let cron = done
                .restored
                .as_ref()
                .map(|(c, _)| format!("&cron={}", url_enc(c)))
                .unwrap_or_default();
            Ok(Redirect::to(&format!(
                "/shops/{}?notifications={what}{cron}#notifications",
                url_enc(&code)
            ))
            .into_response())
        }
        Err(err) => {
            tracing::warn!(shop = %code, operator, error = %err_chain(&err), "console unsubscribe failed");
            let msg = failure(
                &ctx,
                ctx.t("登録解除できませんでした", "Unsubscribing failed"),
                &err,
            );
            refused(&ctx, &code, &msg, None, status_of(&err)).await
        }
    }
}

/// The error with its causes, one line (`a: b: c`).
fn err_chain(err: &subscriptions::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The flash of a failed subscribe or unsubscribe: what failed, then the details (which name
/// the shop, the ARN, what was undone and what to do).
fn failure(ctx: &Ctx, lead: &str, err: &subscriptions::Error) -> String {
    let details = err_chain(err);
    match ctx.lang {
        Lang::Ja => format!("{lead}（詳細は英語）: {details}"),
        Lang::En => format!("{lead}: {details}"),
    }
}

/// 502 when Amazon refused, 422 for an input, 500 for the database.
fn status_of(err: &subscriptions::Error) -> StatusCode {
    use subscriptions::Error as E;
    match err {
        E::InvalidArn(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::Amazon { .. } | E::OtherDestination { .. } | E::Incomplete { .. } => {
            StatusCode::BAD_GATEWAY
        }
        E::NotRecorded { .. } | E::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The shop's page again with why the change was refused or failed.
async fn refused(
    ctx: &Ctx,
    code: &str,
    msg: &str,
    retry: Option<Retry<'_>>,
    status: StatusCode,
) -> Result<Response, AppError> {
    render(
        ctx,
        code,
        flash("err", "notifications-error", msg),
        retry,
        status,
    )
    .await
}

/// What the redirect after a subscribe or unsubscribe says.
fn done_flash(ctx: &Ctx, q: &DetailQ) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    let cron = q.cron.as_deref().unwrap_or_default();
    let text = match q.notifications.as_deref() {
        Some("subscribed") => match ctx.lang {
            Lang::Ja => format!(
                "Amazonの通知（ORDER_CHANGE、FEED_PROCESSING_FINISHED）を登録しました。ステータス同期はスイープとして「{cron}」で実行し、出荷指示取得は新規注文だけを取得します。"
            ),
            Lang::En => format!(
                "Subscribed to Amazon's notifications (ORDER_CHANGE, FEED_PROCESSING_FINISHED). status-sync now runs on \"{cron}\" as the sweep, and order-ingest asks for new orders only."
            ),
        },
        Some("unsubscribed") => match ctx.lang {
            Lang::Ja if cron.is_empty() => "Amazonの通知の登録を解除しました。".to_owned(),
            Lang::Ja => format!(
                "Amazonの通知の登録を解除しました。ステータス同期の間隔を「{cron}」に戻しました。"
            ),
            Lang::En if cron.is_empty() => "Unsubscribed from Amazon's notifications.".to_owned(),
            Lang::En => format!(
                "Unsubscribed from Amazon's notifications. status-sync's cadence is \"{cron}\" again."
            ),
        },
        Some("unchanged") => t(
            "登録されている通知はありません（Amazonにもありません）。何も変更していません。",
            "No subscriptions (none recorded, none at Amazon); nothing changed.",
        )
        .to_owned(),
        _ => return html! {},
    };
    flash("ok", "notifications-flash", &text)
}
