//! 要対応: what an operator has to act on, each section with what to do.

use std::fmt::Write as _;

use axum::{
    Form,
    extract::{Path, Query},
    response::{Html, Redirect},
};
use chrono::Utc;
use chrono_tz::Tz;
use domain::feed_stuck;
use serde::Deserialize;
use store::read::attention;
use store::resend::Resend;
use store::shipments::LateShipment;
use uuid::Uuid;

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

/// The outcome of a resend asked for on this page (after the redirect).
#[derive(Deserialize)]
pub struct Q {
    resent: Option<String>,
    result: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Html<String>, AppError> {
    let shops = ctx.op.shop_ids();
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let mut body = resend_flash(&ctx, &q);
    let zones = |id: Uuid| {
        ctx.op
            .shop_by_id(id)
            .and_then(|s| s.time_zone.parse::<Tz>().ok())
            .unwrap_or(ctx.state.tz)
    };
    late(
        &ctx,
        &mut body,
        &store::shipments::late(&mut conn, &shops, zones, Utc::now()).await?,
    );
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

#[derive(Deserialize)]
pub struct ResendForm {
    csrf: String,
}

/// 再送: an operator asks to send a late (or refused) shipment again. Recorded with the
/// operator's name on the instruction and in the API log (`store::resend::ask`); the next
/// shipment-feedback run sends it.
pub async fn resend(
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(f): Form<ResendForm>,
) -> Result<Redirect, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let mut conn = ctx.state.pool.acquire().await?;
    let row = match store::instructions::get(&mut conn, id).await {
        Ok(r) if ctx.op.shop_by_id(r.shop_id).is_some() => r,
        Ok(_) | Err(store::StoreError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(err) => return Err(err.into()),
    };
    let order = row.amazon_order_id.ok_or(AppError::NotFound)?;
    let outcome = store::resend::ask(&mut conn, row.shop_id, &order, &ctx.op.username).await?;
    let result = match outcome {
        Resend::Requested => "requested",
        Resend::Unknown => return Err(AppError::NotFound),
        Resend::NotShipped(_) => "not_shipped",
        Resend::Pending => "pending",
        Resend::Confirmed => "confirmed",
    };
    tracing::info!(instruction_id = %id, operator = %ctx.op.username, result, "resend asked in the console");
    Ok(Redirect::to(&format!(
        "/attention?resent={}&result={result}#late-shipments",
        url_enc(&order)
    )))
}

fn resend_flash(ctx: &Ctx, q: &Q) -> String {
    let (Some(order), Some(result)) = (q.resent.as_deref(), q.result.as_deref()) else {
        return String::new();
    };
    let t = |ja, en| ctx.t(ja, en);
    let (class, text) = match result {
        "requested" => (
            "ok",
            t(
                "再送を依頼しました。次回の出荷実績戻しで送信されます:",
                "Resend requested; the next shipment-result run sends it:",
            ),
        ),
        "pending" => (
            "error",
            t(
                "送信済みでAmazonの結果待ち（印刷済み）のため再送できません:",
                "Already sent and awaiting Amazon's result (printed); not resent:",
            ),
        ),
        "confirmed" => (
            "error",
            t(
                "Amazonで確認済み（出荷済み）のため再送できません:",
                "Already confirmed by Amazon (shipped); not resent:",
            ),
        ),
        _ => (
            "error",
            t(
                "まだ出荷されていないため再送できません:",
                "Not shipped yet; nothing to resend:",
            ),
        ),
    };
    format!(
        r#"<p class="flash {class}" id="resend-flash">{} <code>{}</code></p>"#,
        e(text),
        e(order)
    )
}

fn late(ctx: &Ctx, body: &mut String, rows: &[LateShipment]) {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        body,
        "late-shipments",
        t(
            "出荷日を過ぎても未送信の出荷（印刷待ち）",
            "Shipments that missed their day (awaiting print)",
        ),
        t(
            "出荷実績戻しは出荷日当日の出荷だけを自動で送ります。この出荷はその日の実行に間に合わず、Amazonには未出荷のままです（出荷遅延）。追跡番号を確認して「再送」を押してください。次回の出荷実績戻しで送信されます。",
            "Shipment-result return sends only the day's shipments automatically. These missed their day's runs and Amazon still sees them as unshipped (late shipment). Check the tracking number and press Resend; the next shipment-result run sends them.",
        ),
        &table_open(
            Some("attention-late"),
            &[
                Col::text(t("ショップ", "Shop")),
                Col::text(t("注文番号", "Order")),
                Col::text(t("出荷日", "Shipped on")),
                Col::text(t("追跡番号", "Tracking number")),
                Col::text(""),
            ],
            None,
        ),
        rows,
        |r| {
            format!(
                r#"<tr><td>{}</td><td><a href="/instructions/{}">{}</a></td><td>{}</td><td>{}</td><td><form method="post" action="/shipments/{}/resend"><input type="hidden" name="csrf" value="{}"><button type="submit" class="resend">{}</button></form></td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                r.id,
                e(&r.amazon_order_id),
                r.shipped_on,
                e(&r.tracking_number),
                r.id,
                e(&ctx.op.csrf),
                e(t("再送", "Resend"))
            )
        },
    );
}
