//! 配送方法 / 外部連携先配送方法 / 変換ロボット: the shop's delivery methods (our name goes to
//! Amazon's shipping method), the carrier table that turns an external delivery method into
//! Amazon's carrier code, and the delivery rules in the order they are tried (added and removed
//! here too), with "try the rules on an order" as `ctl rules test` does. Each change is written to the API log with the
//! operator's name; bad input shows why and saves nothing.

use axum::{
    Form,
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use domain::carrier::AmazonCarrier;
use maud::{Markup, html};
use serde::Deserialize;
use store::{StoreError, carriers, catalog};

use crate::{
    AppError, Ctx, ShopForm,
    auth::ShopRef,
    html::{Col, badge, flash, opt, table, url_enc},
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
    let flash = html! {
        @if q.done.is_some() {
            (flash("ok", "done", ctx.t("保存しました。", "Saved.")))
        }
    };
    render(&ctx, shop, flash, nz(&q.try_order), StatusCode::OK).await
}

async fn render(
    ctx: &Ctx,
    shop: Option<&ShopRef>,
    flash: Markup,
    try_order: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let title = t(
        "配送方法・配送業者・変換ロボット",
        "Delivery methods, carriers and rules",
    );
    let Some(shop) = shop else {
        return Ok(ctx.no_shops_page(title, flash, status));
    };
    let hidden = ctx.shop_form_fields(&shop.code);
    let mut conn = ctx.state.pool.acquire().await?;

    // 配送方法
    let methods = catalog::list_delivery_methods(&mut conn, shop.id).await?;
    let methods_html = html! {
        h2 id="methods" { (t("配送方法", "Delivery methods")) }
        p class="hint" {
            (t(
                "配送方法名がAmazonの配送方法（ShippingMethod）になり、外部連携先配送方法が下の表で配送業者に変わります。",
                "The delivery method name becomes Amazon's shipping method; its external delivery method becomes the carrier through the table below.",
            ))
        }
        (table(
            Some("delivery-methods"),
            &[
                Col::text(t("コード", "Code")),
                Col::text(t("配送方法名", "Name")),
                Col::text(t("外部連携先配送方法", "External delivery method")),
            ],
            methods.is_empty().then(|| t("配送方法はありません。", "No delivery method.")),
            html! {
                @for m in &methods {
                    tr {
                        td { (m.code) }
                        td { (m.name) }
                        td { (opt(m.external_delivery_method.as_deref())) }
                    }
                }
            },
        ))
        form method="post" action={ (PATH) "/methods" } id="method-form" class="inline" {
            (hidden)
            label { (t("コード", "Code")) input name="code" required; }
            label { (t("配送方法名", "Name")) input name="name" required; }
            label { (t("外部連携先配送方法", "External delivery method")) input name="external"; }
            button type="submit" id="method-submit" { (t("追加・更新", "Add or update")) }
        }
    };

    // 外部連携先配送方法 → Amazon carrier
    let mappings = carriers::effective(&mut conn, shop.id).await?;
    let carriers_html = html! {
        h2 id="carriers" { (t("外部連携先配送方法と配送業者", "External delivery methods and carriers")) }
        (table(
            Some("carrier-mappings"),
            &[
                Col::text(t("外部連携先配送方法", "External delivery method")),
                Col::text(t("配送業者コード", "Carrier code")),
                Col::text(t("配送業者名", "Carrier name")),
                Col::text(t("Amazonへの送信値", "Sent to Amazon as")),
                Col::text(t("問番の形式", "Tracking number format")),
                Col::text(t("適用範囲", "Scope")),
                Col::text(""),
            ],
            None,
            html! {
                @for m in &mappings {
                    tr {
                        td { (m.external_delivery_method) }
                        td { (m.carrier_code) }
                        td { (opt(m.carrier_name.as_deref())) }
                        td class="sent-as" {
                            @match m.amazon_carrier() {
                                AmazonCarrier::Listed(code) => { (code) }
                                AmazonCarrier::Other(name) => { "Other: " (name) }
                            }
                        }
                        td { (opt(m.tracking_pattern.as_deref())) }
                        td {
                            @if m.shop_id.is_some() {
                                (badge("ok", t("このショップ", "This shop")))
                            } @else {
                                (badge("neutral", t("既定", "Default")))
                                @for code in m.marketplace_codes() {
                                    " " (badge("neutral", code))
                                }
                            }
                        }
                        td {
                            @if m.shop_id.is_some() {
                                form method="post" action={ (PATH) "/carriers/remove" } {
                                    (hidden)
                                    input type="hidden" name="external" value=(m.external_delivery_method);
                                    button type="submit" class="remove" { (t("削除", "Remove")) }
                                }
                            }
                        }
                    }
                }
            },
        ))
        form method="post" action={ (PATH) "/carriers" } id="carrier-form" class="inline" {
            (hidden)
            label { (t("外部連携先配送方法", "External delivery method")) input name="external" required; }
            label { (t("配送業者コード", "Carrier code")) input name="code" required placeholder="YamatoTransport / Other"; }
            label { (t("配送業者名（Otherのとき必須）", "Carrier name (needed with Other)")) input name="name"; }
            label {
                (t("問番の形式（正規表現）", "Tracking number format (regular expression)"))
                input name="pattern" placeholder="^[0-9]{12}$";
            }
            button type="submit" id="carrier-submit" { (t("追加・更新", "Add or update")) }
        }
    };

    // 変換ロボット
    let rules = catalog::list_rules(&mut conn, shop.id).await?;
    let rules_html = html! {
        h2 id="rules" { (t("変換ロボット（配送方法の自動設定）", "Delivery rules")) }
        (table(
            Some("delivery-rules"),
            &[
                Col::num(t("順番", "Position")),
                Col::text(t("ルール名", "Rule")),
                Col::text(t("条件", "Conditions")),
                Col::text(t("配送方法", "Delivery method")),
                Col::text(t("有効", "Enabled")),
                Col::text(""),
            ],
            rules.is_empty().then(|| t("ルールはありません。", "No rule.")),
            html! {
                @for r in &rules {
                    tr {
                        td class="num" { (r.position) }
                        td { (r.name) }
                        td { code { (r.conditions) } }
                        td { (r.delivery_method.code) }
                        td { (if r.enabled { "✓" } else { "—" }) }
                        td {
                            form method="post" action={ (PATH) "/rules/remove" } {
                                (hidden)
                                input type="hidden" name="position" value=(r.position);
                                button type="submit" class="remove" { (t("削除", "Remove")) }
                            }
                        }
                    }
                }
            },
        ))
        form method="post" action={ (PATH) "/rules" } id="rule-form" class="inline" {
            (hidden)
            label { (t("順番", "Position")) input name="position" inputmode="numeric" required; }
            label { (t("ルール名", "Rule")) input name="name" required; }
            label {
                (t("配送方法", "Delivery method"))
                select name="method" {
                    @for m in &methods {
                        option value=(m.code) { (m.code) " (" (m.name) ")" }
                    }
                }
            }
            label {
                (t("マーケットプレイス（カンマ区切り）", "Marketplaces (comma-separated)"))
                input name="marketplaces" placeholder="JP,AU";
            }
            label { (t("配送サービス", "Service levels")) input name="service_levels" placeholder="Expedited"; }
            label { (t("都道府県", "States")) input name="states" placeholder="北海道,沖縄県"; }
            label { "SKU" input name="skus"; }
            label { (t("合計金額の下限", "Minimum total")) input name="min_total" inputmode="decimal"; }
            label { (t("合計金額の上限", "Maximum total")) input name="max_total" inputmode="decimal"; }
            label {
                "Prime"
                select name="prime" {
                    option value="" { (t("問わない", "Any")) }
                    option value="true" { (t("Primeのみ", "Prime only")) }
                    option value="false" { (t("Prime以外", "Not Prime")) }
                }
            }
            label {
                (t("日時指定", "Time slot"))
                select name="time_slot" {
                    option value="" { (t("問わない", "Any")) }
                    option value="true" { (t("日時指定ありのみ", "Time slot given")) }
                    option value="false" { (t("日時指定なしのみ", "No time slot")) }
                }
            }
            button type="submit" id="rule-submit" { (t("ルールを追加", "Add the rule")) }
        }
        p class="hint" {
            (t(
                "上から順に試し、最初に一致したルールの配送方法を設定します（ctl rules add / remove でも変更できます）。",
                "Tried from the top; the first rule that matches sets the delivery method (ctl rules add / remove change them too).",
            ))
        }
        form method="get" action={ (PATH) "#trial" } id="try-form" class="inline" {
            input type="hidden" name="shop" value=(shop.code);
            label {
                (t("注文番号でルールを試す", "Try the rules on an order"))
                input name="try" value=(try_order.unwrap_or_default()) placeholder="503-1234567-1234567";
            }
            button type="submit" id="try-submit" { (t("試す", "Try")) }
        }
    };
    let trial_html = match try_order {
        None => html! {},
        Some(order) => match orders::try_rules(&mut conn, &ctx.state.keys, shop.id, order).await {
            Ok(trial) => html! {
                div id="trial" {
                    p {
                        (t("マーケットプレイス", "Marketplace")) " " (trial.marketplace.code())
                        " · " (t("配送サービス", "Service level")) " " (opt(trial.ship_service_level.as_deref()))
                        " · " (t("都道府県", "State")) " " (opt(trial.state.as_deref()))
                        " · SKU " (trial.skus.join(", "))
                        " · Prime " (if trial.prime { t("はい", "yes") } else { t("いいえ", "no") })
                        " · " (t("日時指定", "Time slot")) " " (if trial.time_slot { t("あり", "yes") } else { t("なし", "no") })
                    }
                    table id="rule-trial" {
                        tbody {
                            @for (position, method, matches) in &trial.verdicts {
                                tr {
                                    td class="num" { (position) }
                                    td { (method) }
                                    td {
                                        @if *matches {
                                            (badge("ok", t("一致", "matches")))
                                        } @else {
                                            "—"
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p id="trial-winner" {
                        "→ " (trial.winner.as_deref().unwrap_or(domain::PLACEHOLDER_DELIVERY_METHOD))
                    }
                }
            },
            Err(orders::TrialError::Store(err)) => return Err(err.into()),
            Err(err) => crate::html::flash("err", "trial", &err.to_string()),
        },
    };
    let body = html! {
        (flash)
        (ctx.shop_switch(&shop.code))
        (methods_html)
        (carriers_html)
        (rules_html)
        (trial_html)
    };
    Ok((status, ctx.page(title, body)).into_response())
}

async fn refused(ctx: &Ctx, shop: &ShopRef, msg: &str) -> Result<Response, AppError> {
    let flash = flash("err", "refused", msg);
    render(
        ctx,
        Some(shop),
        flash,
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
        marketplaces: None,
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

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(flatten)]
    form: ShopForm,
    position: String,
    name: String,
    method: String,
    marketplaces: Option<String>,
    service_levels: Option<String>,
    states: Option<String>,
    skus: Option<String>,
    min_total: Option<String>,
    max_total: Option<String>,
    prime: Option<String>,
    time_slot: Option<String>,
}

/// A comma-separated form field as a list (blank items dropped; `、` counts as a comma).
fn list(v: &Option<String>) -> Vec<String> {
    nz(v).map_or_else(Vec::new, |v| {
        v.split([',', '、'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// The rule's conditions from the form, or why they are not valid.
fn conditions(f: &RuleForm) -> Result<domain::delivery_rules::RuleConditions, String> {
    let marketplaces = list(&f.marketplaces)
        .iter()
        .map(|m| m.parse::<domain::Marketplace>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let amount =
        |v: &Option<String>, what: &str| -> Result<Option<rust_decimal::Decimal>, String> {
            nz(v)
                .map(|s| {
                    s.replace(',', "")
                        .parse()
                        .map_err(|_| format!("{what} {s:?} is not an amount (e.g. 5000 or 49.95)"))
                })
                .transpose()
        };
    let c = domain::delivery_rules::RuleConditions {
        marketplaces,
        ship_service_levels: list(&f.service_levels),
        states: list(&f.states),
        skus: list(&f.skus),
        min_total: amount(&f.min_total, "the minimum total")?,
        max_total: amount(&f.max_total, "the maximum total")?,
        prime: match nz(&f.prime) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
        time_slot: match nz(&f.time_slot) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
    };
    match c.impossible() {
        Some(why) => Err(why),
        None => Ok(c),
    }
}

pub async fn add_rule(ctx: Ctx, Form(f): Form<RuleForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let Ok(position) = f.position.trim().parse::<i32>() else {
        let msg = format!("position {:?} is not a whole number", f.position);
        return refused(&ctx, shop, &msg).await;
    };
    let name = f.name.trim();
    if name.is_empty() {
        let msg = ctx.t("ルール名を入力してください。", "Enter the rule's name.");
        return refused(&ctx, shop, msg).await;
    }
    let conditions = match conditions(&f) {
        Ok(c) => c,
        Err(why) => return refused(&ctx, shop, &why).await,
    };
    let mut tx = ctx.state.pool.begin().await?;
    let method = match catalog::delivery_method_by_code(&mut tx, shop.id, f.method.trim()).await {
        Ok(m) => m,
        Err(StoreError::NotFound { .. }) => {
            let msg = format!("no delivery method has the code {:?}", f.method.trim());
            return refused(&ctx, shop, &msg).await;
        }
        Err(err) => return Err(err.into()),
    };
    match catalog::add_rule(&mut tx, shop.id, position, name, &conditions, method.id).await {
        Ok(_) => {}
        Err(StoreError::Duplicate { .. }) => {
            let msg =
                format!("a rule is already at position {position}: remove it or choose another");
            return refused(&ctx, shop, &msg).await;
        }
        Err(err) => return Err(err.into()),
    }
    let message = format!(
        "operator {} added delivery rule {name} at position {position} → {} when {}",
        ctx.op.username,
        method.code,
        serde_json::to_string(&conditions).unwrap_or_default()
    );
    ctx.commit_change(tx, shop.id, None, "delivery_rule_added", &message)
        .await?;
    Ok(saved(shop, "rules"))
}

#[derive(Deserialize)]
pub struct RemoveRuleForm {
    #[serde(flatten)]
    form: ShopForm,
    position: i32,
}

pub async fn remove_rule(ctx: Ctx, Form(f): Form<RemoveRuleForm>) -> Result<Response, AppError> {
    let shop = ctx.posted_shop(&f.form)?;
    let mut tx = ctx.state.pool.begin().await?;
    if !catalog::remove_rule(&mut tx, shop.id, f.position).await? {
        let msg = format!("no rule at position {}", f.position);
        return refused(&ctx, shop, &msg).await;
    }
    let message = format!(
        "operator {} removed the delivery rule at position {}",
        ctx.op.username, f.position
    );
    ctx.commit_change(tx, shop.id, None, "delivery_rule_removed", &message)
        .await?;
    Ok(saved(shop, "rules"))
}
