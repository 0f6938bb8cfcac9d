//! ショップ: the operator's shops (authorization state, what to do when Amazon refuses the
//! token) and one shop with its recent runs.

use axum::{extract::Path, response::Html};
use maud::{Markup, html};
use store::read::runs::RunFilter;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, opt, table, time, time_opt, url_enc},
    pages::runs::runs_table,
};

/// Runs shown on a shop's page.
const RECENT_RUNS: i64 = 20;

pub async fn list(ctx: Ctx) -> Result<Html<String>, AppError> {
    let body = shops_table(&ctx, &ctx.op.shop_ids()).await?;
    Ok(ctx.page(ctx.t("ショップ", "Shops"), body))
}

pub async fn detail(ctx: Ctx, Path(code): Path<String>) -> Result<Html<String>, AppError> {
    let ids = ctx.scope(Some(&code))?;
    let shops = shops_table(&ctx, &ids).await?;
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
        [id] => Some(notifications(&ctx, &mut conn, *id, &code).await?),
        _ => None,
    };
    let q = url_enc(&code);
    let body = html! {
        (shops)
        @if let Some(n) = notifications { (n) }
        h2 { (ctx.t("最近の実行", "Recent runs")) }
        (runs_table(&ctx, &runs))
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
    Ok(ctx.page(&format!("{} {code}", ctx.t("ショップ", "Shop")), body))
}

/// Amazon's notifications for one shop: its subscriptions, the last notification received and
/// the last 24 hours by outcome (what `ctl notifications status` prints), and how to subscribe.
async fn notifications(
    ctx: &Ctx,
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    code: &str,
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
        p class="todo" {
            @if subs.is_empty() {
                (t("登録：", "Subscribe: "))
                code { "ctl notifications subscribe " (code) " --sqs-arn ARN" }
            } @else {
                (t(
                    "通知が届かない変更はステータス同期の定期確認（スイープ）が反映し、要対応に notifications_missed として表示します。登録解除：",
                    "Changes no notification announces are applied by status-sync's sweep and listed under Attention (notifications_missed). Unsubscribe: "
                ))
                code { "ctl notifications unsubscribe " (code) }
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
