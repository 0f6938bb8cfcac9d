//! 要対応: what an operator has to act on, each section with what to do.

use std::fmt::Write as _;

use axum::response::Html;
use chrono::Utc;
use domain::feed_stuck;
use store::read::attention;

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, table_open, time, url_enc},
    pages::api_log::log_table,
};

/// A section heading with its count, then what to do (or "nothing to do") and, when there is
/// anything, a table: `table_start` (up to and including `<tbody>`), one `row` per entry.
#[allow(clippy::too_many_arguments)]
fn section<T>(
    ctx: &Ctx,
    body: &mut String,
    id: &str,
    title: &str,
    todo: &str,
    table_start: &str,
    rows: &[T],
    row: impl Fn(&T) -> String,
) {
    let n = rows.len();
    let _ = write!(
        body,
        r#"<h2 id="{}">{} <span class="badge b-{}">{n}</span></h2>"#,
        e(id),
        e(title),
        if n > 0 { "attention" } else { "ok" },
    );
    if n == 0 {
        let _ = write!(
            body,
            r#"<p class="hint">{}</p>"#,
            e(ctx.t("該当なし", "Nothing to do"))
        );
        return;
    }
    let _ = write!(
        body,
        r#"<div class="todo"><b>{}</b> {}</div>"#,
        e(ctx.t("対応方法:", "What to do:")),
        e(todo)
    );
    body.push_str(table_start);
    for r in rows {
        body.push_str(&row(r));
    }
    body.push_str("</tbody></table>");
}

pub async fn page(ctx: Ctx) -> Result<Html<String>, AppError> {
    let shops = ctx.op.shop_ids();
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let mut body = String::new();
    reauth(
        &ctx,
        &mut body,
        &attention::shops_needing_reauthorization(&mut conn, &shops).await?,
    );
    unmapped(
        &ctx,
        &mut body,
        &attention::unmapped_skus(&mut conn, &shops).await?,
    );
    cancels(
        &ctx,
        &mut body,
        &attention::canceled_after_allocation(&mut conn, &shops).await?,
    );
    failed(
        &ctx,
        &mut body,
        &attention::failed_shipments(&mut conn, &shops).await?,
    );
    stuck(
        &ctx,
        &mut body,
        &attention::stuck_feeds(&mut conn, &shops, Utc::now()).await?,
    );

    // Other attention entries of the last 7 days.
    let others = attention::other_entries(&mut conn, &shops).await?;
    let _ = write!(
        body,
        "<h2>{} <span class=\"badge b-neutral\">{}</span></h2>",
        e(t(
            "その他の要対応ログ（7日間）",
            "Other attention entries (7 days)"
        )),
        others.len()
    );
    body.push_str(&log_table(&ctx, &others));
    Ok(ctx.page(t("要対応", "Attention"), &body))
}

fn reauth(ctx: &Ctx, body: &mut String, rows: &[attention::ReauthShop]) {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        body,
        "reauth",
        t("再認可が必要なショップ", "Shops needing re-authorization"),
        t(
            "Amazonがリフレッシュトークンを拒否しています。セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを ctl shop reauthorize で登録してください。登録までこのショップの連携は止まります。",
            "Amazon refuses the refresh token. Re-authorize the app in Seller Central and store the new token with `ctl shop reauthorize`; every action of this shop stops until then.",
        ),
        "<table><tbody>",
        rows,
        |r| {
            format!(
                r#"<tr><td><a href="/shops/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                url_enc(&r.code),
                e(&r.code),
                e(&r.name),
                opt(r.auth_error.as_deref()),
                time(r.updated_at, ctx.state.tz)
            )
        },
    );
}

fn unmapped(ctx: &Ctx, body: &mut String, rows: &[attention::UnmappedSku]) {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        body,
        "unmapped",
        t(
            "未対応SKU（対応表にないSKU）",
            "Unmapped SKUs (not in the mapping table)",
        ),
        t(
            "外部商品 > 対応表 にSKUと商品を登録してください（ctl external-product map）。登録するまで在庫は確保されず、在庫連携もされません。",
            "Add the SKU to the external-product mapping table (ctl external-product map). Until then no stock is reserved for it and inventory sync skips it.",
        ),
        &table_open(
            Some("attention-unmapped"),
            &[
                Col::text(t("ショップ", "Shop")),
                Col::text("SKU"),
                Col::num(t("出荷指示数", "Instructions")),
                Col::num(t("数量", "Quantity")),
                Col::text(t("例", "Example order")),
            ],
            None,
        ),
        rows,
        |r| {
            format!(
                r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                e(&r.sku),
                r.orders,
                r.qty,
                opt(r.latest_order.as_deref())
            )
        },
    );
}

fn cancels(ctx: &Ctx, body: &mut String, rows: &[attention::CanceledAfterAllocation]) {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        body,
        "cancel-allocated",
        t(
            "引当済み・出荷済みの注文がAmazonでキャンセル",
            "Orders canceled on Amazon after allocation",
        ),
        t(
            "引当済みのため自動ではキャンセルしていません。出荷を止められる場合は倉庫で出荷を止めて出荷指示をキャンセルし、出荷済みの場合は返品・返金をセラーセントラルで処理してください。",
            "Not canceled automatically because stock was allocated. Stop the parcel in the warehouse if you can and cancel the instruction; if it already left, handle return and refund in Seller Central.",
        ),
        r#"<table id="attention-cancels"><tbody>"#,
        rows,
        |r| {
            format!(
                r#"<tr><td>{}</td><td><a href="/instructions/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                e(ctx.op.code_of(r.shop_id)),
                r.instruction_id,
                e(&r.order),
                badge(&r.status, &r.status),
                e(&r.message),
                time(r.created_at, ctx.state.tz)
            )
        },
    );
}

fn failed(ctx: &Ctx, body: &mut String, rows: &[attention::FailedShipment]) {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        body,
        "failed-shipments",
        t("出荷実績戻しの失敗", "Failed shipment results"),
        t(
            "Amazonのメッセージを確認し、問番・配送方法（外部連携先配送方法）を直してから再送してください（ctl shipping resend-shipment）。",
            "Read Amazon's message, fix the tracking number or delivery method (external delivery method), then send it again (ctl shipping resend-shipment).",
        ),
        r#"<table id="attention-failed"><tbody>"#,
        rows,
        |r| {
            format!(
                r#"<tr><td>{}</td><td><a href="/instructions/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                r.id,
                opt(r.amazon_order_id.as_deref()),
                e(r.tracking_numbers.join(", ")),
                opt(r.api_error.as_deref()),
                time(r.updated_at, ctx.state.tz)
            )
        },
    );
}

fn stuck(ctx: &Ctx, body: &mut String, rows: &[attention::StuckFeed]) {
    let t = |ja, en| ctx.t(ja, en);
    let hours = feed_stuck::stuck_after_hours();
    let title = match ctx.lang {
        crate::i18n::Lang::Ja => format!("結果が返らないフィード（送信から{hours}時間以上）"),
        crate::i18n::Lang::En => format!("Stuck feeds (no result {hours} hours after submission)"),
    };
    section(
        ctx,
        body,
        "stuck-feeds",
        &title,
        t(
            "フィード送信結果取得を実行してください。それでも終わらない場合はセラーセントラルのフィード状況を確認し、必要なら出荷実績戻し・在庫連携をやり直してください。",
            "Run feed-result retrieval. If it still does not finish, check the feed in Seller Central and, if needed, run shipment-result return or inventory sync again.",
        ),
        r#"<table id="attention-stuck"><tbody>"#,
        rows,
        |r| {
            format!(
                r#"<tr><td>{}</td><td><a href="/feeds/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                r.id,
                e(&r.feed_type),
                badge(&r.state, &ctx.lang.feed_state(&r.state)),
                opt(r.amazon_feed_id.as_deref()),
                time(
                    feed_stuck::stuck_since(r.created_at, r.submitted_at),
                    ctx.state.tz
                ),
                r.poll_attempts
            )
        },
    );
}
