//! フィード: submissions with their per-message counts, and one feed with Amazon's result for
//! every message.

use axum::{
    extract::{Path, Query},
    response::Html,
};
use maud::html;
use serde::Deserialize;
use store::StoreError;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, opt, options, pre_msg, table, time, time_opt},
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
    let rows_html = html! {
        @for r in &rows {
            tr {
                td { a href={ "/feeds/" (r.id) } { (time(r.created_at, ctx.state.tz)) } }
                td { (ctx.op.code_of(Some(r.shop_id))) }
                td { (r.feed_type) }
                td {
                    (badge(&r.state, &ctx.lang.feed_state(&r.state)))
                    @if let Some(p) = &r.processing_status {
                        " " span class="hint" { (p) }
                    }
                }
                td { (opt(r.amazon_feed_id.as_deref())) }
                td class="num" { (r.total) }
                td class="num" { (r.ok) }
                td class="num" { (r.warn) }
                td class="num" { (r.err) }
                td {
                    @if let Some(m) = &r.error {
                        (pre_msg(m))
                    }
                }
            }
        }
    };
    let body = html! {
        form class="filters" method="get" {
            (ctx.shop_select(nz(&q.shop)))
            label {
                (t("状態", "State"))
                select name="state" { (options(&states, nz(&q.state), Some(t("すべて", "All")))) }
            }
            button type="submit" { (t("絞り込み", "Filter")) }
        }
        (table(
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
            rows_html,
        ))
    };
    Ok(ctx.page(t("フィード", "Feeds"), body))
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
    let msgs = store::read::feeds::messages(&mut conn, id).await?;
    let body = html! {
        dl class="kv" {
            dt { (t("ショップ", "Shop")) } dd { (ctx.op.code_of(Some(f.shop_id))) }
            dt { (t("フィード種別", "Feed type")) } dd { (f.feed_type) }
            dt { (t("状態", "State")) } dd { (badge(&f.state, &ctx.lang.feed_state(&f.state))) }
            dt { (t("処理ステータス", "Processing status")) } dd { (opt(f.processing_status.as_deref())) }
            dt { (t("AmazonフィードID", "Amazon feed id")) } dd { (opt(f.amazon_feed_id.as_deref())) }
            dt { (t("マーケットプレイス", "Marketplaces")) } dd { (f.marketplace_ids.join(", ")) }
            dt { (t("作成 / 送信 / 完了", "Created / submitted / finished")) } dd { (times) }
            dt { (t("確認回数", "Polls")) } dd { (f.poll_attempts) }
            dt { (t("エラー", "Error")) }
            dd {
                @match &f.error {
                    Some(m) => (pre_msg(m)),
                    None => "—",
                }
            }
        }
        h2 { (t("メッセージ別の結果", "Results per message")) }
        table id="feed-messages" {
            thead {
                tr {
                    th class="num" { "MessageID" }
                    th { (t("注文番号", "Order id")) }
                    th { "SKU" }
                    th class="num" { (t("数量", "Quantity")) }
                    th class="num" { (t("出荷作業日数", "Handling days")) }
                    th { (t("結果", "Result")) }
                    th { (t("コード", "Code")) }
                    th { (t("Amazonのメッセージ", "Amazon's message")) }
                }
            }
            tbody {
                @for m in &msgs {
                    tr {
                        td class="num" { (m.message_id) }
                        td {
                            @match (&m.amazon_order_id, m.instruction_id) {
                                (Some(o), Some(iid)) => a href={ "/instructions/" (iid) } { (o) },
                                (Some(o), None) => (o),
                                _ => "—",
                            }
                        }
                        td { (opt(m.sku.as_deref())) }
                        td class="num" { (opt(m.quantity)) }
                        td class="num" { (opt(m.handling_days)) }
                        td { (badge(&m.result, &ctx.lang.feed_state(&m.result))) }
                        td { (opt(m.result_code.as_deref())) }
                        td { pre class="msg" { (opt(m.result_message.as_deref())) } }
                    }
                }
            }
        }
    };
    Ok(ctx.page(&format!("{} {}", t("フィード", "Feed"), f.feed_type), body))
}
