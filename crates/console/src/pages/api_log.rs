//! APIログ: the API log with filters, Amazon's messages verbatim.

use std::fmt::Write as _;

use axum::{extract::Query, response::Html};
use serde::Deserialize;
use store::api_log::{self, Record};

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, options, table_open, time_s, url_enc},
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
    let mut body = format!(
        r#"<form class="filters" method="get" id="log-filters">{}{}<label>{}<select name="level">{}</select></label><label>{}<input name="order" value="{}"></label><label>SKU<input name="sku" value="{}"></label><label>{}<input name="code" value="{}"></label><button type="submit">{}</button></form>"#,
        ctx.shop_select(nz(&q.shop)),
        action_select(&ctx, nz(&q.action), true),
        e(ctx.t("レベル", "Level")),
        options(&levels, nz(&q.level), ctx.t("すべて", "All")),
        e(ctx.t("注文番号", "Order id")),
        e(nz(&q.order).unwrap_or("")),
        e(nz(&q.sku).unwrap_or("")),
        e(ctx.t("コード", "Code")),
        e(nz(&q.code).unwrap_or("")),
        e(ctx.t("絞り込み", "Filter")),
    );
    let _ = write!(
        body,
        r#"<p class="hint">{}</p>"#,
        e(ctx.t(
            "Amazonからのメッセージは原文のまま表示しています（最新300件）。",
            "Amazon's messages are shown verbatim (latest 300 entries)."
        ))
    );
    body.push_str(&log_table(&ctx, &rows));
    Ok(ctx.page(ctx.t("APIログ", "API log"), &body))
}

/// The API log as a table: messages verbatim, details folded (this page, the attention list and
/// an instruction's detail).
pub fn log_table(ctx: &Ctx, rows: &[Record]) -> String {
    let t = |ja, en| ctx.t(ja, en);
    let mut h = table_open(
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
    );
    for r in rows {
        let details = r
            .details
            .as_ref()
            .filter(|d| !d.is_null())
            .map(|d| {
                format!(
                    r#"<details><summary>{}</summary><pre class="msg">{}</pre></details>"#,
                    e(t("詳細", "Details")),
                    e(serde_json::to_string_pretty(d).unwrap_or_default())
                )
            })
            .unwrap_or_default();
        let order = match &r.amazon_order_id {
            Some(o) => format!(
                r#"<a href="/instructions?order={}">{}</a>"#,
                url_enc(o),
                e(o)
            ),
            None => "—".to_owned(),
        };
        let _ = write!(
            h,
            r#"<tr id="log-{id}"><td>{time}</td><td>{shop}</td><td>{action}</td><td>{level}</td><td>{order}</td><td>{sku}</td><td>{code}</td><td><pre class="msg">{msg}</pre>{details}</td></tr>"#,
            id = r.id,
            time = time_s(r.created_at, ctx.state.tz),
            shop = e(ctx.op.code_of(r.shop_id)),
            action = e(ctx.lang.action_str(&r.action)),
            level = badge(&r.level, &ctx.lang.level(&r.level)),
            sku = opt(r.sku.as_deref()),
            code = opt(r.code.as_deref()),
            msg = e(&r.message),
        );
    }
    h.push_str("</tbody></table>");
    h
}
