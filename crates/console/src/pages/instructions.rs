//! タスク一覧: shipping instructions with filters, and the detail with lines. Buyer and ship-to
//! are masked until the operator reveals them; every reveal is written to the API log (who and
//! which order, never the data itself).

use std::fmt::Write as _;

use axum::{
    Form,
    extract::{Path, Query},
    response::Html,
};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::money::display_amount;
use domain::{ApiStatus, InstructionStatus, Marketplace, PaymentMethod, PaymentStatus};
use serde::Deserialize;
use store::{
    StoreError, api_log,
    read::{LIST_LIMIT, instructions::ListFilter},
};
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, options, table_open, time, time_opt, url_enc},
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
    let mut body = format!(
        r#"<form class="filters" method="get" id="instruction-filters">{shop}
<label>{ls}<select name="status">{so}</select></label>
<label>{lp}<select name="payment">{po}</select></label>
<label>{la}<select name="api">{ao}</select></label>
<label>{lm}<select name="marketplace">{mo}</select></label>
<label>{lf}<input type="date" name="from" value="{from}"></label>
<label>{lt}<input type="date" name="to" value="{to}"></label>
<label>{lo}<input name="order" value="{order}" placeholder="503-1234567-1234567"></label>
<button type="submit">{go}</button></form>"#,
        shop = ctx.shop_select(nz(&q.shop)),
        ls = e(t("ステータス", "Status")),
        so = options(&opts(&statuses, status_label), nz(&q.status), all),
        lp = e(t("入金ステータス", "Payment status")),
        po = options(&opts(&payments, payment_label), nz(&q.payment), all),
        la = e(t("APIステータス", "API status")),
        ao = options(&opts(&apis, api_label), nz(&q.api), all),
        lm = e(t("マーケットプレイス", "Marketplace")),
        mo = options(&mps, nz(&q.marketplace), all),
        lf = e(t("注文日（から）", "Ordered from")),
        from = e(nz(&q.from).unwrap_or("")),
        lt = e(t("注文日（まで）", "Ordered to")),
        to = e(nz(&q.to).unwrap_or("")),
        lo = e(t("注文番号", "Order id")),
        order = e(nz(&q.order).unwrap_or("")),
        go = e(t("絞り込み", "Filter")),
    );
    let _ = write!(
        body,
        r#"<p class="hint">{} {}</p>"#,
        rows.len(),
        e(t("件（最大500件）", "instructions (at most 500)")),
    );
    body.push_str(&table_open(
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
    ));
    for r in &rows {
        let order = r.amazon_order_id.as_deref().unwrap_or("—");
        let unmapped = if r.unmapped > 0 {
            format!(" {}", badge("attention", t("SKU未対応", "unmapped SKU")))
        } else {
            String::new()
        };
        let api_err = r
            .api_error
            .as_deref()
            .map(|m| format!(r#"<div class="msg">{}</div>"#, e(m)))
            .unwrap_or_default();
        let _ = write!(
            body,
            r#"<tr><td><a href="/instructions/{id}">{order}</a>{prime}</td><td>{shop}</td><td>{ordered}</td><td>{st}</td><td>{pay}</td><td>{api}{api_err}</td><td>{mp}</td><td>{pm}</td><td>{dm}</td><td class="num">{lines}{unmapped}</td><td class="num">{total}</td><td>{track}</td></tr>"#,
            id = r.id,
            order = e(order),
            prime = if r.is_prime {
                r#" <span class="badge b-neutral">Prime</span>"#
            } else {
                ""
            },
            shop = e(ctx.op.code_of(Some(r.shop_id))),
            ordered = time_opt(r.ordered_at.or(Some(r.created_at)), tz),
            st = badge(&r.status, &status_label(l, &r.status)),
            pay = badge(&r.payment_status, &payment_label(l, &r.payment_status)),
            api = badge(&r.api_status, &api_label(l, &r.api_status)),
            mp = e(marketplace_label(r.marketplace_id.as_deref())),
            pm = e(method_label(l, &r.payment_method)),
            dm = e(&r.delivery_method_name),
            lines = r.lines,
            total = match r.order_total {
                Some(v) => e(display_amount(v, r.currency.as_deref())).to_string(),
                None => "—".to_owned(),
            },
            track = e(r.tracking_numbers.join(", ")),
        );
    }
    body.push_str("</tbody></table>");
    Ok(ctx.page(t("タスク一覧（出荷指示）", "Shipping instructions"), &body))
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

    let mut body = String::new();
    let amount = |v: Option<_>| match v {
        Some(v) => e(display_amount(v, r.currency.as_deref())).to_string(),
        None => "—".to_owned(),
    };
    let kv = |items: &[(&str, String)]| {
        let mut h = String::from(r#"<dl class="kv">"#);
        for (k, v) in items {
            let _ = write!(h, "<dt>{}</dt><dd>{v}</dd>", e(k));
        }
        h.push_str("</dl>");
        h
    };
    body.push_str(&kv(&[
        (t("注文番号", "Order id"), e(&order).to_string()),
        (
            t("ショップ", "Shop"),
            e(ctx.op.code_of(Some(r.shop_id))).to_string(),
        ),
        (
            t("マーケットプレイス", "Marketplace"),
            e(marketplace_label(r.marketplace_id.as_deref())).to_string(),
        ),
        (t("注文日時", "Ordered"), time_opt(r.ordered_at, tz)),
        (t("取込日時", "Imported"), time(r.created_at, tz)),
        (
            t("ステータス", "Status"),
            badge(&r.status, &status_label(l, &r.status)),
        ),
        (
            t("入金ステータス", "Payment status"),
            badge(&r.payment_status, &payment_label(l, &r.payment_status)),
        ),
        (
            t("APIステータス", "API status"),
            format!(
                "{}{}",
                badge(&r.api_status, &api_label(l, &r.api_status)),
                r.api_error
                    .as_deref()
                    .map(|m| format!(r#"<div class="msg">{}</div>"#, e(m)))
                    .unwrap_or_default()
            ),
        ),
        (
            t("Amazonのステータス", "Amazon status"),
            opt(r.amazon_status.as_deref()),
        ),
        (
            t("支払方法", "Payment method"),
            e(method_label(l, &r.payment_method)).to_string(),
        ),
        (
            t("配送方法", "Delivery method"),
            e(r.dm_name.as_deref().unwrap_or(&r.delivery_method_name)).to_string(),
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
            e(r.tracking_numbers.join(", ")).to_string(),
        ),
        (t("出荷日", "Ship date"), opt(r.shipped_on)),
    ]));

    // Buyer and ship-to: masked unless revealed.
    let _ = write!(
        body,
        "<h2>{}</h2>",
        e(t("購入者・お届け先", "Buyer and ship-to"))
    );
    // Opened in memory only; shown masked unless revealed (placeholders are not PII).
    let p = if r.pii_purged_at.is_some() {
        None
    } else {
        store::pii::read(&mut conn, &ctx.state.keys, id).await?
    }
    .unwrap_or_default();
    let pii: [(&str, &Option<String>); 9] = [
        (t("購入者名", "Buyer name"), &p.buyer_name),
        (t("購入者メール", "Buyer e-mail"), &p.buyer_email),
        (t("お届け先名", "Ship-to name"), &p.ship_to_name),
        (t("郵便番号", "Postal code"), &p.ship_to_postal_code),
        (t("国", "Country"), &r.ship_to_country),
        (t("都道府県・州", "State / prefecture"), &p.ship_to_state),
        (t("市区町村", "City"), &p.ship_to_city),
        (t("住所", "Address"), &p.ship_to_address),
        (t("電話番号", "Phone"), &p.ship_to_phone),
    ];
    if r.pii_purged_at.is_some() {
        let _ = write!(
            body,
            r#"<p class="hint" id="pii-purged">{} {}</p>"#,
            e(t(
                "個人情報はデータ保護ポリシーにより削除済みです:",
                "Personal data was purged under Amazon's data protection policy:"
            )),
            time_opt(r.pii_purged_at, tz)
        );
    } else {
        let items: Vec<(&str, String)> = pii
            .iter()
            .map(|(k, v)| {
                let shown = match v.as_deref() {
                    None | Some("") => "—".to_owned(),
                    Some(p) if p == domain::PLACEHOLDER_REGISTRATION => e(p).to_string(),
                    Some(p) if reveal => format!(r#"<span class="pii">{}</span>"#, e(p)),
                    Some(_) => r#"<span class="masked">●●●●●●</span>"#.to_owned(),
                };
                (*k, shown)
            })
            .collect();
        body.push_str(&kv(&items));
        if reveal {
            let _ = write!(
                body,
                r#"<p class="hint" id="pii-shown">{}</p>"#,
                e(t(
                    "表示した記録をAPIログに残しました。",
                    "This view was recorded in the API log."
                ))
            );
        } else {
            let _ = write!(
                body,
                r#"<form method="post" action="/instructions/{id}/reveal"><input type="hidden" name="csrf" value="{}"><button type="submit" class="secondary" id="reveal">{}</button> <span class="hint">{}</span></form>"#,
                e(&ctx.op.csrf),
                e(t("個人情報を表示", "Show personal data")),
                e(t(
                    "表示するとAPIログに記録されます",
                    "Each view is recorded in the API log"
                )),
            );
        }
    }

    // Lines.
    let lines = store::read::instructions::lines(&mut conn, id).await?;
    let _ = write!(
        body,
        r#"<h2>{}</h2><table id="lines"><thead><tr><th class="num">#</th><th>SKU</th><th>{}</th><th>{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">{}</th></tr></thead><tbody>"#,
        e(t("明細", "Lines")),
        e(t("商品", "Product")),
        e(t("商品名（Amazon）", "Title (Amazon)")),
        e(t("数量", "Qty")),
        e(t("単価", "Unit price")),
        e(t("小計", "Line total")),
        e(t("確保数", "Reserved")),
    );
    for ln in lines {
        let product = match (ln.product_code, ln.product_name) {
            (Some(c), Some(n)) => format!("{} {}", e(c), e(n)),
            _ => badge(
                "attention",
                t(
                    "未対応SKU（対応表に登録してください）",
                    "Unmapped SKU (add it to the mapping table)",
                ),
            ),
        };
        let _ = write!(
            body,
            r#"<tr><td class="num">{}</td><td>{}</td><td>{product}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            ln.line_no,
            e(&ln.sku),
            opt(ln.title.as_deref()),
            ln.quantity,
            amount(ln.unit_price),
            amount(ln.line_total),
            ln.reserved_quantity,
        );
    }
    body.push_str("</tbody></table>");

    // Feed messages and API log of this order.
    if let Some(order_id) = &r.amazon_order_id {
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
        let _ = write!(
            body,
            r#"<h2>{}</h2><p><a href="/api-log?shop={}&order={}">{}</a></p>"#,
            e(t("この注文のAPIログ", "API log of this order")),
            url_enc(&ctx.op.code_of(Some(r.shop_id))),
            url_enc(order_id),
            e(t("APIログで開く", "Open in the API log"))
        );
        body.push_str(&log_table(ctx, &logs));
    }
    Ok(ctx.page(
        &format!("{} {order}", t("出荷指示", "Shipping instruction")),
        &body,
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
