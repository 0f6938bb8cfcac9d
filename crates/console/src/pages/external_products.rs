//! 外部商品 > 対応表: a shop's Amazon SKUs mapped to our products, with 出荷作業日数, free stock,
//! share of free stock and safety stock (在庫配分, for a product several shops sell), what the
//! next push sends, and the last push; map, set or clear handling days, set or clear a share,
//! unmap; the mapping as CSV (UTF-8 or
//! Shift_JIS), exported and imported (every line checked; nothing saved when one is bad). Each
//! change is written to the API log with the operator's name.

use axum::{
    Form,
    extract::{Multipart, Query},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use domain::inventory::HandlingDays;
use domain::stock::{SafetyStock, SharePercent};
use maud::{Markup, html};
use serde::Deserialize;
use store::{StoreError, catalog, inventory, read::external_products};

use crate::{
    AppError, Ctx, ShopForm,
    auth::ShopRef,
    html::{Col, badge, div_msg, flash, opt, table, time_opt, url_enc},
    mapping_csv::{self, Encoding, LineError},
    nz,
};

const PATH: &str = "/external-products";

#[derive(Deserialize)]
pub struct Q {
    shop: Option<String>,
    done: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Response, AppError> {
    let shop = ctx.pick_shop(nz(&q.shop))?;
    let flash = html! {
        @if let Some(what) = q.done.as_deref() {
            (flash("ok", "done", &done_text(&ctx, what)))
        }
    };
    render(&ctx, shop, flash, StatusCode::OK).await
}

fn done_text(ctx: &Ctx, what: &str) -> String {
    let t = |ja: &str, en: &str| ctx.t(ja, en).to_owned();
    match what {
        "mapped" => t("対応表に登録しました。", "Mapped."),
        "handling" => t("出荷作業日数を変更しました。", "Handling days changed."),
        "unmapped" => t("対応表から外しました。", "Unmapped."),
        "share" => t(
            "在庫配分を変更しました。この商品のSKUは全ショップで次回の在庫連携で送信されます。",
            "Stock share changed. Every SKU of the product, in every shop, is pushed by its next inventory sync.",
        ),
        n => match ctx.lang {
            crate::i18n::Lang::Ja => format!("CSVから{n}件を取り込みました。"),
            crate::i18n::Lang::En => format!("Imported {n} mapping(s) from the CSV file."),
        },
    }
}

async fn render(
    ctx: &Ctx,
    shop: Option<&ShopRef>,
    flash: Markup,
    status: StatusCode,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let title = t("外部商品（対応表）", "External products (mapping)");
    let Some(shop) = shop else {
        return Ok(ctx.no_shops_page(title, flash, status));
    };
    let hidden = ctx.shop_form_fields(&shop.code);
    let (sku, product, days) = (
        t("Amazon SKU", "Amazon SKU"),
        t("品番", "Product code"),
        t(
            "出荷作業日数（0〜30、空欄は未設定）",
            "Handling days (0-30, empty: none)",
        ),
    );
    let save = t("保存", "Save");
    let export = t("CSVを書き出す", "Export CSV");
    let code = url_enc(&shop.code);
    let cards = html! {
        div class="cards" {
            section class="card" {
                h3 { (t("SKUと品番を紐付け", "Map a SKU to a product")) }
                form method="post" action={ (PATH) "/map" } id="map-form" {
                    (hidden)
                    label { (sku) input name="sku" required; }
                    label { (product) input name="product" required; }
                    label { (days) input name="handling_days" inputmode="numeric"; }
                    @if ctx.op.shops.len() > 1 {
                        label {
                            (t("商品のショップ（他ショップの在庫を共有する場合）", "Product's shop (to sell another shop's stock)"))
                            select name="product_shop" {
                                @for s in &ctx.op.shops {
                                    option value=(s.code) selected[s.code == shop.code] { (s.code) }
                                }
                            }
                        }
                    }
                    button type="submit" id="map-submit" { (save) }
                }
            }
            section class="card" {
                h3 { (t("出荷作業日数", "Handling days")) }
                form method="post" action={ (PATH) "/handling" } id="handling-form" {
                    (hidden)
                    label { (sku) input name="sku" required; }
                    label { (days) input name="handling_days" inputmode="numeric"; }
                    button type="submit" id="handling-submit" { (save) }
                }
                p class="hint" {
                    (t(
                        "空欄で保存すると未設定になり、次回の在庫連携でAmazonの出荷作業日数がデフォルトに戻ります（ショップ設定でAmazonの値を保持する場合を除く）。",
                        "Saved empty, none is set: the next inventory sync sets Amazon's handling time back to its default (unless the shop keeps Amazon's value).",
                    ))
                }
            }
            section class="card" {
                h3 { (t("在庫配分（複数ショップで同じ商品を販売）", "Stock share (one product sold by several shops)")) }
                form method="post" action={ (PATH) "/share" } id="share-form" {
                    (hidden)
                    label { (sku) input name="sku" required; }
                    label {
                        (t("配分率 %（1〜100、空欄は配分なし）", "Share % (1-100, empty: no share)"))
                        input name="share_percent" inputmode="numeric";
                    }
                    label {
                        (t("安全在庫（0以上）", "Safety stock (0 or more)"))
                        input name="safety_stock" inputmode="numeric" value="0";
                    }
                    button type="submit" id="share-submit" { (save) }
                }
                p class="hint" {
                    (t(
                        "配分率を設定したSKUには（フリー在庫数 − 安全在庫）× 配分率を切り捨てて送信します。配分率の合計が100%を超えると比例して縮小し、全ショップの合計がフリー在庫数を超えることはありません。フリー在庫数が安全在庫以下になると全ショップ0になります。空欄は従来どおりフリー在庫数をすべて送信します。",
                        "A SKU with a share is sent (free stock − safety stock) × share, rounded down. Shares summing over 100 % are scaled down, so all shops together are never sent more than the free stock; at or below the safety stock every shop shows 0. Empty: the whole free stock, as before.",
                    ))
                }
            }
            section class="card" {
                h3 { "CSV" }
                p {
                    a id="csv-export-utf8" href={ (PATH) "/export?shop=" (code) "&encoding=utf-8" } { (export) " (UTF-8)" }
                    " · "
                    a id="csv-export-sjis" href={ (PATH) "/export?shop=" (code) "&encoding=shift_jis" } { (export) " (Shift_JIS)" }
                }
                form method="post" action={ (PATH) "/import" } enctype="multipart/form-data" id="csv-import" {
                    (hidden)
                    label { (t("CSVファイル", "CSV file")) input type="file" name="file" accept=".csv,text/csv" required; }
                    label {
                        (t("文字コード", "Encoding"))
                        select name="encoding" {
                            option value="utf-8" { "UTF-8" }
                            option value="shift_jis" { "Shift_JIS" }
                        }
                    }
                    button type="submit" id="csv-import-submit" { (t("取り込む", "Import")) }
                }
                p class="hint" {
                    (t(
                        "1行目は sku,product_code,handling_days（または SKU,品番,出荷作業日数）。1行でも誤りがあれば何も保存せず、行ごとに理由を表示します。",
                        "First line: sku,product_code,handling_days (or SKU,品番,出荷作業日数). If any line is wrong nothing is saved and each wrong line is listed with why.",
                    ))
                }
            }
        }
    };
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = external_products::list(&mut conn, shop.id).await?;
    let rows_html = html! {
        @for r in &rows {
            tr {
                td { (r.sku) }
                td { (r.product_code) }
                td { (r.product_name) }
                td class="num" { (opt(r.handling_days)) }
                td class="num" { (r.free) }
                td class="num share" {
                    @if let Some(p) = r.share_percent { (p) " %" } @else { "—" }
                }
                td class="num safety" { (r.safety_stock) }
                td class="num to-send" { (r.to_send) }
                td {
                    (badge(&r.push_state, &r.push_state))
                    (div_msg(r.push_error.as_deref()))
                }
                td class="num" { (opt(r.pushed_quantity)) }
                td { (time_opt(r.pushed_at, ctx.state.tz)) }
                td {
                    form method="post" action={ (PATH) "/unmap" } {
                        (hidden)
                        input type="hidden" name="sku" value=(r.sku);
                        button type="submit" class="unmap" { (t("外す", "Unmap")) }
                    }
                }
            }
        }
    };
    let body = html! {
        (flash)
        (ctx.shop_switch(&shop.code))
        (cards)
        (table(
            Some("external-products"),
            &[
                Col::text(sku),
                Col::text(product),
                Col::text(t("商品名", "Product")),
                Col::num(t("出荷作業日数", "Handling days")),
                Col::num(t("フリー在庫数", "Free stock")),
                Col::num(t("配分率", "Share")),
                Col::num(t("安全在庫", "Safety stock")),
                Col::num(t("送信数量", "To send")),
                Col::text(t("在庫連携", "Last push")),
                Col::num(t("連携数量", "Pushed quantity")),
                Col::text(t("連携日時", "Pushed at")),
                Col::text(""),
            ],
            rows.is_empty().then(|| t("対応表は空です。", "No SKU is mapped.")),
            rows_html,
        ))
    };
    Ok((status, ctx.page(title, body)).into_response())
}

/// The page again with why nothing was saved (HTTP 422).
async fn refused(ctx: &Ctx, shop: &ShopRef, msg: &str) -> Result<Response, AppError> {
    let flash = flash("err", "refused", msg);
    render(ctx, Some(shop), flash, StatusCode::UNPROCESSABLE_ENTITY).await
}

fn done(shop: &ShopRef, what: &str) -> Response {
    Redirect::to(&format!("{PATH}?shop={}&done={what}", url_enc(&shop.code))).into_response()
}

/// The Japanese or the English text, by the operator's language.
fn pick(ctx: &Ctx, ja: String, en: String) -> String {
    match ctx.lang {
        crate::i18n::Lang::Ja => ja,
        crate::i18n::Lang::En => en,
    }
}

/// Handling days from a form field: empty is none; otherwise 0–30.
fn handling_days(ctx: &Ctx, v: Option<&str>) -> Result<Option<HandlingDays>, String> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        pick(
            ctx,
            format!("出荷作業日数「{v}」は0〜30の整数で入力してください（空欄は未設定）。"),
            format!("Handling days {v:?}: enter a whole number from 0 to 30 (empty: none)."),
        )
    };
    let n: i64 = v.parse().map_err(|_| bad())?;
    HandlingDays::new(n).map(Some).map_err(|_| bad())
}

#[derive(Deserialize)]
pub struct MapForm {
    #[serde(flatten)]
    form: ShopForm,
    sku: String,
    product: String,
    handling_days: Option<String>,
    /// The shop the product belongs to (one of the operator's shops); none: the form's shop.
    product_shop: Option<String>,
}

pub async fn map(ctx: Ctx, Form(f): Form<MapForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let days = match handling_days(&ctx, f.handling_days.as_deref()) {
        Ok(d) => d,
        Err(msg) => return refused(&ctx, shop, &msg).await,
    };
    let (sku, code) = (f.sku.trim(), f.product.trim());
    if sku.is_empty() || code.is_empty() {
        let msg = ctx.t(
            "SKUと品番を入力してください。",
            "Enter the SKU and the product code.",
        );
        return refused(&ctx, shop, msg).await;
    }
    // Another shop's product only among the shops the operator sees.
    let owner = match nz(&f.product_shop) {
        None => shop,
        Some(c) => match ctx.op.shop_by_code(c) {
            Some(o) => o,
            None => {
                let msg = pick(
                    &ctx,
                    format!("ショップ「{c}」は選べません。"),
                    format!("Shop {c:?} cannot be chosen."),
                );
                return refused(&ctx, shop, &msg).await;
            }
        },
    };
    let mut tx = ctx.state.pool.begin().await?;
    let product = match catalog::product_by_code(&mut tx, owner.id, code).await {
        Ok(p) => p,
        Err(StoreError::NotFound { .. }) => {
            let msg = pick(
                &ctx,
                format!("品番「{code}」の商品はありません。商品の品番を確認してください。"),
                format!("No product has the code {code:?}: check the product code."),
            );
            return refused(&ctx, shop, &msg).await;
        }
        Err(err) => return Err(err.into()),
    };
    inventory::map_sku(&mut tx, shop.id, sku, product.id, days).await?;
    let of_shop = if owner.id == shop.id {
        String::new()
    } else {
        format!(" of shop {}", owner.code)
    };
    let message = format!(
        "operator {} mapped SKU {sku} to product {code}{of_shop}{}",
        ctx.op.username,
        days.map(|d| format!(" with {} handling day(s)", d.get()))
            .unwrap_or_default()
    );
    ctx.commit_change(tx, shop.id, Some(sku), "external_product_mapped", &message)
        .await?;
    Ok(done(shop, "mapped"))
}

#[derive(Deserialize)]
pub struct HandlingForm {
    #[serde(flatten)]
    form: ShopForm,
    sku: String,
    handling_days: Option<String>,
}

pub async fn handling(ctx: Ctx, Form(f): Form<HandlingForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let sku = f.sku.trim();
    let days = match handling_days(&ctx, f.handling_days.as_deref()) {
        Ok(d) => d,
        Err(msg) => return refused(&ctx, shop, &msg).await,
    };
    let mut tx = ctx.state.pool.begin().await?;
    match inventory::set_handling_days(&mut tx, shop.id, sku, days).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            let msg = pick(
                &ctx,
                format!("SKU「{sku}」は対応表にありません。先に品番と紐付けてください。"),
                format!("SKU {sku:?} is not mapped: map it to a product first."),
            );
            return refused(&ctx, shop, &msg).await;
        }
        Err(err) => return Err(err.into()),
    }
    let message = match days {
        Some(d) => format!(
            "operator {} set the handling days of SKU {sku} to {}",
            ctx.op.username,
            d.get()
        ),
        None => format!(
            "operator {} cleared the handling days of SKU {sku}",
            ctx.op.username
        ),
    };
    ctx.commit_change(tx, shop.id, Some(sku), "handling_days_changed", &message)
        .await?;
    Ok(done(shop, "handling"))
}

/// A share from a form field: empty is none; otherwise 1–100.
fn share_percent(ctx: &Ctx, v: Option<&str>) -> Result<Option<SharePercent>, String> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        pick(
            ctx,
            format!("配分率「{v}」は1〜100の整数で入力してください（空欄は配分なし）。"),
            format!("Share {v:?}: enter a whole number from 1 to 100 (empty: no share)."),
        )
    };
    let n: i64 = v.parse().map_err(|_| bad())?;
    SharePercent::new(n).map(Some).map_err(|_| bad())
}

/// A safety stock from a form field: empty is 0; otherwise 0 to 1,000,000.
fn safety_stock(ctx: &Ctx, v: Option<&str>) -> Result<SafetyStock, String> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(SafetyStock::default());
    };
    let bad = || {
        pick(
            ctx,
            format!("安全在庫「{v}」は0〜1000000の整数で入力してください。"),
            format!("Safety stock {v:?}: enter a whole number from 0 to 1000000."),
        )
    };
    let n: i64 = v.parse().map_err(|_| bad())?;
    SafetyStock::new(n).map_err(|_| bad())
}

#[derive(Deserialize)]
pub struct ShareForm {
    #[serde(flatten)]
    form: ShopForm,
    sku: String,
    share_percent: Option<String>,
    safety_stock: Option<String>,
}

pub async fn share(ctx: Ctx, Form(f): Form<ShareForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let sku = f.sku.trim();
    let checked = share_percent(&ctx, f.share_percent.as_deref())
        .and_then(|p| Ok((p, safety_stock(&ctx, f.safety_stock.as_deref())?)));
    let (percent, safety) = match checked {
        Ok(v) => v,
        Err(msg) => return refused(&ctx, shop, &msg).await,
    };
    let mut tx = ctx.state.pool.begin().await?;
    match inventory::set_share(&mut tx, shop.id, sku, percent, Some(safety)).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            let msg = pick(
                &ctx,
                format!("SKU「{sku}」は対応表にありません。先に品番と紐付けてください。"),
                format!("SKU {sku:?} is not mapped: map it to a product first."),
            );
            return refused(&ctx, shop, &msg).await;
        }
        Err(err) => return Err(err.into()),
    }
    let message = match percent {
        Some(p) => format!(
            "operator {} set the stock share of SKU {sku} to {} % with safety stock {}",
            ctx.op.username,
            p.get(),
            safety.get()
        ),
        None => format!(
            "operator {} cleared the stock share of SKU {sku} (safety stock {})",
            ctx.op.username,
            safety.get()
        ),
    };
    ctx.commit_change(tx, shop.id, Some(sku), "stock_share_changed", &message)
        .await?;
    Ok(done(shop, "share"))
}

#[derive(Deserialize)]
pub struct UnmapForm {
    #[serde(flatten)]
    form: ShopForm,
    sku: String,
}

pub async fn unmap(ctx: Ctx, Form(f): Form<UnmapForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let sku = f.sku.trim();
    let mut tx = ctx.state.pool.begin().await?;
    if !inventory::unmap_sku(&mut tx, shop.id, sku).await? {
        let msg = pick(
            &ctx,
            format!("SKU「{sku}」は対応表にありません。"),
            format!("SKU {sku:?} is not mapped."),
        );
        return refused(&ctx, shop, &msg).await;
    }
    let message = format!("operator {} unmapped SKU {sku}", ctx.op.username);
    ctx.commit_change(
        tx,
        shop.id,
        Some(sku),
        "external_product_unmapped",
        &message,
    )
    .await?;
    Ok(done(shop, "unmapped"))
}

#[derive(Deserialize)]
pub struct ExportQ {
    shop: String,
    encoding: Option<String>,
}

/// The mapping as a CSV download.
pub async fn export(ctx: Ctx, Query(q): Query<ExportQ>) -> Result<Response, AppError> {
    let shop = ctx.op.shop_by_code(&q.shop).ok_or(AppError::NotFound)?;
    let encoding = Encoding::from_form(q.encoding.as_deref());
    let mut conn = ctx.state.pool.acquire().await?;
    let rows: Vec<mapping_csv::Line> = external_products::list(&mut conn, shop.id)
        .await?
        .into_iter()
        .map(|r| mapping_csv::Line {
            sku: r.sku,
            product_code: r.product_code,
            handling_days: r.handling_days,
            share_percent: r.share_percent,
            safety_stock: r.safety_stock,
        })
        .collect();
    let bytes = mapping_csv::write(&rows, encoding);
    let disposition = format!(
        "attachment; filename=\"external-products-{}.csv\"",
        shop.code
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("text/csv; charset={}", encoding.charset()),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Imports a mapping CSV (multipart: csrf, shop, encoding, file). Every line is checked (format,
/// handling days, known product code); one bad line and nothing is saved, every bad line listed.
pub async fn import(ctx: Ctx, mut form: Multipart) -> Result<Response, AppError> {
    let (mut csrf, mut shop_code, mut encoding, mut file) = (None, None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("reading the upload: {err}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("reading the upload: {err}")))?;
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "csrf" => csrf = Some(text()),
            "shop" => shop_code = Some(text()),
            "encoding" => encoding = Some(text()),
            "file" => file = Some(bytes.to_vec()),
            _ => {}
        }
    }
    ctx.check_csrf(csrf.as_deref().unwrap_or_default())?;
    let shop = ctx
        .op
        .shop_by_code(shop_code.as_deref().unwrap_or_default())
        .ok_or(AppError::NotFound)?;
    let encoding = Encoding::from_form(encoding.as_deref());
    let (rows, mut errors) = mapping_csv::read(&file.unwrap_or_default(), encoding);
    let mut tx = ctx.state.pool.begin().await?;
    let mut products = Vec::with_capacity(rows.len());
    for r in &rows {
        match catalog::product_by_code(&mut tx, shop.id, &r.product_code).await {
            Ok(p) => products.push(p.id),
            Err(StoreError::NotFound { .. }) => errors.push(LineError {
                line: r.line,
                message: format!(
                    "SKU {}: no product has the code {:?}",
                    r.sku, r.product_code
                ),
            }),
            Err(err) => return Err(err.into()),
        }
    }
    if !errors.is_empty() {
        drop(tx);
        errors.sort_by_key(|e| e.line);
        return import_refused(&ctx, shop, &errors).await;
    }
    for (r, product) in rows.iter().zip(products) {
        inventory::map_sku(&mut tx, shop.id, &r.sku, product, r.handling_days).await?;
        if r.handling_days.is_none() {
            inventory::set_handling_days(&mut tx, shop.id, &r.sku, None).await?;
        }
        if let Some(share) = r.share {
            let safety = Some(share.safety);
            inventory::set_share(&mut tx, shop.id, &r.sku, share.share, safety).await?;
        }
    }
    let message = format!(
        "operator {} imported {} mapping(s) from a CSV file ({})",
        ctx.op.username,
        rows.len(),
        encoding.charset()
    );
    ctx.commit_change(tx, shop.id, None, "external_products_imported", &message)
        .await?;
    Ok(done(shop, &rows.len().to_string()))
}

async fn import_refused(
    ctx: &Ctx,
    shop: &ShopRef,
    errors: &[LineError],
) -> Result<Response, AppError> {
    let flash = html! {
        div class="flash err" id="import-errors" {
            p {
                (ctx.t(
                    "CSVに誤りがあるため、何も保存していません:",
                    "Nothing was saved: the CSV file has errors:",
                ))
            }
            ul {
                @for err in errors {
                    li { (ctx.t("行", "line")) " " (err.line) ": " (err.message) }
                }
            }
        }
    };
    render(ctx, Some(shop), flash, StatusCode::UNPROCESSABLE_ENTITY).await
}
