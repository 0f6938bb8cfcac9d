//! 要対応: what an operator has to act on, each section with what to do.

use axum::{
    Form,
    extract::{Path, Query},
    response::{Html, Redirect},
};
use chrono::Utc;
use chrono_tz::Tz;
use domain::feed_stuck;
use maud::{Markup, html};
use serde::Deserialize;
use store::read::attention;
use store::resend::Resend;
use store::shipments::LateShipment;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, opt, pre_msg, table, time, url_enc},
    pages::api_log::log_table,
};

/// A section heading with its count, then what to do (or "nothing to do") and, when there is
/// anything, a table (`table_id`, header `cols` when there are any) with one `row` per entry.
#[allow(clippy::too_many_arguments)]
fn section<T>(
    ctx: &Ctx,
    id: &str,
    title: &str,
    todo: &str,
    table_id: Option<&str>,
    cols: &[Col<'_>],
    rows: &[T],
    row: impl Fn(&T) -> Markup,
) -> Markup {
    let n = rows.len();
    let trs = html! {
        @for r in rows {
            (row(r))
        }
    };
    html! {
        h2 id=(id) {
            (title) " "
            span class={ "badge b-" (if n > 0 { "attention" } else { "ok" }) } { (n) }
        }
        @if n == 0 {
            p class="hint" { (ctx.t("該当なし", "Nothing to do")) }
        } @else {
            div class="todo" { b { (ctx.t("対応方法:", "What to do:")) } " " (todo) }
            @if cols.is_empty() {
                table id=[table_id] { tbody { (trs) } }
            } @else {
                (table(table_id, cols, None, trs))
            }
        }
    }
}

/// The outcome of a resend asked for on this page (after the redirect).
#[derive(Deserialize)]
pub struct Q {
    resent: Option<String>,
    result: Option<String>,
    /// A buyer's cancellation request decided on this page: the order and `accepted` or
    /// `declined`.
    decided: Option<String>,
    decision: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Html<String>, AppError> {
    let shops = ctx.op.shop_ids();
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let zones = |id: Uuid| {
        ctx.op
            .shop_by_id(id)
            .and_then(|s| s.time_zone.parse::<Tz>().ok())
            .unwrap_or(ctx.state.tz)
    };
    let late = late(
        &ctx,
        &store::shipments::late(&mut conn, &shops, zones, Utc::now()).await?,
    );
    let reauth = reauth(
        &ctx,
        &attention::shops_needing_reauthorization(&mut conn, &shops).await?,
    );
    let unmapped = unmapped(&ctx, &attention::unmapped_skus(&mut conn, &shops).await?);
    let cancels = cancels(
        &ctx,
        &attention::canceled_after_allocation(&mut conn, &shops).await?,
    );
    let failed = failed(&ctx, &attention::failed_shipments(&mut conn, &shops).await?);
    let requests = cancel_requests(&ctx, &attention::cancel_requests(&mut conn, &shops).await?);
    let now = Utc::now();
    let until = now + chrono::Duration::hours(domain::ship_by::WARN_HOURS);
    let ship_by = ship_by(
        &ctx,
        &attention::ship_by_soon(&mut conn, &shops, until).await?,
        now,
    );
    let stuck = stuck(
        &ctx,
        &attention::stuck_feeds(&mut conn, &shops, Utc::now()).await?,
    );

    // Other attention entries of the last 7 days.
    let others = attention::other_entries(&mut conn, &shops).await?;
    let body = html! {
        (resend_flash(&ctx, &q))
        (decision_flash(&ctx, &q))
        (requests)
        (ship_by)
        (late)
        (reauth)
        (unmapped)
        (cancels)
        (failed)
        (stuck)
        h2 {
            (t("その他の要対応ログ（7日間）", "Other attention entries (7 days)"))
            " "
            span class="badge b-neutral" { (others.len()) }
        }
        (log_table(&ctx, &others))
    };
    Ok(ctx.page(t("要対応", "Attention"), body))
}

fn ship_by(ctx: &Ctx, rows: &[attention::ShipBySoon], now: chrono::DateTime<Utc>) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    let hours = domain::ship_by::WARN_HOURS;
    let title = match ctx.lang {
        crate::i18n::Lang::Ja => format!("出荷期限が近い出荷指示（{hours}時間以内・超過）"),
        crate::i18n::Lang::En => {
            format!("Instructions due to ship (within {hours} hours, or past)")
        }
    };
    section(
        ctx,
        "ship-by",
        &title,
        t(
            "出荷期限（Amazonの LatestShipDate）までに出荷し、出荷実績を戻してください。超過するとAmazonは出荷遅延として数えます。",
            "Ship them and return the shipment before the ship-by time (Amazon's LatestShipDate); after it, Amazon counts them as shipped late.",
        ),
        Some("attention-ship-by"),
        &[
            Col::text(t("ショップ", "Shop")),
            Col::text(t("注文番号", "Order id")),
            Col::text(t("ステータス", "Status")),
            Col::text(t("出荷期限", "Ship by")),
        ],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { a href={ "/instructions/" (r.id) } { (r.amazon_order_id.as_deref().unwrap_or("—")) } }
                    td {
                        (ctx.lang.parsed_label(
                            &r.status,
                            domain::InstructionStatus::label_ja,
                            domain::InstructionStatus::label_en,
                        ))
                    }
                    td {
                        (time(r.latest_ship_at, ctx.state.tz))
                        @if domain::ship_by::missed(r.latest_ship_at, now) {
                            " " (badge("attention", t("超過", "passed")))
                        }
                    }
                }
            }
        },
    )
}

fn reauth(ctx: &Ctx, rows: &[attention::ReauthShop]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "reauth",
        t("再認可が必要なショップ", "Shops needing re-authorization"),
        t(
            "Amazonがリフレッシュトークンを拒否しています。セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを ctl shop reauthorize で登録してください。登録までこのショップの連携は止まります。",
            "Amazon refuses the refresh token. Re-authorize the app in Seller Central and store the new token with `ctl shop reauthorize`; every action of this shop stops until then.",
        ),
        None,
        &[],
        rows,
        |r| {
            html! {
                tr {
                    td { a href={ "/shops/" (url_enc(&r.code)) } { (r.code) } }
                    td { (r.name) }
                    td { pre class="msg" { (opt(r.auth_error.as_deref())) } }
                    td { (time(r.updated_at, ctx.state.tz)) }
                }
            }
        },
    )
}

fn unmapped(ctx: &Ctx, rows: &[attention::UnmappedSku]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "unmapped",
        t(
            "未対応SKU（対応表にないSKU）",
            "Unmapped SKUs (not in the mapping table)",
        ),
        t(
            "外部商品 > 対応表 にSKUと商品を登録してください（ctl external-product map）。登録するまで在庫は確保されず、在庫連携もされません。",
            "Add the SKU to the external-product mapping table (ctl external-product map). Until then no stock is reserved for it and inventory sync skips it.",
        ),
        Some("attention-unmapped"),
        &[
            Col::text(t("ショップ", "Shop")),
            Col::text("SKU"),
            Col::num(t("出荷指示数", "Instructions")),
            Col::num(t("数量", "Quantity")),
            Col::text(t("例", "Example order")),
        ],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { (r.sku) }
                    td class="num" { (r.orders) }
                    td class="num" { (r.qty) }
                    td { (opt(r.latest_order.as_deref())) }
                }
            }
        },
    )
}

fn cancels(ctx: &Ctx, rows: &[attention::CanceledAfterAllocation]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "cancel-allocated",
        t(
            "引当済み・出荷済みの注文がAmazonでキャンセル",
            "Orders canceled on Amazon after allocation",
        ),
        t(
            "引当済みのため自動ではキャンセルしていません。出荷を止められる場合は倉庫で出荷を止めて出荷指示をキャンセルし、出荷済みの場合は返品・返金をセラーセントラルで処理してください。",
            "Not canceled automatically because stock was allocated. Stop the parcel in the warehouse if you can and cancel the instruction; if it already left, handle return and refund in Seller Central.",
        ),
        Some("attention-cancels"),
        &[],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(r.shop_id)) }
                    td { a href={ "/instructions/" (r.instruction_id) } { (r.order) } }
                    td { (badge(&r.status, &r.status)) }
                    td { (pre_msg(&r.message)) }
                    td { (time(r.created_at, ctx.state.tz)) }
                }
            }
        },
    )
}

fn failed(ctx: &Ctx, rows: &[attention::FailedShipment]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "failed-shipments",
        t("出荷実績戻しの失敗", "Failed shipment results"),
        t(
            "Amazonのメッセージを確認し、問番・配送方法（外部連携先配送方法）を直してから再送してください（ctl shipping resend-shipment）。",
            "Read Amazon's message, fix the tracking number or delivery method (external delivery method), then send it again (ctl shipping resend-shipment).",
        ),
        Some("attention-failed"),
        &[],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { a href={ "/instructions/" (r.id) } { (opt(r.amazon_order_id.as_deref())) } }
                    td { (r.tracking_numbers.join(", ")) }
                    td { pre class="msg" { (opt(r.api_error.as_deref())) } }
                    td { (time(r.updated_at, ctx.state.tz)) }
                }
            }
        },
    )
}

fn stuck(ctx: &Ctx, rows: &[attention::StuckFeed]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    let hours = feed_stuck::stuck_after_hours();
    let title = match ctx.lang {
        crate::i18n::Lang::Ja => format!("結果が返らないフィード（送信から{hours}時間以上）"),
        crate::i18n::Lang::En => format!("Stuck feeds (no result {hours} hours after submission)"),
    };
    section(
        ctx,
        "stuck-feeds",
        &title,
        t(
            "フィード送信結果取得を実行してください。それでも終わらない場合はセラーセントラルのフィード状況を確認し、必要なら出荷実績戻し・在庫連携をやり直してください。",
            "Run feed-result retrieval. If it still does not finish, check the feed in Seller Central and, if needed, run shipment-result return or inventory sync again.",
        ),
        Some("attention-stuck"),
        &[],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { a href={ "/feeds/" (r.id) } { (r.feed_type) } }
                    td { (badge(&r.state, &ctx.lang.feed_state(&r.state))) }
                    td { (opt(r.amazon_feed_id.as_deref())) }
                    td { (time(feed_stuck::stuck_since(r.created_at, r.submitted_at), ctx.state.tz)) }
                    td class="num" { (r.poll_attempts) }
                }
            }
        },
    )
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

fn resend_flash(ctx: &Ctx, q: &Q) -> Markup {
    let (Some(order), Some(result)) = (q.resent.as_deref(), q.result.as_deref()) else {
        return html! {};
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
    html! {
        p class={ "flash " (class) } id="resend-flash" { (text) " " code { (order) } }
    }
}

fn late(ctx: &Ctx, rows: &[LateShipment]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "late-shipments",
        t(
            "出荷日を過ぎても未送信の出荷（印刷待ち）",
            "Shipments that missed their day (awaiting print)",
        ),
        t(
            "出荷実績戻しは出荷日当日の出荷だけを自動で送ります。この出荷はその日の実行に間に合わず、Amazonには未出荷のままです（出荷遅延）。追跡番号を確認して「再送」を押してください。次回の出荷実績戻しで送信されます。",
            "Shipment-result return sends only the day's shipments automatically. These missed their day's runs and Amazon still sees them as unshipped (late shipment). Check the tracking number and press Resend; the next shipment-result run sends them.",
        ),
        Some("attention-late"),
        &[
            Col::text(t("ショップ", "Shop")),
            Col::text(t("注文番号", "Order")),
            Col::text(t("出荷日", "Shipped on")),
            Col::text(t("追跡番号", "Tracking number")),
            Col::text(""),
        ],
        rows,
        |r| {
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { a href={ "/instructions/" (r.id) } { (r.amazon_order_id) } }
                    td { (r.shipped_on) }
                    td { (r.tracking_number) }
                    td {
                        form method="post" action={ "/shipments/" (r.id) "/resend" } {
                            input type="hidden" name="csrf" value=(ctx.op.csrf);
                            button type="submit" class="resend" { (t("再送", "Resend")) }
                        }
                    }
                }
            }
        },
    )
}

fn cancel_requests(ctx: &Ctx, rows: &[attention::CancelRequest]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    section(
        ctx,
        "cancel-requests",
        t("購入者からのキャンセル依頼", "Buyers asking to cancel"),
        t(
            "未引当の注文は保留にしています。引当済みの注文は倉庫で出荷を止めてください。「承諾」で出荷指示をキャンセルして在庫を戻し、次回の出荷実績戻しでAmazonに通知します（注文確認フィード、BuyerCanceled）。「拒否」で保留を解除し、通常どおり出荷します。",
            "Orders not allocated yet are on hold; stop the parcel of an allocated one in the warehouse. Accept cancels the instruction, releases its stock and tells Amazon at the next shipment-result run (order acknowledgement feed, BuyerCanceled). Decline releases the hold; the order ships as usual.",
        ),
        Some("attention-cancel-requests"),
        &[
            Col::text(t("ショップ", "Shop")),
            Col::text(t("注文番号", "Order")),
            Col::text(t("状態", "Status")),
            Col::text(t("理由", "Reason")),
            Col::text(t("依頼日時", "Asked at")),
            Col::text(""),
        ],
        rows,
        |r| {
            let label = r
                .status
                .parse::<domain::InstructionStatus>()
                .map(|s| ctx.t(s.label_ja(), s.label_en()))
                .unwrap_or(&r.status);
            html! {
                tr {
                    td { (ctx.op.code_of(Some(r.shop_id))) }
                    td { a href={ "/instructions/" (r.instruction_id) } { (r.order) } }
                    td { (badge(if r.status == "allocated" { "error" } else { "warning" }, label)) }
                    td { (r.reason.as_deref().unwrap_or("-")) }
                    td { (time(r.requested_at, ctx.state.tz)) }
                    td {
                        form method="post" action={ "/cancel-requests/" (r.instruction_id) "/accept" } class="inline" {
                            input type="hidden" name="csrf" value=(ctx.op.csrf);
                            button type="submit" class="accept-cancel" { (t("承諾", "Accept")) }
                        }
                        " "
                        form method="post" action={ "/cancel-requests/" (r.instruction_id) "/decline" } class="inline" {
                            input type="hidden" name="csrf" value=(ctx.op.csrf);
                            button type="submit" class="decline-cancel" { (t("拒否", "Decline")) }
                        }
                    }
                }
            }
        },
    )
}

/// 承諾 / 拒否: an operator decides a buyer's cancellation request
/// (`store::cancel_requests::{accept, decline}`, API-logged with the operator's name).
pub async fn decide_cancel_request(
    ctx: Ctx,
    Path((id, decision)): Path<(Uuid, String)>,
    Form(f): Form<ResendForm>,
) -> Result<Redirect, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let mut tx = ctx.state.pool.begin().await?;
    let row = match store::instructions::get(&mut tx, id).await {
        Ok(r) if ctx.op.shop_by_id(r.shop_id).is_some() => r,
        Ok(_) | Err(store::StoreError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(err) => return Err(err.into()),
    };
    let order = row.amazon_order_id.ok_or(AppError::NotFound)?;
    let decided = match decision.as_str() {
        "accept" => {
            store::cancel_requests::accept(&mut tx, row.shop_id, &order, &ctx.op.username).await
        }
        "decline" => {
            store::cancel_requests::decline(&mut tx, row.shop_id, &order, &ctx.op.username).await
        }
        _ => return Err(AppError::NotFound),
    };
    let result = match decided {
        Ok(_) => {
            tx.commit().await?;
            if decision == "accept" {
                "accepted"
            } else {
                "declined"
            }
        }
        // Decided already, shipped or cancelled meanwhile: said on the page, nothing changed.
        Err(store::StoreError::Conflict(_)) => "stale",
        Err(err) => return Err(err.into()),
    };
    tracing::info!(instruction_id = %id, operator = %ctx.op.username, result, "cancellation request decided in the console");
    Ok(Redirect::to(&format!(
        "/attention?decided={}&decision={result}#cancel-requests",
        url_enc(&order)
    )))
}

fn decision_flash(ctx: &Ctx, q: &Q) -> Markup {
    let (Some(order), Some(decision)) = (q.decided.as_deref(), q.decision.as_deref()) else {
        return html! {};
    };
    let t = |ja, en| ctx.t(ja, en);
    let (class, text) = match decision {
        "accepted" => (
            "ok",
            t(
                "キャンセルを承諾しました。在庫を戻し、次回の出荷実績戻しでAmazonに通知します:",
                "Cancellation accepted; stock released, Amazon is told at the next shipment-result run:",
            ),
        ),
        "declined" => (
            "ok",
            t(
                "キャンセル依頼を拒否しました。通常どおり出荷してください:",
                "Cancellation request declined; ship it as usual:",
            ),
        ),
        _ => (
            "error",
            t(
                "この依頼はすでに処理済みか、出荷・キャンセル済みです:",
                "This request was already decided, or the order is shipped or cancelled:",
            ),
        ),
    };
    html! {
        p class={ "flash " (class) } id="cancel-request-flash" { (text) " " code { (order) } }
    }
}
