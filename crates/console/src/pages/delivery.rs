//! 配送方法 / 外部連携先配送方法 / 変換ロボット: the shop's delivery methods (our name goes to
//! Amazon's shipping method), the carrier table that turns an external delivery method into
//! Amazon's carrier code, and the delivery rules in the order they are tried, with "try the
//! rules on an order" as `ctl rules test` does. Each change is written to the API log with the
//! operator's name; bad input shows why and saves nothing.

use std::fmt::Write as _;

use axum::{
    Form,
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use store::{carriers, catalog};

use crate::{
    AppError, Ctx, ShopForm,
    auth::ShopRef,
    html::{Col, badge, e, opt, table_open, url_enc},
    nz,
};

const PATH: &str = "/delivery";

#[derive(Deserialize)]
pub struct Q {
    shop: Option<String>,
    done: Option<String>,
    /// An Amazon order id to try the rules on.
    #[serde(rename = "try")]
    try_order: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Response, AppError> {
    let shop = ctx.pick_shop(nz(&q.shop))?;
    let flash = if q.done.is_some() {
        format!(
            r#"<p class="flash ok" id="done">{}</p>"#,
            e(ctx.t("保存しました。", "Saved."))
        )
    } else {
        String::new()
    };
    render(&ctx, shop, &flash, nz(&q.try_order), StatusCode::OK).await
}

async fn render(
    ctx: &Ctx,
    shop: Option<&ShopRef>,
    flash: &str,
    try_order: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let title = t(
        "配送方法・配送業者・変換ロボット",
        "Delivery methods, carriers and rules",
    );
    let mut body = String::from(flash);
    let Some(shop) = shop else {
        body.push_str(&crate::html::message(t(
            "閲覧できるショップがありません。",
            "You have no shops.",
        )));
        return Ok((status, ctx.page(title, &body)).into_response());
    };
    body.push_str(&ctx.shop_switch(&shop.code));
    let hidden = format!(
        r#"<input type="hidden" name="csrf" value="{}"><input type="hidden" name="shop" value="{}">"#,
        e(&ctx.op.csrf),
        e(&shop.code)
    );
    let mut conn = ctx.state.pool.acquire().await?;

    // 配送方法
    let methods = catalog::list_delivery_methods(&mut conn, shop.id).await?;
    let _ = write!(
        body,
        "<h2 id=\"methods\">{}</h2><p class=\"hint\">{}</p>",
        e(t("配送方法", "Delivery methods")),
        e(t(
            "配送方法名がAmazonの配送方法（ShippingMethod）になり、外部連携先配送方法が下の表で配送業者に変わります。",
            "The delivery method name becomes Amazon's shipping method; its external delivery method becomes the carrier through the table below.",
        ))
    );
    body.push_str(&table_open(
        Some("delivery-methods"),
        &[
            Col::text(t("コード", "Code")),
            Col::text(t("配送方法名", "Name")),
            Col::text(t("外部連携先配送方法", "External delivery method")),
        ],
        Some(t("配送方法はありません。", "No delivery method.")),
    ));
    for m in &methods {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&m.code),
            e(&m.name),
            opt(m.external_delivery_method.as_deref())
        );
    }
    let _ = write!(
        body,
        r#"</tbody></table><form method="post" action="{PATH}/methods" id="method-form" class="inline">{hidden}<label>{}<input name="code" required></label><label>{}<input name="name" required></label><label>{}<input name="external"></label><button type="submit" id="method-submit">{}</button></form>"#,
        e(t("コード", "Code")),
        e(t("配送方法名", "Name")),
        e(t("外部連携先配送方法", "External delivery method")),
        e(t("追加・更新", "Add or update")),
    );

    // 外部連携先配送方法 → Amazon carrier
    let mappings = carriers::effective(&mut conn, shop.id).await?;
    let _ = write!(
        body,
        "<h2 id=\"carriers\">{}</h2>",
        e(t(
            "外部連携先配送方法と配送業者",
            "External delivery methods and carriers"
        ))
    );
    body.push_str(&table_open(
        Some("carrier-mappings"),
        &[
            Col::text(t("外部連携先配送方法", "External delivery method")),
            Col::text(t("配送業者コード", "Carrier code")),
            Col::text(t("配送業者名", "Carrier name")),
            Col::text(t("問番の形式", "Tracking number format")),
            Col::text(t("適用範囲", "Scope")),
            Col::text(""),
        ],
        None,
    ));
    for m in &mappings {
        let scope = if m.shop_id.is_some() {
            badge("ok", t("このショップ", "This shop"))
        } else {
            badge("neutral", t("既定", "Default"))
        };
        let remove = if m.shop_id.is_some() {
            format!(
                r#"<form method="post" action="{PATH}/carriers/remove">{hidden}<input type="hidden" name="external" value="{}"><button type="submit" class="remove">{}</button></form>"#,
                e(&m.external_delivery_method),
                e(t("削除", "Remove"))
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{scope}</td><td>{remove}</td></tr>",
            e(&m.external_delivery_method),
            e(&m.carrier_code),
            opt(m.carrier_name.as_deref()),
            opt(m.tracking_pattern.as_deref()),
        );
    }
    let _ = write!(
        body,
        r#"</tbody></table><form method="post" action="{PATH}/carriers" id="carrier-form" class="inline">{hidden}<label>{}<input name="external" required></label><label>{}<input name="code" required placeholder="YamatoTransport / Other"></label><label>{}<input name="name"></label><label>{}<input name="pattern" placeholder="^[0-9]{{12}}$"></label><button type="submit" id="carrier-submit">{}</button></form>"#,
        e(t("外部連携先配送方法", "External delivery method")),
        e(t("配送業者コード", "Carrier code")),
        e(t(
            "配送業者名（Otherのとき必須）",
            "Carrier name (needed with Other)"
        )),
        e(t(
            "問番の形式（正規表現）",
            "Tracking number format (regular expression)"
        )),
        e(t("追加・更新", "Add or update")),
    );

    // 変換ロボット
    let rules = catalog::list_rules(&mut conn, shop.id).await?;
    let _ = write!(
        body,
        "<h2 id=\"rules\">{}</h2>",
        e(t("変換ロボット（配送方法の自動設定）", "Delivery rules"))
    );
    body.push_str(&table_open(
        Some("delivery-rules"),
        &[
            Col::num(t("順番", "Position")),
            Col::text(t("ルール名", "Rule")),
            Col::text(t("条件", "Conditions")),
            Col::text(t("配送方法", "Delivery method")),
            Col::text(t("有効", "Enabled")),
        ],
        Some(t("ルールはありません。", "No rule.")),
    ));
    for r in &rules {
        let _ = write!(
            body,
            r#"<tr><td class="num">{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>"#,
            r.position,
            e(&r.name),
            e(r.conditions.to_string()),
            e(&r.delivery_method.code),
            if r.enabled { "✓" } else { "—" }
        );
    }
    let _ = write!(
        body,
        r#"</tbody></table><p class="hint">{}</p><form method="get" action="{PATH}#trial" id="try-form" class="inline"><input type="hidden" name="shop" value="{}"><label>{}<input name="try" value="{}" placeholder="503-1234567-1234567"></label><button type="submit" id="try-submit">{}</button></form>"#,
        e(t(
            "上から順に試し、最初に一致したルールの配送方法を設定します。ルールの追加・削除は ctl rules add / remove。",
            "Tried from the top; the first rule that matches sets the delivery method. Add or remove rules with ctl rules add / remove.",
        )),
        e(&shop.code),
        e(t("注文番号でルールを試す", "Try the rules on an order")),
        e(try_order.unwrap_or_default()),
        e(t("試す", "Try")),
    );
    if let Some(order) = try_order {
        match orders::try_rules(&mut conn, &ctx.state.keys, shop.id, order).await {
            Ok(trial) => {
                let _ = write!(
                    body,
                    r#"<div id="trial"><p>{} {} · {} {} · {} {} · SKU {}</p><table id="rule-trial"><tbody>"#,
                    e(t("マーケットプレイス", "Marketplace")),
                    e(trial.marketplace.code()),
                    e(t("配送サービス", "Service level")),
                    opt(trial.ship_service_level.as_deref()),
                    e(t("都道府県", "State")),
                    opt(trial.state.as_deref()),
                    e(trial.skus.join(", "))
                );
                for (position, method, matches) in &trial.verdicts {
                    let _ = write!(
                        body,
                        r#"<tr><td class="num">{position}</td><td>{}</td><td>{}</td></tr>"#,
                        e(method),
                        if *matches {
                            badge("ok", t("一致", "matches"))
                        } else {
                            "—".to_owned()
                        }
                    );
                }
                let _ = write!(
                    body,
                    r#"</tbody></table><p id="trial-winner">→ {}</p></div>"#,
                    e(trial
                        .winner
                        .as_deref()
                        .unwrap_or(domain::PLACEHOLDER_DELIVERY_METHOD))
                );
            }
            Err(orders::TrialError::Store(err)) => return Err(err.into()),
            Err(err) => {
                let _ = write!(
                    body,
                    r#"<p class="flash err" id="trial">{}</p>"#,
                    e(err.to_string())
                );
            }
        }
    }
    Ok((status, ctx.page(title, &body)).into_response())
}

async fn refused(ctx: &Ctx, shop: &ShopRef, msg: &str) -> Result<Response, AppError> {
    let flash = format!(r#"<p class="flash err" id="refused">{}</p>"#, e(msg));
    render(
        ctx,
        Some(shop),
        &flash,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

fn saved(shop: &ShopRef, anchor: &str) -> Response {
    Redirect::to(&format!(
        "{PATH}?shop={}&done=1#{anchor}",
        url_enc(&shop.code)
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct MethodForm {
    #[serde(flatten)]
    form: ShopForm,
    code: String,
    name: String,
    external: Option<String>,
}

pub async fn save_method(ctx: Ctx, Form(f): Form<MethodForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let (code, name) = (f.code.trim(), f.name.trim());
    if code.is_empty() || name.is_empty() {
        let msg = ctx.t(
            "コードと配送方法名を入力してください。",
            "Enter the code and the name.",
        );
        return refused(&ctx, shop, msg).await;
    }
    let external = nz(&f.external);
    let mut tx = ctx.state.pool.begin().await?;
    catalog::upsert_delivery_method(&mut tx, shop.id, code, name, external).await?;
    let message = format!(
        "operator {} saved delivery method {code} ({name}), external delivery method {}",
        ctx.op.username,
        external.unwrap_or("-")
    );
    ctx.commit_change(tx, shop.id, None, "delivery_method_saved", &message)
        .await?;
    Ok(saved(shop, "methods"))
}

#[derive(Deserialize)]
pub struct CarrierForm {
    #[serde(flatten)]
    form: ShopForm,
    external: String,
    code: String,
    name: Option<String>,
    pattern: Option<String>,
}

pub async fn save_carrier(ctx: Ctx, Form(f): Form<CarrierForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let new = carriers::NewMapping {
        shop_id: Some(shop.id),
        external_delivery_method: f.external.trim(),
        carrier_code: f.code.trim(),
        carrier_name: nz(&f.name),
        tracking_pattern: nz(&f.pattern),
    };
    if let Some(problem) = new.invalid() {
        return refused(&ctx, shop, &problem).await;
    }
    let mut tx = ctx.state.pool.begin().await?;
    if let Some(p) = new.tracking_pattern {
        let mut sp = sqlx::Connection::begin(&mut *tx).await?;
        let ok = carriers::check_pattern(&mut sp, p).await.is_ok();
        drop(sp);
        if !ok {
            let msg = format!("{p:?} is not a valid regular expression (e.g. ^[0-9]{{12}}$)");
            return refused(&ctx, shop, &msg).await;
        }
    }
    let m = carriers::upsert(&mut tx, &new).await?;
    let message = format!(
        "operator {} mapped external delivery method {} to carrier {}{}",
        ctx.op.username,
        m.external_delivery_method,
        m.carrier_code,
        m.carrier_name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    ctx.commit_change(tx, shop.id, None, "carrier_mapping_saved", &message)
        .await?;
    Ok(saved(shop, "carriers"))
}

#[derive(Deserialize)]
pub struct RemoveCarrierForm {
    #[serde(flatten)]
    form: ShopForm,
    external: String,
}

pub async fn remove_carrier(
    ctx: Ctx,
    Form(f): Form<RemoveCarrierForm>,
) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let mut tx = ctx.state.pool.begin().await?;
    if !carriers::remove(&mut tx, Some(shop.id), &f.external).await? {
        let msg = format!("this shop has no own mapping for {:?}", f.external);
        return refused(&ctx, shop, &msg).await;
    }
    let message = format!(
        "operator {} removed the shop's carrier mapping of {}",
        ctx.op.username, f.external
    );
    ctx.commit_change(tx, shop.id, None, "carrier_mapping_removed", &message)
        .await?;
    Ok(saved(shop, "carriers"))
}
