//! APIログ: the API log with filters, Amazon's messages verbatim.

use axum::{extract::Query, response::Html};
use maud::{Markup, html};
use serde::Deserialize;
use store::api_log::{self, Record};

use crate::{
    AppError, Ctx,
    html::{Col, badge, opt, options, pre_msg, table, time_s, url_enc},
    nz,
    pages::action_select,
};

/// Entries the page lists.
const LIMIT: i64 = 300;

#[derive(Deserialize)]
pub struct LogQ {
    shop: Option<String>,
    action: Option<String>,
    level: Option<String>,
    order: Option<String>,
    sku: Option<String>,
    code: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<LogQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let owned = |v: &Option<String>| nz(v).map(str::to_owned);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = api_log::query(
        &mut conn,
        &api_log::Filter {
            shop_ids: Some(shops),
            action: owned(&q.action),
            level: owned(&q.level),
            amazon_order_id: owned(&q.order),
            sku: owned(&q.sku),
            code: owned(&q.code),
            limit: LIMIT,
            ..Default::default()
        },
    )
    .await?;
    let levels: Vec<(String, String)> = ["info", "warning", "error", "attention"]
        .iter()
        .map(|s| (s.to_string(), ctx.lang.level(s)))
        .collect();
    let body = html! {
        form class="filters" method="get" id="log-filters" {
            (ctx.shop_select(nz(&q.shop)))
            (action_select(&ctx, nz(&q.action), true))
            label {
                (ctx.t("レベル", "Level"))
                select name="level" { (options(&levels, nz(&q.level), Some(ctx.t("すべて", "All")))) }
            }
            label { (ctx.t("注文番号", "Order id")) input name="order" value=(nz(&q.order).unwrap_or("")); }
            label { "SKU" input name="sku" value=(nz(&q.sku).unwrap_or("")); }
            label { (ctx.t("コード", "Code")) input name="code" value=(nz(&q.code).unwrap_or("")); }
            button type="submit" { (ctx.t("絞り込み", "Filter")) }
        }
        p class="hint" {
            (ctx.t(
                "Amazonからのメッセージは原文のまま表示しています（最新300件）。",
                "Amazon's messages are shown verbatim (latest 300 entries)."
            ))
        }
        (log_table(&ctx, &rows))
    };
    Ok(ctx.page(ctx.t("APIログ", "API log"), body))
}

/// The API log as a table: messages verbatim, details folded (this page, the attention list and
/// an instruction's detail).
pub fn log_table(ctx: &Ctx, rows: &[Record]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    let body = html! {
        @for r in rows {
            tr id={ "log-" (r.id) } {
                td { (time_s(r.created_at, ctx.state.tz)) }
                td { (ctx.op.code_of(r.shop_id)) }
                td { (ctx.lang.action_str(&r.action)) }
                td { (badge(&r.level, &ctx.lang.level(&r.level))) }
                td {
                    @match &r.amazon_order_id {
                        Some(o) => a href={ "/instructions?order=" (url_enc(o)) } { (o) },
                        None => "—",
                    }
                }
                td { (opt(r.sku.as_deref())) }
                td { (opt(r.code.as_deref())) }
                td {
                    (pre_msg(&r.message))
                    @if let Some(d) = r.details.as_ref().filter(|d| !d.is_null()) {
                        details {
                            summary { (t("詳細", "Details")) }
                            (pre_msg(&serde_json::to_string_pretty(d).unwrap_or_default()))
                        }
                    }
                }
            }
        }
    };
    table(
        Some("api-log"),
        &[
            Col::text(t("日時", "Time")),
            Col::text(t("ショップ", "Shop")),
            Col::text(t("アクション", "Action")),
            Col::text(t("レベル", "Level")),
            Col::text(t("注文番号", "Order id")),
            Col::text("SKU"),
            Col::text(t("コード", "Code")),
            Col::text(t("メッセージ", "Message")),
        ],
        rows.is_empty()
            .then(|| t("該当するログはありません", "No entries match")),
        body,
    )
}
