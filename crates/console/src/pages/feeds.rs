//! フィード: submissions with their per-message counts, and one feed with Amazon's result for
//! every message.

use std::fmt::Write as _;

use axum::{
    extract::{Path, Query},
    response::Html,
};
use serde::Deserialize;
use store::StoreError;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, options, table_open, time, time_opt},
    nz,
};

/// Feeds the list shows.
const LIMIT: i64 = 200;

#[derive(Deserialize)]
pub struct FeedsQ {
    shop: Option<String>,
    state: Option<String>,
}

pub async fn list(ctx: Ctx, Query(q): Query<FeedsQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::feeds::list(&mut conn, &shops, nz(&q.state), LIMIT).await?;
    let states: Vec<(String, String)> = [
        "pending",
        "in_flight",
        "submitted",
        "done",
        "fatal",
        "cancelled",
        "failed",
    ]
    .iter()
    .map(|s| (s.to_string(), ctx.lang.feed_state(s)))
    .collect();
    let mut body = format!(
        r#"<form class="filters" method="get">{}<label>{}<select name="state">{}</select></label><button type="submit">{}</button></form>"#,
        ctx.shop_select(nz(&q.shop)),
        e(t("状態", "State")),
        options(&states, nz(&q.state), t("すべて", "All")),
        e(t("絞り込み", "Filter")),
    );
    body.push_str(&table_open(
        Some("feeds"),
        &[
            Col::text(t("作成", "Created")),
            Col::text(t("ショップ", "Shop")),
            Col::text(t("フィード種別", "Feed type")),
            Col::text(t("状態", "State")),
            Col::text(t("AmazonフィードID", "Amazon feed id")),
            Col::num(t("メッセージ", "Messages")),
            Col::num(t("成功", "Success")),
            Col::num(t("警告", "Warning")),
            Col::num(t("エラー", "Error")),
            Col::text(t("エラー内容", "Error")),
        ],
        rows.is_empty()
            .then(|| t("フィードはありません", "No feeds")),
    ));
    for r in rows {
        let state = format!(
            "{}{}",
            badge(&r.state, &ctx.lang.feed_state(&r.state)),
            r.processing_status
                .as_deref()
                .map(|p| format!(r#" <span class="hint">{}</span>"#, e(p)))
                .unwrap_or_default()
        );
        let _ = write!(
            body,
            r#"<tr><td><a href="/feeds/{id}">{created}</a></td><td>{shop}</td><td>{ft}</td><td>{state}</td><td>{afid}</td><td class="num">{total}</td><td class="num">{ok}</td><td class="num">{warn}</td><td class="num">{err}</td><td>{error}</td></tr>"#,
            id = r.id,
            created = time(r.created_at, ctx.state.tz),
            shop = e(ctx.op.code_of(Some(r.shop_id))),
            ft = e(&r.feed_type),
            afid = opt(r.amazon_feed_id.as_deref()),
            total = r.total,
            ok = r.ok,
            warn = r.warn,
            err = r.err,
            error = r
                .error
                .as_deref()
                .map(|m| format!(r#"<pre class="msg">{}</pre>"#, e(m)))
                .unwrap_or_default(),
        );
    }
    body.push_str("</tbody></table>");
    Ok(ctx.page(t("フィード", "Feeds"), &body))
}

pub async fn detail(ctx: Ctx, Path(id): Path<Uuid>) -> Result<Html<String>, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let mut conn = ctx.state.pool.acquire().await?;
    let f = match store::feeds::get(&mut conn, id).await {
        Ok(f) if ctx.op.shop_by_id(f.shop_id).is_some() => f,
        Ok(_) | Err(StoreError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(err) => return Err(err.into()),
    };
    let times = format!(
        "{} / {} / {}",
        time(f.created_at, tz),
        time_opt(f.submitted_at, tz),
        time_opt(f.finished_at, tz)
    );
    let mut body = format!(
        r#"<dl class="kv"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>"#,
        e(t("ショップ", "Shop")),
        e(ctx.op.code_of(Some(f.shop_id))),
        e(t("フィード種別", "Feed type")),
        e(&f.feed_type),
        e(t("状態", "State")),
        badge(&f.state, &ctx.lang.feed_state(&f.state)),
        e(t("処理ステータス", "Processing status")),
        opt(f.processing_status.as_deref()),
        e(t("AmazonフィードID", "Amazon feed id")),
        opt(f.amazon_feed_id.as_deref()),
        e(t("マーケットプレイス", "Marketplaces")),
        e(f.marketplace_ids.join(", ")),
        e(t("作成 / 送信 / 完了", "Created / submitted / finished")),
        times,
        e(t("確認回数", "Polls")),
        f.poll_attempts,
        e(t("エラー", "Error")),
        f.error
            .as_deref()
            .map(|m| format!(r#"<pre class="msg">{}</pre>"#, e(m)))
            .unwrap_or_else(|| "—".to_owned()),
    );
    let msgs = store::read::feeds::messages(&mut conn, id).await?;
    let _ = write!(
        body,
        r#"<h2>{}</h2><table id="feed-messages"><thead><tr><th class="num">MessageID</th><th>{}</th><th>SKU</th><th class="num">{}</th><th class="num">{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("メッセージ別の結果", "Results per message")),
        e(t("注文番号", "Order id")),
        e(t("数量", "Quantity")),
        e(t("出荷作業日数", "Handling days")),
        e(t("結果", "Result")),
        e(t("コード", "Code")),
        e(t("Amazonのメッセージ", "Amazon's message")),
    );
    for m in msgs {
        let order = match (&m.amazon_order_id, m.instruction_id) {
            (Some(o), Some(iid)) => format!(r#"<a href="/instructions/{iid}">{}</a>"#, e(o)),
            (Some(o), None) => e(o).to_string(),
            _ => "—".to_owned(),
        };
        let _ = write!(
            body,
            r#"<tr><td class="num">{}</td><td>{order}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td><pre class="msg">{}</pre></td></tr>"#,
            m.message_id,
            opt(m.sku.as_deref()),
            opt(m.quantity),
            opt(m.handling_days),
            badge(&m.result, &ctx.lang.feed_state(&m.result)),
            opt(m.result_code.as_deref()),
            opt(m.result_message.as_deref()),
        );
    }
    body.push_str("</tbody></table>");
    Ok(ctx.page(&format!("{} {}", t("フィード", "Feed"), f.feed_type), &body))
}
