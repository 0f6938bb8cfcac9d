//! ショップ: the operator's shops (authorization state, what to do when Amazon refuses the
//! token) and one shop with its recent runs.

use std::fmt::Write as _;

use axum::{extract::Path, response::Html};
use store::read::runs::RunFilter;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, table_open, time_opt, url_enc},
    pages::runs::runs_table,
};

/// Runs shown on a shop's page.
const RECENT_RUNS: i64 = 20;

pub async fn list(ctx: Ctx) -> Result<Html<String>, AppError> {
    let body = shops_table(&ctx, &ctx.op.shop_ids()).await?;
    Ok(ctx.page(ctx.t("ショップ", "Shops"), &body))
}

pub async fn detail(ctx: Ctx, Path(code): Path<String>) -> Result<Html<String>, AppError> {
    let ids = ctx.scope(Some(&code))?;
    let mut body = shops_table(&ctx, &ids).await?;
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
    let _ = write!(body, "<h2>{}</h2>", e(ctx.t("最近の実行", "Recent runs")));
    body.push_str(&runs_table(&ctx, &runs));
    let _ = write!(
        body,
        r#"<p><a class="button" href="/actions?shop={0}">{1}</a> <a href="/schedules?shop={0}">{4}</a> · <a href="/instructions?shop={0}">{2}</a> · <a href="/api-log?shop={0}">{3}</a></p>"#,
        url_enc(&code),
        e(ctx.t("アクション実行", "Actions")),
        e(ctx.t("タスク一覧", "Shipping instructions")),
        e(ctx.t("APIログ", "API log")),
        e(ctx.t("自動実行", "Schedules")),
    );
    Ok(ctx.page(&format!("{} {code}", ctx.t("ショップ", "Shop")), &body))
}

async fn shops_table(ctx: &Ctx, ids: &[Uuid]) -> Result<String, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::shops::overview(&mut conn, ids).await?;
    let mut h = table_open(
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
    );
    for r in rows {
        let auth = if r.auth_status == "needs_reauthorization" {
            format!(
                r#"{}<div class="msg">{}</div><div class="todo">{}</div>"#,
                badge(&r.auth_status, &ctx.lang.auth_status(&r.auth_status)),
                opt(r.auth_error.as_deref()),
                e(t(
                    "セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを登録してください（ctl shop reauthorize）。",
                    "Re-authorize the app in Seller Central and store the new refresh token (ctl shop reauthorize)."
                ))
            )
        } else {
            badge(&r.auth_status, &ctx.lang.auth_status(&r.auth_status))
        };
        let inactive = if r.active {
            String::new()
        } else {
            format!(" {}", badge("neutral", t("停止中", "inactive")))
        };
        let _ = write!(
            h,
            r#"<tr><td><a href="/shops/{code_u}">{code}</a>{inactive}</td><td>{name}</td><td>{seller}</td><td>{mps}</td><td>{tz}</td><td>{strategy}</td><td>{auth}</td><td>{last}</td></tr>"#,
            code_u = url_enc(&r.code),
            code = e(&r.code),
            name = e(&r.name),
            seller = e(&r.seller_id),
            mps = e(r.marketplaces.join(", ")),
            tz = e(&r.time_zone),
            strategy = e(match r.shipment_strategy.as_str() {
                "feed" => t(
                    "フィード（POST_ORDER_FULFILLMENT_DATA）",
                    "Feed (POST_ORDER_FULFILLMENT_DATA)"
                ),
                "confirm_shipment" => "confirmShipment",
                other => other,
            }),
            last = time_opt(r.last_ok, ctx.state.tz),
        );
    }
    h.push_str("</tbody></table>");
    Ok(h)
}
