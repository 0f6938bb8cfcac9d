//! 自動実行 (schedules): when each action runs for a shop (cron expressions in the shop's time
//! zone), with the next run and the last slot fired; an operator changes a cadence or pauses an
//! entry here. Every change is checked first (a bad expression shows the page again with why,
//! nothing saved) and written with the operator's name on the entry and in the API log
//! (`store::schedules`). The scheduler (`ctl scheduler tick`) picks it up at its next minute.

use axum::{
    Form,
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use chrono_tz::Tz;
use domain::{
    messages::Action,
    schedule::{self, Cadence, CadenceProblem, DEFAULT_ENTRY, END_OF_DAY_ENTRY, InvalidCadence},
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::{
    AppError, Ctx,
    auth::ShopRef,
    html::{Col, badge, flash, table, time, time_opt, url_enc},
    i18n::Lang,
    nz,
};

#[derive(Deserialize)]
pub struct Q {
    shop: Option<String>,
    /// `action/entry` of the entry just changed (after the redirect).
    changed: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Response, AppError> {
    let shop = ctx.pick_shop(nz(&q.shop))?;
    let changed = nz(&q.changed)
        .and_then(|c| c.split_once('/'))
        .and_then(|(action, entry)| Some((action.parse::<Action>().ok()?, entry)));
    let flash = html! {
        @if let Some((a, entry)) = changed {
            p class="flash ok" id="schedule-saved" {
                (ctx.t("自動実行を変更しました:", "Schedule changed:"))
                " "
                (entry_title(ctx.lang, a, entry))
            }
        }
    };
    render(&ctx, shop, flash, None, StatusCode::OK).await
}

/// `出荷指示取得（終業時）`: an entry's action and name in the operator's language.
fn entry_title(lang: Lang, action: Action, entry: &str) -> String {
    let name = match entry {
        DEFAULT_ENTRY => lang.t("通常", "regular").to_owned(),
        END_OF_DAY_ENTRY => lang.t("終業時", "end of day").to_owned(),
        other => other.to_owned(),
    };
    match lang {
        Lang::Ja => format!("{}（{name}）", lang.action(action)),
        Lang::En => format!("{} ({name})", lang.action(action)),
    }
}

/// A refused cron expression, in the operator's language.
pub(crate) fn refusal(lang: Lang, err: &InvalidCadence) -> String {
    match lang {
        Lang::Ja => {
            let problem = match &err.problem {
                CadenceProblem::Empty => "空です".to_owned(),
                CadenceProblem::FieldCount(n) => format!("項目が{n}個あります。5個必要です"),
                CadenceProblem::Syntax(m) => format!("書式が正しくありません: {m}"),
                CadenceProblem::NeverMatches => "該当する日付がありません".to_owned(),
            };
            format!(
                "「{}」は実行間隔として使えません（{problem}）。ショップのタイムゾーンでの cron 形式、5項目（分 時 日 月 曜日）で指定してください。例: */15 * * * *（15分ごと）、55 23 * * *（毎日23:55）。何も保存していません。",
                err.input
            )
        }
        Lang::En => format!("{err}. Nothing was saved."),
    }
}

/// The row being corrected after a refusal: its action, entry and what was typed.
type Retry<'a> = (Action, &'a str, &'a str);

async fn render(
    ctx: &Ctx,
    shop: Option<&ShopRef>,
    flash: Markup,
    retry: Option<Retry<'_>>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let title = t("自動実行", "Schedules");
    let Some(shop) = shop else {
        return Ok(ctx.no_shops_page(title, flash, status));
    };
    let tz: Tz = shop.time_zone.parse().unwrap_or(ctx.state.tz);
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::schedules::list(&mut conn, &[shop.id]).await?;
    let now = Utc::now();
    let rows_html = html! {
        @for r in &rows {
            @let hidden = |op: &str| html! {
                (ctx.shop_form_fields(&shop.code))
                input type="hidden" name="action" value=(r.action.as_str());
                input type="hidden" name="entry" value=(r.entry);
                input type="hidden" name="op" value=(op);
            };
            @let retrying = retry.filter(|(a, en, _)| *a == r.action && *en == r.entry);
            @let value = retrying.map_or(r.cron.as_str(), |(_, _, typed)| typed);
            @let (toggle_op, toggle_label) = if r.enabled {
                ("disable", t("停止", "Pause"))
            } else {
                ("enable", t("再開", "Resume"))
            };
            tr id={ "schedule-" (r.action.as_str()) "-" (r.entry) } {
                td { (entry_title(ctx.lang, r.action, &r.entry)) }
                td {
                    form method="post" action="/schedules" class="inline" {
                        (hidden("set"))
                        input type="text" name="cron" value=(value) required size="16" aria-label="cron"
                            aria-invalid=[retrying.map(|_| "true")] autofocus[retrying.is_some()];
                        " "
                        button type="submit" class="save" { (t("保存", "Save")) }
                    }
                }
                td {
                    @if r.enabled {
                        (badge("ok", t("有効", "Enabled")))
                    } @else {
                        (badge("neutral", t("停止中", "Paused")))
                    }
                }
                td { (time_opt(r.next_run(tz, now), tz)) }
                td { (time_opt(r.last_fired_slot, tz)) }
                td {
                    (match r.updated_by.as_str() {
                        store::schedules::DEFAULTS_BY => t("初期設定", "defaults"),
                        "migration" => t("初期設定（移行）", "defaults (migration)"),
                        other => other,
                    })
                    br;
                    span class="hint" { (time(r.updated_at, tz)) }
                }
                td {
                    form method="post" action="/schedules" class="inline" {
                        (hidden(toggle_op))
                        button type="submit" class="secondary toggle" { (toggle_label) }
                    }
                }
            }
        }
    };
    let body = html! {
        (flash)
        (ctx.shop_switch(&shop.code))
        p class="hint" {
            (t("対象ショップ:", "Shop:")) " " b { (shop.name) } " (" (shop.code) ") — "
            (t(
                "実行間隔と時刻はショップのタイムゾーン:",
                "Cadences and times are in the shop's time zone:"
            ))
            " " b { (tz.name()) } ". "
            (t(
                "変更は次の1分以内に反映されます（デプロイ不要）。",
                "A change applies within the next minute (no deploy).",
            ))
        }
        (table(
            Some("schedules"),
            &[
                Col::text(t("アクション", "Action")),
                Col::text(t("実行間隔（cron）", "Cadence (cron)")),
                Col::text(t("状態", "State")),
                Col::text(t("次回実行", "Next run")),
                Col::text(t("最終実行", "Last fired")),
                Col::text(t("変更者", "Changed by")),
                Col::text(""),
            ],
            rows.is_empty()
                .then(|| t("自動実行はありません", "No schedules")),
            rows_html,
        ))
        div class="todo" id="cron-help" {
            b { (t("書き方:", "Format:")) }
            " "
            (t(
                "分 時 日 月 曜日（5項目、ショップのタイムゾーン）。",
                "minute hour day-of-month month day-of-week (five fields, the shop's time zone).",
            ))
            br;
            code { "*/15 * * * *" } " " (t("15分ごと", "every 15 minutes")) " · "
            code { "5-59/15 * * * *" } " " (t("15分ごと（5分から）", "every 15 minutes from :05")) " · "
            code { "0 * * * *" } " " (t("毎時0分", "hourly on the hour")) " · "
            code { "55 23 * * *" } " " (t("毎日23:55", "23:55 every day")) " · "
            code { "0 9-18 * * 1-5" } " " (t("平日9〜18時の毎時0分", "hourly 9:00–18:00 on weekdays"))
        }
    };
    Ok((status, ctx.page(title, body)).into_response())
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    shop: String,
    action: String,
    entry: String,
    op: String,
    cron: Option<String>,
}

/// A change to one entry: `op` = `set` (the cadence in `cron`), `enable` or `disable`.
pub async fn change(ctx: Ctx, Form(f): Form<ChangeForm>) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf)?;
    let shop = ctx.op.shop_by_code(&f.shop).ok_or(AppError::NotFound)?;
    let action: Action = match f.action.parse() {
        Ok(a) => a,
        Err(err) => return refused(&ctx, shop, format!("{err}"), None).await,
    };
    let entry = match schedule::entry_name(&f.entry) {
        Ok(en) => en,
        Err(err) => return refused(&ctx, shop, format!("{err}"), None).await,
    };
    let mut conn = ctx.state.pool.acquire().await?;
    let operator = ctx.op.username.as_str();
    match f.op.as_str() {
        "set" => {
            let typed = f.cron.as_deref().unwrap_or_default();
            let cadence: Cadence = match typed.parse() {
                Ok(c) => c,
                Err(err) => {
                    tracing::info!(shop = %shop.code, %action, entry, input = typed, "console schedule change refused");
                    return refused(
                        &ctx,
                        shop,
                        refusal(ctx.lang, &err),
                        Some((action, entry, typed)),
                    )
                    .await;
                }
            };
            store::schedules::set_cron(&mut conn, shop.id, action, entry, &cadence, operator)
                .await?;
        }
        "enable" | "disable" => {
            let enabled = f.op == "enable";
            match store::schedules::set_enabled(
                &mut conn,
                shop.id,
                Some(action),
                Some(entry),
                enabled,
                operator,
            )
            .await
            {
                Ok(_) => {}
                Err(store::StoreError::NotFound { .. }) => {
                    return refused(
                        &ctx,
                        shop,
                        format!(
                            "{} {}",
                            entry_title(ctx.lang, action, entry),
                            ctx.t(
                                "という自動実行はありません。何も保存していません。",
                                "is not a schedule of this shop. Nothing was saved."
                            )
                        ),
                        None,
                    )
                    .await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        other => {
            return refused(
                &ctx,
                shop,
                format!(
                    "{} {other:?}",
                    ctx.t("不明な操作です:", "Unknown operation:")
                ),
                None,
            )
            .await;
        }
    }
    tracing::info!(shop = %shop.code, %action, entry, op = %f.op, operator, "console schedule changed");
    Ok(Redirect::to(&format!(
        "/schedules?shop={}&changed={}",
        url_enc(&shop.code),
        url_enc(&format!("{}/{entry}", action.as_str()))
    ))
    .into_response())
}

/// The page again with why the change was refused (HTTP 422); nothing was saved.
async fn refused(
    ctx: &Ctx,
    shop: &ShopRef,
    msg: String,
    retry: Option<Retry<'_>>,
) -> Result<Response, AppError> {
    let flash = flash("err", "schedule-error", &msg);
    render(
        ctx,
        Some(shop),
        flash,
        retry,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}
