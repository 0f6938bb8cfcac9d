//! タスク一覧: shipping instructions with filters, and the detail with lines. Buyer and ship-to
//! are masked until the operator reveals them; every reveal is written to the API log (who and
//! which order, never the data itself).

use axum::{
    Form,
    extract::{Path, Query},
    response::Html,
};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::money::display_amount;
use domain::{ApiStatus, InstructionStatus, Marketplace, PaymentMethod, PaymentStatus};
use maud::{Markup, html};
use serde::Deserialize;
use store::{
    StoreError, api_log,
    read::{LIST_LIMIT, instructions::ListFilter},
};
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, div_msg, opt, options, table, time, time_opt, url_enc},
    i18n::Lang,
    nz,
    pages::api_log::log_table,
};

#[derive(Deserialize, Default)]
pub struct Q {
    shop: Option<String>,
    status: Option<String>,
    payment: Option<String>,
    api: Option<String>,
    marketplace: Option<String>,
    from: Option<String>,
    to: Option<String>,
    order: Option<String>,
}

fn status_label(lang: Lang, s: &str) -> String {
    lang.parsed_label(s, InstructionStatus::label_ja, InstructionStatus::label_en)
}
fn payment_label(lang: Lang, s: &str) -> String {
    lang.parsed_label(s, PaymentStatus::label_ja, PaymentStatus::label_en)
}
fn api_label(lang: Lang, s: &str) -> String {
    lang.parsed_label(s, ApiStatus::label_ja, ApiStatus::label_en)
}
fn method_label(lang: Lang, s: &str) -> String {
    lang.parsed_label(s, PaymentMethod::label_ja, PaymentMethod::label_en)
}
fn marketplace_label(id: Option<&str>) -> String {
    match id {
        Some(id) => Marketplace::from_id(id)
            .map(|m| m.code().to_owned())
            .unwrap_or_else(|_| id.to_owned()),
        None => "—".to_owned(),
    }
}

fn day_start(s: Option<&str>, tz: chrono_tz::Tz, plus_days: i64) -> Option<chrono::DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(s?, "%Y-%m-%d").ok()? + chrono::Duration::days(plus_days);
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The order details shown as badges in the list and the detail.
struct Flags {
    prime: bool,
    premium: bool,
    business: bool,
    gift: bool,
    scheduled: bool,
}

/// Compact badges: Prime, premium, business, gift, time slot chosen.
fn detail_badges(ctx: &Ctx, f: &Flags) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    html! {
        @if f.prime { " " span class="badge b-neutral" data-flag="prime" { "Prime" } }
        @if f.premium { " " span class="badge b-neutral" data-flag="premium" { (t("プレミアム", "Premium")) } }
        @if f.business { " " span class="badge b-neutral" data-flag="business" { (t("法人", "Business")) } }
        @if f.gift { " " span class="badge b-neutral" data-flag="gift" { (t("ギフト", "Gift")) } }
        @if f.scheduled { " " span class="badge b-neutral" data-flag="scheduled" { (t("日時指定", "Time slot")) } }
    }
}

/// Still to be shipped (the ship-by time matters).
fn open(status: &str) -> bool {
    matches!(status, "hold" | "awaiting_shipment" | "allocated")
}

/// A badge when the ship-by time is near (within [`domain::ship_by::WARN_HOURS`]) or past.
fn ship_by_badge(ctx: &Ctx, by: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    if by <= now {
        html! { " " (badge("attention", t("出荷期限超過", "Ship-by passed"))) }
    } else if domain::ship_by::approaching(by, now) {
        html! { " " (badge("attention", t("出荷期限間近", "Ship-by soon"))) }
    } else {
        html! {}
    }
}

pub async fn list(ctx: Ctx, Query(q): Query<Q>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let tz = ctx.state.tz;
    let marketplace =
        nz(&q.marketplace).and_then(|m| m.parse::<Marketplace>().ok().map(|m| m.id()));
    let from = day_start(nz(&q.from), tz, 0);
    let to = day_start(nz(&q.to), tz, 1);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::instructions::list(
        &mut conn,
        &ListFilter {
            shops: &shops,
            status: nz(&q.status),
            payment: nz(&q.payment),
            api: nz(&q.api),
            marketplace_id: marketplace,
            from,
            to,
            amazon_order_id: nz(&q.order),
            limit: LIST_LIMIT,
        },
    )
    .await?;

    let l = ctx.lang;
    let t = |ja, en| ctx.t(ja, en);
    let opts = |all: &[&str], f: fn(Lang, &str) -> String| -> Vec<(String, String)> {
        all.iter().map(|s| (s.to_string(), f(l, s))).collect()
    };
    let statuses: Vec<&str> = InstructionStatus::ALL.iter().map(|s| s.as_str()).collect();
    let payments: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    let apis: Vec<&str> = ApiStatus::ALL.iter().map(|s| s.as_str()).collect();
    let mps: Vec<(String, String)> = Marketplace::ALL
        .iter()
        .map(|m| (m.code().to_owned(), m.code().to_owned()))
        .collect();
    let all = t("すべて", "All");
    let rows_html = html! {
        @for r in &rows {
            tr {
                td {
                    a href={ "/instructions/" (r.id) } { (r.amazon_order_id.as_deref().unwrap_or("—")) }
                    (detail_badges(&ctx, &Flags {
                        prime: r.is_prime,
                        premium: r.is_premium,
                        business: r.is_business,
                        gift: r.is_gift,
                        scheduled: r.scheduled,
                    }))
                    @if let Some(by) = r.latest_ship_at.filter(|_| open(&r.status)) {
                        (ship_by_badge(&ctx, by, Utc::now()))
                    }
                }
                td { (ctx.op.code_of(Some(r.shop_id))) }
                td { (time_opt(r.ordered_at.or(Some(r.created_at)), tz)) }
                td { (badge(&r.status, &status_label(l, &r.status))) }
                td { (badge(&r.payment_status, &payment_label(l, &r.payment_status))) }
                td {
                    (badge(&r.api_status, &api_label(l, &r.api_status)))
                    (div_msg(r.api_error.as_deref()))
                }
                td { (marketplace_label(r.marketplace_id.as_deref())) }
                td { (method_label(l, &r.payment_method)) }
                td { (r.delivery_method_name) }
                td class="num" {
                    (r.lines)
                    @if r.unmapped > 0 {
                        " " (badge("attention", t("SKU未対応", "unmapped SKU")))
                    }
                }
                td class="num" { (opt(r.order_total.map(|v| display_amount(v, r.currency.as_deref())))) }
                td { (r.tracking_numbers.join(", ")) }
            }
        }
    };
    let body = html! {
        form class="filters" method="get" id="instruction-filters" {
            (ctx.shop_select(nz(&q.shop)))
            label { (t("ステータス", "Status")) select name="status" { (options(&opts(&statuses, status_label), nz(&q.status), Some(all))) } }
            label { (t("入金ステータス", "Payment status")) select name="payment" { (options(&opts(&payments, payment_label), nz(&q.payment), Some(all))) } }
            label { (t("APIステータス", "API status")) select name="api" { (options(&opts(&apis, api_label), nz(&q.api), Some(all))) } }
            label { (t("マーケットプレイス", "Marketplace")) select name="marketplace" { (options(&mps, nz(&q.marketplace), Some(all))) } }
            label { (t("注文日（から）", "Ordered from")) input type="date" name="from" value=(nz(&q.from).unwrap_or("")); }
            label { (t("注文日（まで）", "Ordered to")) input type="date" name="to" value=(nz(&q.to).unwrap_or("")); }
            label { (t("注文番号", "Order id")) input name="order" value=(nz(&q.order).unwrap_or("")) placeholder="503-1234567-1234567"; }
            button type="submit" { (t("絞り込み", "Filter")) }
        }
        p class="hint" { (rows.len()) " " (t("件（最大500件）", "instructions (at most 500)")) }
        (table(
            Some("instructions"),
            &[
                Col::text(t("注文番号", "Order id")),
                Col::text(t("ショップ", "Shop")),
                Col::text(t("注文日時", "Ordered")),
                Col::text(t("ステータス", "Status")),
                Col::text(t("入金", "Payment")),
                Col::text(t("APIステータス", "API status")),
                Col::text(t("MP", "MP")),
                Col::text(t("支払方法", "Payment method")),
                Col::text(t("配送方法", "Delivery method")),
                Col::num(t("明細", "Lines")),
                Col::num(t("合計", "Total")),
                Col::text(t("問番", "Tracking")),
            ],
            rows.is_empty().then(|| {
                t(
                    "該当する出荷指示はありません",
                    "No shipping instructions match",
                )
            }),
            rows_html,
        ))
    };
    Ok(ctx.page(t("タスク一覧（出荷指示）", "Shipping instructions"), body))
}

pub async fn detail(ctx: Ctx, Path(id): Path<Uuid>) -> Result<Html<String>, AppError> {
    render_detail(&ctx, id, false).await
}

#[derive(Deserialize)]
pub struct RevealForm {
    csrf: String,
}

/// Shows buyer and ship-to, and writes who looked to the API log.
pub async fn reveal(
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(f): Form<RevealForm>,
) -> Result<Html<String>, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let mut conn = ctx.state.pool.acquire().await?;
    let row = match store::instructions::get(&mut conn, id).await {
        Ok(r) if ctx.op.shop_by_id(r.shop_id).is_some() => r,
        Ok(_) | Err(StoreError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(err) => return Err(err.into()),
    };
    let message = format!(
        "operator {} viewed the buyer and ship-to data of this order in the console",
        ctx.op.username
    );
    api_log::write(
        &mut conn,
        &api_log::Entry {
            amazon_order_id: row.amazon_order_id.as_deref(),
            code: Some("pii_revealed"),
            details: Some(serde_json::json!({ "instruction_id": id, "operator": ctx.op.username })),
            ..api_log::Entry::new(Some(row.shop_id), "console", api_log::Level::Info, &message)
        },
    )
    .await?;
    drop(conn);
    tracing::info!(instruction_id = %id, operator = %ctx.op.username, "PII revealed in the console");
    render_detail(&ctx, id, true).await
}

async fn render_detail(ctx: &Ctx, id: Uuid, reveal: bool) -> Result<Html<String>, AppError> {
    let tz = ctx.state.tz;
    let l = ctx.lang;
    let t = |ja, en| ctx.t(ja, en);
    let mut conn = ctx.state.pool.acquire().await?;
    let r = store::read::instructions::detail(&mut conn, id)
        .await?
        .filter(|r| ctx.op.shop_by_id(r.shop_id).is_some())
        .ok_or(AppError::NotFound)?;
    let order = r.amazon_order_id.clone().unwrap_or_else(|| "—".to_owned());

    let amount = |v: Option<_>| opt(v.map(|v| display_amount(v, r.currency.as_deref())));
    let kv = |items: &[(&str, Markup)]| {
        html! {
            dl class="kv" {
                @for (k, v) in items {
                    dt { (k) }
                    dd { (v) }
                }
            }
        }
    };
    let text = |v: &str| html! { (v) };
    let range =
        |from: Option<chrono::DateTime<Utc>>, to: Option<chrono::DateTime<Utc>>| match (from, to) {
            (None, None) => "—".to_owned(),
            (Some(f), Some(to)) if f == to => time(f, tz),
            (f, to) => format!("{} – {}", time_opt(f, tz), time_opt(to, tz)),
        };
    // The packages the warehouse recorded (issue 21 item 2) and, for a shop that sends every
    // package, each one's state at Amazon. Allocated with packages: partially shipped.
    let packages = store::packages::states(&mut conn, id).await?;
    let every_package = store::packages::send_every_package(&mut conn, r.shop_id).await?;
    let partial = r.status == InstructionStatus::Allocated.as_str() && !packages.is_empty();
    let order_kv = kv(&[
        (t("注文番号", "Order id"), text(&order)),
        (
            t("ショップ", "Shop"),
            text(&ctx.op.code_of(Some(r.shop_id))),
        ),
        (
            t("マーケットプレイス", "Marketplace"),
            text(&marketplace_label(r.marketplace_id.as_deref())),
        ),
        (t("注文日時", "Ordered"), text(&time_opt(r.ordered_at, tz))),
        (t("取込日時", "Imported"), text(&time(r.created_at, tz))),
        (
            t("ステータス", "Status"),
            html! {
                (badge(&r.status, &status_label(l, &r.status)))
                @if partial {
                    " "
                    span id="partially-shipped" {
                        (badge("partially_shipped", t("一部出荷済み（残りは未出荷）", "Partially shipped (the rest has not left)")))
                    }
                }
            },
        ),
        (
            t("入金ステータス", "Payment status"),
            badge(&r.payment_status, &payment_label(l, &r.payment_status)),
        ),
        (
            t("APIステータス", "API status"),
            html! {
                (badge(&r.api_status, &api_label(l, &r.api_status)))
                (div_msg(r.api_error.as_deref()))
            },
        ),
        (
            t("Amazonのステータス", "Amazon status"),
            opt(r.amazon_status.as_deref()),
        ),
        (
            t("支払方法", "Payment method"),
            text(&method_label(l, &r.payment_method)),
        ),
        (
            t("配送方法", "Delivery method"),
            text(r.dm_name.as_deref().unwrap_or(&r.delivery_method_name)),
        ),
        (
            t("配送サービス", "Ship service level"),
            opt(r.ship_service_level.as_deref()),
        ),
        (t("合計", "Total"), amount(r.order_total)),
        (t("送料", "Shipping"), amount(r.shipping_total)),
        (t("代引手数料", "COD fee"), amount(r.cod_fee)),
        (
            t("問番", "Tracking numbers"),
            text(&r.tracking_numbers.join(", ")),
        ),
        (t("出荷日", "Ship date"), opt(r.shipped_on)),
        (
            t("注文区分", "Order type"),
            html! {
                (detail_badges(ctx, &Flags {
                    prime: r.is_prime,
                    premium: r.is_premium,
                    business: r.is_business,
                    gift: r.is_gift,
                    scheduled: r.scheduled_delivery_from.is_some(),
                }))
                @if !(r.is_prime || r.is_premium || r.is_business || r.is_gift || r.scheduled_delivery_from.is_some()) {
                    "—"
                }
            },
        ),
        (
            t("出荷期限", "Ship by"),
            html! {
                span id="ship-by" { (range(r.earliest_ship_at, r.latest_ship_at)) }
                @if let Some(by) = r.latest_ship_at.filter(|_| open(&r.status)) {
                    (ship_by_badge(ctx, by, Utc::now()))
                }
            },
        ),
        (
            t("お届け予定", "Deliver by"),
            html! { span id="deliver-by" { (range(r.earliest_delivery_at, r.latest_delivery_at)) } },
        ),
        (
            t("お届け日時指定", "Delivery time slot"),
            html! { span id="time-slot" { (range(r.scheduled_delivery_from, r.scheduled_delivery_to)) } },
        ),
    ]);

    // Buyer and ship-to: masked unless revealed.
    // Opened in memory only; shown masked unless revealed (placeholders are not PII).
    let p = if r.pii_purged_at.is_some() {
        None
    } else {
        store::pii::read(&mut conn, &ctx.state.keys, id).await?
    }
    .unwrap_or_default();
    let pii: [(&str, &Option<String>); 12] = [
        (t("購入者名", "Buyer name"), &p.buyer_name),
        (t("購入者メール", "Buyer e-mail"), &p.buyer_email),
        (t("お届け先名", "Ship-to name"), &p.ship_to_name),
        (t("郵便番号", "Postal code"), &p.ship_to_postal_code),
        (t("国", "Country"), &r.ship_to_country),
        (t("都道府県・州", "State / prefecture"), &p.ship_to_state),
        (t("市区町村", "City"), &p.ship_to_city),
        (t("住所", "Address"), &p.ship_to_address),
        (t("電話番号", "Phone"), &p.ship_to_phone),
        (t("会社名", "Company"), &p.buyer_company),
        (
            t("発注番号", "Purchase order number"),
            &p.purchase_order_number,
        ),
        (
            t("配達の希望", "Delivery preference"),
            &p.delivery_preference,
        ),
    ];
    let pii_section = if r.pii_purged_at.is_some() {
        html! {
            p class="hint" id="pii-purged" {
                (t(
                    "個人情報はデータ保護ポリシーにより削除済みです:",
                    "Personal data was purged under Amazon's data protection policy:"
                ))
                " "
                (time_opt(r.pii_purged_at, tz))
            }
        }
    } else {
        let items: Vec<(&str, Markup)> = pii
            .iter()
            .map(|(k, v)| {
                let shown = match v.as_deref() {
                    None | Some("") => html! { "—" },
                    Some(p) if p == domain::PLACEHOLDER_REGISTRATION => html! { (p) },
                    Some(p) if reveal => html! { span class="pii" { (p) } },
                    Some(_) => html! { span class="masked" { "●●●●●●" } },
                };
                (*k, shown)
            })
            .collect();
        html! {
            (kv(&items))
            @if reveal {
                p class="hint" id="pii-shown" {
                    (t("表示した記録をAPIログに残しました。", "This view was recorded in the API log."))
                }
            } @else {
                form method="post" action={ "/instructions/" (id) "/reveal" } {
                    input type="hidden" name="csrf" value=(ctx.op.csrf);
                    button type="submit" class="secondary" id="reveal" { (t("個人情報を表示", "Show personal data")) }
                    " "
                    span class="hint" { (t("表示するとAPIログに記録されます", "Each view is recorded in the API log")) }
                }
            }
        }
    };

    // Lines.
    let lines = store::read::instructions::lines(&mut conn, id).await?;
    let lines_table = html! {
        table id="lines" {
            thead {
                tr {
                    th class="num" { "#" }
                    th { "SKU" }
                    th { (t("商品", "Product")) }
                    th { (t("商品名（Amazon）", "Title (Amazon)")) }
                    th class="num" { (t("数量", "Qty")) }
                    th class="num" { (t("単価", "Unit price")) }
                    th class="num" { (t("小計", "Line total")) }
                    th class="num" { (t("確保数", "Reserved")) }
                    th class="num" { (t("代引手数料", "COD fee")) }
                    th { (t("ギフト", "Gift")) }
                }
            }
            tbody {
                @for ln in &lines {
                    tr {
                        td class="num" { (ln.line_no) }
                        td { (ln.sku) }
                        td {
                            @match (&ln.product_code, &ln.product_name) {
                                (Some(c), Some(n)) => { (c) " " (n) }
                                _ => (badge(
                                    "attention",
                                    t(
                                        "未対応SKU（対応表に登録してください）",
                                        "Unmapped SKU (add it to the mapping table)",
                                    ),
                                )),
                            }
                        }
                        td { (opt(ln.title.as_deref())) }
                        td class="num" { (ln.quantity) }
                        td class="num" { (amount(ln.unit_price)) }
                        td class="num" { (amount(ln.line_total)) }
                        td class="num" { (ln.reserved_quantity) }
                        td class="num" { (amount(ln.cod_fee)) }
                        td class="gift" {
                            @if ln.is_gift {
                                (t("ギフト", "Gift"))
                                @if let Some(w) = &ln.gift_wrap_level {
                                    " (" (t("包装", "wrap")) ": " (w) ")"
                                }
                                @let message = ln
                                    .amazon_order_item_id
                                    .as_ref()
                                    .and_then(|i| p.gift_messages.get(i));
                                @if let Some(m) = message {
                                    br;
                                    (t("メッセージ", "Message")) ": "
                                    @if reveal {
                                        span class="pii" { (m) }
                                    } @else {
                                        span class="masked" { "●●●●●●" }
                                    }
                                }
                            } @else {
                                "—"
                            }
                        }
                    }
                }
            }
        }
    };

    let sku_of = |item: &str| -> String {
        lines
            .iter()
            .find(|l| l.amazon_order_item_id.as_deref() == Some(item))
            .map_or_else(|| item.to_owned(), |l| l.sku.clone())
    };
    let carrier = r.dm_name.as_deref().unwrap_or(&r.delivery_method_name);
    let packages_section = html! {
        @if !packages.is_empty() {
            h2 { (t("個口", "Packages")) }
            table id="packages" {
                thead {
                    tr {
                        th class="num" { "#" }
                        th { (t("問番", "Tracking number")) }
                        th { (t("配送方法", "Carrier")) }
                        th { (t("内容", "Contents")) }
                        th { (t("出荷日", "Left on")) }
                        th { (t("Amazonへの送信", "Sent to Amazon")) }
                    }
                }
                tbody {
                    @for state in &packages {
                        @let pkg = &state.package;
                        tr {
                            td class="num" { (pkg.number) }
                            td { (pkg.tracking_number) }
                            td { (pkg.external_delivery_method.as_deref().unwrap_or(carrier)) }
                            td {
                                @for (n, item) in pkg.items.iter().enumerate() {
                                    @if n > 0 { ", " }
                                    (sku_of(&item.order_item_id)) " × " (item.quantity)
                                }
                            }
                            td { (opt(state.shipped_on.or(r.shipped_on))) }
                            td class="package-state" {
                                @if every_package {
                                    (badge(state.api_status.as_str(), l.status(state.api_status, ApiStatus::label_ja, ApiStatus::label_en)))
                                    (div_msg(state.api_error.as_deref()))
                                } @else {
                                    span class="hint" {
                                        (t("個口ごとには送信しません（先頭の問番のみ）", "Not sent per package (first tracking number only)"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };

    // Feed messages and API log of this order.
    let order_log = match &r.amazon_order_id {
        Some(order_id) => {
            let logs = store::api_log::query(
                &mut conn,
                &store::api_log::Filter {
                    shop_id: Some(r.shop_id),
                    amazon_order_id: Some(order_id.clone()),
                    limit: 50,
                    ..Default::default()
                },
            )
            .await?;
            html! {
                h2 { (t("この注文のAPIログ", "API log of this order")) }
                p {
                    a href={
                        "/api-log?shop=" (url_enc(&ctx.op.code_of(Some(r.shop_id))))
                        "&order=" (url_enc(order_id))
                    } { (t("APIログで開く", "Open in the API log")) }
                }
                (log_table(ctx, &logs))
            }
        }
        None => html! {},
    };
    let body = html! {
        (order_kv)
        h2 { (t("購入者・お届け先", "Buyer and ship-to")) }
        (pii_section)
        h2 { (t("明細", "Lines")) }
        (lines_table)
        (packages_section)
        (order_log)
    };
    Ok(ctx.page(
        &format!("{} {order}", t("出荷指示", "Shipping instruction")),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_filters_use_the_console_zone() {
        let t = day_start(Some("2026-11-28"), chrono_tz::Asia::Tokyo, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T15:00:00+00:00");
        let t = day_start(Some("2026-11-28"), chrono_tz::Asia::Tokyo, 1).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T15:00:00+00:00");
        assert!(day_start(Some("x"), chrono_tz::UTC, 0).is_none());
    }

    #[test]
    fn labels() {
        assert_eq!(status_label(Lang::Ja, "allocated"), "引当済み");
        assert_eq!(api_label(Lang::En, "printed"), "Printed (sent)");
        assert_eq!(marketplace_label(Some("A1VC38T7YXB528")), "JP");
    }
}
