//! Read-only pages: shops, runs (ledger), API log, feeds and their messages, attention list.

use std::fmt::Write as _;

use axum::{
    extract::{Path, Query},
    response::Html,
};
use domain::messages::Action;
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    AppError, Ctx,
    html::{badge, e, opt, options, time, time_opt, time_s, url_enc},
    nz,
};

// ---------------------------------------------------------------- shops

pub async fn shops(ctx: Ctx) -> Result<Html<String>, AppError> {
    let body = shops_table(&ctx, &ctx.op.shop_ids()).await?;
    Ok(ctx.page(ctx.t("ショップ", "Shops"), &body))
}

pub async fn shop(ctx: Ctx, Path(code): Path<String>) -> Result<Html<String>, AppError> {
    let ids = ctx.scope(Some(&code))?;
    let mut body = shops_table(&ctx, &ids).await?;
    let mut conn = ctx.state.pool.acquire().await?;
    let runs = store::runs::recent(&mut conn, ids.first().copied(), None, 20).await?;
    let _ = write!(body, "<h2>{}</h2>", e(ctx.t("最近の実行", "Recent runs")));
    body.push_str(&runs_table(&ctx, &runs));
    let _ = write!(
        body,
        r#"<p><a class="button" href="/actions?shop={0}">{1}</a> <a href="/instructions?shop={0}">{2}</a> · <a href="/api-log?shop={0}">{3}</a></p>"#,
        url_enc(&code),
        e(ctx.t("アクション実行", "Actions")),
        e(ctx.t("タスク一覧", "Shipping instructions")),
        e(ctx.t("APIログ", "API log")),
    );
    Ok(ctx.page(&format!("{} {code}", ctx.t("ショップ", "Shop")), &body))
}

async fn shops_table(ctx: &Ctx, ids: &[Uuid]) -> Result<String, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let rows = sqlx::query!(
        r#"SELECT s.id, s.code, s.name, s.seller_id, s.marketplaces, s.time_zone, s.shipment_strategy,
                  s.auth_status, s.auth_error, s.active, s.updated_at,
                  (SELECT max(finished_at) FROM action_runs r WHERE r.shop_id = s.id AND r.status = 'succeeded') AS last_ok
           FROM shops s WHERE s.id = ANY($1) ORDER BY s.code"#,
        ids
    )
    .fetch_all(&ctx.state.pool)
    .await?;
    let mut h = format!(
        r#"<table id="shops"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("コード", "Code")),
        e(t("名前", "Name")),
        e(t("セラーID", "Seller id")),
        e(t("マーケットプレイス", "Marketplaces")),
        e(t("タイムゾーン", "Time zone")),
        e(t("出荷実績の送信方法", "Shipment return")),
        e(t("認可状態", "Authorization")),
        e(t("最終成功実行", "Last successful run")),
    );
    if rows.is_empty() {
        let _ = write!(
            h,
            r#"<tr><td colspan="8">{}</td></tr>"#,
            e(t("閲覧できるショップがありません", "You have no shops"))
        );
    }
    for r in rows {
        let auth = if r.auth_status == "needs_reauthorization" {
            format!(
                r#"{}<div class="msg">{}</div><div class="todo">{}</div>"#,
                badge(&r.auth_status, &ctx.lang.auth_status(&r.auth_status)),
                opt(r.auth_error.as_deref()),
                e(t(
                    "セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを登録してください（ctl shop reauthorize）。",
                    "Re-authorize the app in Seller Central and store the new refresh token (ctl shop reauthorize)."
                ))
            )
        } else {
            badge(&r.auth_status, &ctx.lang.auth_status(&r.auth_status))
        };
        let inactive = if r.active {
            String::new()
        } else {
            format!(" {}", badge("neutral", t("停止中", "inactive")))
        };
        let _ = write!(
            h,
            r#"<tr><td><a href="/shops/{code_u}">{code}</a>{inactive}</td><td>{name}</td><td>{seller}</td><td>{mps}</td><td>{tz}</td><td>{strategy}</td><td>{auth}</td><td>{last}</td></tr>"#,
            code_u = url_enc(&r.code),
            code = e(&r.code),
            name = e(&r.name),
            seller = e(&r.seller_id),
            mps = e(r.marketplaces.join(", ")),
            tz = e(&r.time_zone),
            strategy = e(match r.shipment_strategy.as_str() {
                "feed" => t(
                    "フィード（POST_ORDER_FULFILLMENT_DATA）",
                    "Feed (POST_ORDER_FULFILLMENT_DATA)"
                ),
                "confirm_shipment" => "confirmShipment",
                other => other,
            }),
            last = time_opt(r.last_ok, ctx.state.tz),
        );
    }
    h.push_str("</tbody></table>");
    Ok(h)
}

// ---------------------------------------------------------------- runs

#[derive(Deserialize)]
pub struct RunsQ {
    shop: Option<String>,
    action: Option<String>,
    status: Option<String>,
}

fn action_options(ctx: &Ctx, selected: Option<&str>, extra_console: bool) -> String {
    let mut items: Vec<(String, String)> = Action::ALL
        .iter()
        .map(|a| (a.as_str().to_owned(), ctx.lang.action(*a).to_owned()))
        .collect();
    if extra_console {
        items.push(("console".into(), ctx.lang.action_str("console")));
    }
    format!(
        r#"<label>{}<select name="action">{}</select></label>"#,
        e(ctx.t("アクション", "Action")),
        options(&items, selected, ctx.t("すべて", "All"))
    )
}

pub async fn runs(ctx: Ctx, Query(q): Query<RunsQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let rows = sqlx::query_as!(
        store::runs::Run,
        r#"SELECT id, shop_id, action, mode, status, command_id, requested_by, window_from, window_to, watermark,
                  cursor, counts, amazon_calls, error, started_at, finished_at
           FROM action_runs
           WHERE shop_id = ANY($1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR status = $3)
           ORDER BY started_at DESC, id DESC LIMIT 300"#,
        &shops,
        nz(&q.action),
        nz(&q.status),
    )
    .fetch_all(&ctx.state.pool)
    .await?;
    let statuses: Vec<(String, String)> = [
        "running",
        "waiting",
        "succeeded",
        "failed",
        "skipped",
        "rejected",
    ]
    .iter()
    .map(|s| (s.to_string(), ctx.lang.run_status(s)))
    .collect();
    let mut body = format!(
        r#"<form class="filters" method="get">{}{}<label>{}<select name="status">{}</select></label><button type="submit">{}</button></form>"#,
        ctx.shop_select(nz(&q.shop)),
        action_options(&ctx, nz(&q.action), false),
        e(ctx.t("結果", "Outcome")),
        options(&statuses, nz(&q.status), ctx.t("すべて", "All")),
        e(ctx.t("絞り込み", "Filter")),
    );
    body.push_str(&runs_table(&ctx, &rows));
    Ok(ctx.page(ctx.t("実行履歴", "Runs"), &body))
}

/// Numeric top-level counts (`new: 3, updated: 1`), then calls per operation.
fn counts_summary(counts: &serde_json::Value) -> String {
    let Some(o) = counts.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in o {
        if matches!(k.as_str(), "duration_ms" | "active_ms") {
            continue;
        }
        if let Some(n) = v.as_i64() {
            if n != 0 {
                parts.push(format!("{k}: {n}"));
            }
        } else if let Some(s) = v.as_str() {
            parts.push(format!("{k}: {s}"));
        }
    }
    parts.join(", ")
}

fn duration(run: &store::runs::Run) -> String {
    let ms = run
        .counts
        .get("duration_ms")
        .and_then(|v| v.as_i64())
        .or_else(|| {
            run.finished_at
                .map(|f| (f - run.started_at).num_milliseconds())
        });
    match ms {
        Some(ms) if ms >= 60_000 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "—".to_owned(),
    }
}

fn runs_table(ctx: &Ctx, rows: &[store::runs::Run]) -> String {
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let mut h = format!(
        r#"<table id="runs"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class="num">{}</th><th class="num">{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("開始", "Started")),
        e(t("ショップ", "Shop")),
        e(t("アクション", "Action")),
        e(t("モード", "Mode")),
        e(t("結果", "Outcome")),
        e(t("依頼者", "Requested by")),
        e(t("対象期間", "Window")),
        e(t("件数", "Counts")),
        e(t("API呼び出し", "Amazon calls")),
        e(t("所要時間", "Duration")),
        e(t("エラー", "Error")),
    );
    if rows.is_empty() {
        let _ = write!(
            h,
            r#"<tr><td colspan="11">{}</td></tr>"#,
            e(t("実行履歴はありません", "No runs"))
        );
    }
    for r in rows {
        let window = match (r.window_from, r.window_to) {
            (Some(f), Some(to)) => format!("{} – {}", time(f, tz), time(to, tz)),
            _ => "—".to_owned(),
        };
        let _ = write!(
            h,
            r#"<tr id="run-{id}"><td>{start}</td><td>{shop}</td><td>{action}</td><td>{mode}</td><td>{status}</td><td>{by}</td><td>{window}</td><td>{counts}</td><td class="num">{calls}</td><td class="num">{dur}</td><td>{err}</td></tr>"#,
            id = r.id,
            start = time_s(r.started_at, tz),
            shop = e(ctx.op.code_of(Some(r.shop_id))),
            action = e(ctx.lang.action_str(&r.action)),
            mode = opt(r.mode.as_deref().map(|m| ctx.lang.mode(m))),
            status = badge(&r.status, &ctx.lang.run_status(&r.status)),
            by = opt(r.requested_by.as_deref()),
            counts = e(counts_summary(&r.counts)),
            calls = r.amazon_calls,
            dur = duration(r),
            err = r
                .error
                .as_deref()
                .map(|m| format!(r#"<div class="msg">{}</div>"#, e(m)))
                .unwrap_or_default(),
        );
    }
    h.push_str("</tbody></table>");
    h
}

// ---------------------------------------------------------------- API log

#[derive(Deserialize)]
pub struct LogQ {
    shop: Option<String>,
    action: Option<String>,
    level: Option<String>,
    order: Option<String>,
    sku: Option<String>,
    code: Option<String>,
}

pub async fn api_log(ctx: Ctx, Query(q): Query<LogQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let rows = sqlx::query_as!(
        store::api_log::Record,
        r#"SELECT id, shop_id, run_id, action, level, amazon_order_id, sku, code, message, details, created_at
           FROM api_log
           WHERE shop_id = ANY($1)
             AND ($2::text IS NULL OR action = $2)
             AND ($3::text IS NULL OR level = $3)
             AND ($4::text IS NULL OR amazon_order_id = $4)
             AND ($5::text IS NULL OR sku = $5)
             AND ($6::text IS NULL OR code = $6)
           ORDER BY id DESC LIMIT 300"#,
        &shops,
        nz(&q.action),
        nz(&q.level),
        nz(&q.order),
        nz(&q.sku),
        nz(&q.code),
    )
    .fetch_all(&ctx.state.pool)
    .await?;
    let levels: Vec<(String, String)> = ["info", "warning", "error", "attention"]
        .iter()
        .map(|s| (s.to_string(), ctx.lang.level(s)))
        .collect();
    let mut body = format!(
        r#"<form class="filters" method="get" id="log-filters">{}{}<label>{}<select name="level">{}</select></label><label>{}<input name="order" value="{}"></label><label>SKU<input name="sku" value="{}"></label><label>{}<input name="code" value="{}"></label><button type="submit">{}</button></form>"#,
        ctx.shop_select(nz(&q.shop)),
        action_options(&ctx, nz(&q.action), true),
        e(ctx.t("レベル", "Level")),
        options(&levels, nz(&q.level), ctx.t("すべて", "All")),
        e(ctx.t("注文番号", "Order id")),
        e(nz(&q.order).unwrap_or("")),
        e(nz(&q.sku).unwrap_or("")),
        e(ctx.t("コード", "Code")),
        e(nz(&q.code).unwrap_or("")),
        e(ctx.t("絞り込み", "Filter")),
    );
    let _ = write!(
        body,
        r#"<p class="hint">{}</p>"#,
        e(ctx.t(
            "Amazonからのメッセージは原文のまま表示しています（最新300件）。",
            "Amazon's messages are shown verbatim (latest 300 entries)."
        ))
    );
    body.push_str(&log_table(&ctx, &rows));
    Ok(ctx.page(ctx.t("APIログ", "API log"), &body))
}

/// The API log as a table: messages verbatim, details folded.
pub fn log_table(ctx: &Ctx, rows: &[store::api_log::Record]) -> String {
    let t = |ja, en| ctx.t(ja, en);
    let mut h = format!(
        r#"<table id="api-log"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>SKU</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("日時", "Time")),
        e(t("ショップ", "Shop")),
        e(t("アクション", "Action")),
        e(t("レベル", "Level")),
        e(t("注文番号", "Order id")),
        e(t("コード", "Code")),
        e(t("メッセージ", "Message")),
    );
    if rows.is_empty() {
        let _ = write!(
            h,
            r#"<tr><td colspan="8">{}</td></tr>"#,
            e(t("該当するログはありません", "No entries match"))
        );
    }
    for r in rows {
        let details = r
            .details
            .as_ref()
            .filter(|d| !d.is_null())
            .map(|d| {
                format!(
                    r#"<details><summary>{}</summary><pre class="msg">{}</pre></details>"#,
                    e(t("詳細", "Details")),
                    e(serde_json::to_string_pretty(d).unwrap_or_default())
                )
            })
            .unwrap_or_default();
        let order = match &r.amazon_order_id {
            Some(o) => format!(
                r#"<a href="/instructions?order={}">{}</a>"#,
                url_enc(o),
                e(o)
            ),
            None => "—".to_owned(),
        };
        let _ = write!(
            h,
            r#"<tr id="log-{id}"><td>{time}</td><td>{shop}</td><td>{action}</td><td>{level}</td><td>{order}</td><td>{sku}</td><td>{code}</td><td><pre class="msg">{msg}</pre>{details}</td></tr>"#,
            id = r.id,
            time = time_s(r.created_at, ctx.state.tz),
            shop = e(ctx.op.code_of(r.shop_id)),
            action = e(ctx.lang.action_str(&r.action)),
            level = badge(&r.level, &ctx.lang.level(&r.level)),
            sku = opt(r.sku.as_deref()),
            code = opt(r.code.as_deref()),
            msg = e(&r.message),
        );
    }
    h.push_str("</tbody></table>");
    h
}

// ---------------------------------------------------------------- feeds

#[derive(Deserialize)]
pub struct FeedsQ {
    shop: Option<String>,
    state: Option<String>,
}

pub async fn feeds(ctx: Ctx, Query(q): Query<FeedsQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let t = |ja, en| ctx.t(ja, en);
    let rows = sqlx::query!(
        r#"SELECT fs.id, fs.shop_id, fs.feed_type, fs.state, fs.amazon_feed_id, fs.processing_status, fs.error,
                  fs.created_at, fs.submitted_at, fs.finished_at, fs.poll_attempts,
                  count(fm.message_id) AS "total!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'success') AS "ok!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'warning') AS "warn!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'error') AS "err!",
                  count(fm.message_id) FILTER (WHERE fm.result = 'pending') AS "pending!"
           FROM feed_submissions fs LEFT JOIN feed_messages fm ON fm.feed_submission_id = fs.id
           WHERE fs.shop_id = ANY($1) AND ($2::text IS NULL OR fs.state = $2)
           GROUP BY fs.id ORDER BY fs.created_at DESC LIMIT 200"#,
        &shops,
        nz(&q.state),
    )
    .fetch_all(&ctx.state.pool)
    .await?;
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
    let mut body = format!(
        r#"<form class="filters" method="get">{}<label>{}<select name="state">{}</select></label><button type="submit">{}</button></form>"#,
        ctx.shop_select(nz(&q.shop)),
        e(t("状態", "State")),
        options(&states, nz(&q.state), t("すべて", "All")),
        e(t("絞り込み", "Filter")),
    );
    let _ = write!(
        body,
        r#"<table id="feeds"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">{}</th><th class="num">{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("作成", "Created")),
        e(t("ショップ", "Shop")),
        e(t("フィード種別", "Feed type")),
        e(t("状態", "State")),
        e(t("AmazonフィードID", "Amazon feed id")),
        e(t("メッセージ", "Messages")),
        e(t("成功", "Success")),
        e(t("警告", "Warning")),
        e(t("エラー", "Error")),
        e(t("エラー内容", "Error")),
    );
    if rows.is_empty() {
        let _ = write!(
            body,
            r#"<tr><td colspan="10">{}</td></tr>"#,
            e(t("フィードはありません", "No feeds"))
        );
    }
    for r in rows {
        let state = format!(
            "{}{}",
            badge(&r.state, &ctx.lang.feed_state(&r.state)),
            r.processing_status
                .as_deref()
                .map(|p| format!(r#" <span class="hint">{}</span>"#, e(p)))
                .unwrap_or_default()
        );
        let _ = write!(
            body,
            r#"<tr><td><a href="/feeds/{id}">{created}</a></td><td>{shop}</td><td>{ft}</td><td>{state}</td><td>{afid}</td><td class="num">{total}</td><td class="num">{ok}</td><td class="num">{warn}</td><td class="num">{err}</td><td>{error}</td></tr>"#,
            id = r.id,
            created = time(r.created_at, ctx.state.tz),
            shop = e(ctx.op.code_of(Some(r.shop_id))),
            ft = e(&r.feed_type),
            afid = opt(r.amazon_feed_id.as_deref()),
            total = r.total,
            ok = r.ok,
            warn = r.warn,
            err = r.err,
            error = r
                .error
                .as_deref()
                .map(|m| format!(r#"<pre class="msg">{}</pre>"#, e(m)))
                .unwrap_or_default(),
        );
    }
    body.push_str("</tbody></table>");
    Ok(ctx.page(t("フィード", "Feeds"), &body))
}

pub async fn feed(ctx: Ctx, Path(id): Path<Uuid>) -> Result<Html<String>, AppError> {
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let f = sqlx::query!(
        r#"SELECT id, shop_id, feed_type, state, amazon_feed_id, feed_document_id, result_document_id,
                  processing_status, error, poll_attempts, marketplace_ids, created_at, submitted_at, finished_at
           FROM feed_submissions WHERE id = $1"#,
        id
    )
    .fetch_optional(&ctx.state.pool)
    .await?
    .filter(|f| ctx.op.shop_by_id(f.shop_id).is_some())
    .ok_or(AppError::NotFound)?;
    let times = format!(
        "{} / {} / {}",
        time(f.created_at, tz),
        time_opt(f.submitted_at, tz),
        time_opt(f.finished_at, tz)
    );
    let mut body = format!(
        r#"<dl class="kv"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>"#,
        e(t("ショップ", "Shop")),
        e(ctx.op.code_of(Some(f.shop_id))),
        e(t("フィード種別", "Feed type")),
        e(&f.feed_type),
        e(t("状態", "State")),
        badge(&f.state, &ctx.lang.feed_state(&f.state)),
        e(t("処理ステータス", "Processing status")),
        opt(f.processing_status.as_deref()),
        e(t("AmazonフィードID", "Amazon feed id")),
        opt(f.amazon_feed_id.as_deref()),
        e(t("マーケットプレイス", "Marketplaces")),
        e(f.marketplace_ids.join(", ")),
        e(t("作成 / 送信 / 完了", "Created / submitted / finished")),
        times,
        e(t("確認回数", "Polls")),
        f.poll_attempts,
        e(t("エラー", "Error")),
        f.error
            .as_deref()
            .map(|m| format!(r#"<pre class="msg">{}</pre>"#, e(m)))
            .unwrap_or_else(|| "—".to_owned()),
    );
    let msgs = sqlx::query!(
        r#"SELECT fm.message_id, fm.amazon_order_id, fm.sku, fm.quantity, fm.handling_days, fm.result,
                  fm.result_code, fm.result_message, fm.instruction_id
           FROM feed_messages fm WHERE fm.feed_submission_id = $1 ORDER BY fm.message_id"#,
        id
    )
    .fetch_all(&ctx.state.pool)
    .await?;
    let _ = write!(
        body,
        r#"<h2>{}</h2><table id="feed-messages"><thead><tr><th class="num">MessageID</th><th>{}</th><th>SKU</th><th class="num">{}</th><th class="num">{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        e(t("メッセージ別の結果", "Results per message")),
        e(t("注文番号", "Order id")),
        e(t("数量", "Quantity")),
        e(t("出荷作業日数", "Handling days")),
        e(t("結果", "Result")),
        e(t("コード", "Code")),
        e(t("Amazonのメッセージ", "Amazon's message")),
    );
    for m in msgs {
        let order = match (&m.amazon_order_id, m.instruction_id) {
            (Some(o), Some(iid)) => format!(r#"<a href="/instructions/{iid}">{}</a>"#, e(o)),
            (Some(o), None) => e(o).to_string(),
            _ => "—".to_owned(),
        };
        let _ = write!(
            body,
            r#"<tr><td class="num">{}</td><td>{order}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td><pre class="msg">{}</pre></td></tr>"#,
            m.message_id,
            opt(m.sku.as_deref()),
            opt(m.quantity),
            opt(m.handling_days),
            badge(&m.result, &ctx.lang.feed_state(&m.result)),
            opt(m.result_code.as_deref()),
            opt(m.result_message.as_deref()),
        );
    }
    body.push_str("</tbody></table>");
    Ok(ctx.page(&format!("{} {}", t("フィード", "Feed"), f.feed_type), &body))
}

// ---------------------------------------------------------------- attention

/// Feeds not final after this long are "stuck".
const STUCK_AFTER_HOURS: i32 = 2;

/// Number of open attention items (for the dashboard tile).
pub async fn attention_count(conn: &mut PgConnection, shops: &[Uuid]) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT (
             (SELECT count(DISTINCT (l.shop_id, l.sku)) FROM instruction_lines l
                JOIN shipping_instructions si ON si.id = l.instruction_id
               WHERE l.shop_id = ANY($1) AND l.product_id IS NULL AND si.status <> 'canceled')
           + (SELECT count(*) FROM shipping_instructions WHERE shop_id = ANY($1) AND api_status = 'failed')
           + (SELECT count(*) FROM feed_submissions WHERE shop_id = ANY($1)
                AND state IN ('pending', 'in_flight', 'submitted')
                AND created_at < now() - make_interval(hours => $2))
           + (SELECT count(*) FROM shops WHERE id = ANY($1) AND auth_status = 'needs_reauthorization')
           + (SELECT count(*) FROM api_log a
                JOIN shipping_instructions si ON si.shop_id = a.shop_id AND si.amazon_order_id = a.amazon_order_id
               WHERE a.shop_id = ANY($1) AND a.code = 'amazon_cancelled_after_allocation' AND si.status <> 'canceled')
           ) AS "n!""#,
        shops,
        STUCK_AFTER_HOURS
    )
    .fetch_one(conn)
    .await?)
}

pub async fn attention(ctx: Ctx) -> Result<Html<String>, AppError> {
    let shops = ctx.op.shop_ids();
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let mut conn = ctx.state.pool.acquire().await?;
    let mut body = String::new();
    let section = |body: &mut String, id: &str, title: &str, todo: &str, n: usize| {
        let _ = write!(
            body,
            r#"<h2 id="{}">{} <span class="badge b-{}">{n}</span></h2>"#,
            e(id),
            e(title),
            if n > 0 { "attention" } else { "ok" },
        );
        if n > 0 {
            let _ = write!(
                body,
                r#"<div class="todo"><b>{}</b> {}</div>"#,
                e(t("対応方法:", "What to do:")),
                e(todo)
            );
        } else {
            let _ = write!(
                body,
                r#"<p class="hint">{}</p>"#,
                e(t("該当なし", "Nothing to do"))
            );
        }
    };

    // Shops needing re-authorization.
    let reauth = sqlx::query!(
        "SELECT code, name, auth_error, updated_at FROM shops WHERE id = ANY($1) AND auth_status = 'needs_reauthorization' ORDER BY code",
        &shops
    )
    .fetch_all(&mut *conn)
    .await?;
    section(
        &mut body,
        "reauth",
        t("再認可が必要なショップ", "Shops needing re-authorization"),
        t(
            "Amazonがリフレッシュトークンを拒否しています。セラーセントラルでアプリを再認可し、新しいリフレッシュトークンを ctl shop reauthorize で登録してください。登録までこのショップの連携は止まります。",
            "Amazon refuses the refresh token. Re-authorize the app in Seller Central and store the new token with `ctl shop reauthorize`; every action of this shop stops until then.",
        ),
        reauth.len(),
    );
    if !reauth.is_empty() {
        body.push_str("<table><tbody>");
        for r in reauth {
            let _ = write!(
                body,
                r#"<tr><td><a href="/shops/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                url_enc(&r.code),
                e(&r.code),
                e(&r.name),
                opt(r.auth_error.as_deref()),
                time(r.updated_at, tz)
            );
        }
        body.push_str("</tbody></table>");
    }

    // Unmapped SKUs.
    let unmapped = sqlx::query!(
        r#"SELECT l.shop_id, l.sku, count(DISTINCT l.instruction_id) AS "orders!", sum(l.quantity) AS "qty!",
                  max(si.amazon_order_id) AS latest_order
           FROM instruction_lines l JOIN shipping_instructions si ON si.id = l.instruction_id
           WHERE l.shop_id = ANY($1) AND l.product_id IS NULL AND si.status <> 'canceled'
           GROUP BY l.shop_id, l.sku ORDER BY l.shop_id, l.sku LIMIT 500"#,
        &shops
    )
    .fetch_all(&mut *conn)
    .await?;
    section(
        &mut body,
        "unmapped",
        t(
            "未対応SKU（対応表にないSKU）",
            "Unmapped SKUs (not in the mapping table)",
        ),
        t(
            "外部商品 > 対応表 にSKUと商品を登録してください（ctl external-product map）。登録するまで在庫は確保されず、在庫連携もされません。",
            "Add the SKU to the external-product mapping table (ctl external-product map). Until then no stock is reserved for it and inventory sync skips it.",
        ),
        unmapped.len(),
    );
    if !unmapped.is_empty() {
        let _ = write!(
            body,
            r#"<table id="attention-unmapped"><thead><tr><th>{}</th><th>SKU</th><th class="num">{}</th><th class="num">{}</th><th>{}</th></tr></thead><tbody>"#,
            e(t("ショップ", "Shop")),
            e(t("出荷指示数", "Instructions")),
            e(t("数量", "Quantity")),
            e(t("例", "Example order")),
        );
        for r in unmapped {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                e(&r.sku),
                r.orders,
                r.qty,
                opt(r.latest_order.as_deref())
            );
        }
        body.push_str("</tbody></table>");
    }

    // Cancellations of allocated orders.
    let cancels = sqlx::query!(
        r#"SELECT DISTINCT ON (a.shop_id, a.amazon_order_id) a.shop_id, a.amazon_order_id AS "order!", a.message,
                  a.created_at, si.id AS instruction_id, si.status
           FROM api_log a
           JOIN shipping_instructions si ON si.shop_id = a.shop_id AND si.amazon_order_id = a.amazon_order_id
           WHERE a.shop_id = ANY($1) AND a.code = 'amazon_cancelled_after_allocation' AND si.status <> 'canceled'
           ORDER BY a.shop_id, a.amazon_order_id, a.id DESC LIMIT 500"#,
        &shops
    )
    .fetch_all(&mut *conn)
    .await?;
    section(
        &mut body,
        "cancel-allocated",
        t(
            "引当済み・出荷済みの注文がAmazonでキャンセル",
            "Orders canceled on Amazon after allocation",
        ),
        t(
            "引当済みのため自動ではキャンセルしていません。出荷を止められる場合は倉庫で出荷を止めて出荷指示をキャンセルし、出荷済みの場合は返品・返金をセラーセントラルで処理してください。",
            "Not canceled automatically because stock was allocated. Stop the parcel in the warehouse if you can and cancel the instruction; if it already left, handle return and refund in Seller Central.",
        ),
        cancels.len(),
    );
    if !cancels.is_empty() {
        body.push_str(r#"<table id="attention-cancels"><tbody>"#);
        for r in cancels {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td><a href="/instructions/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                e(ctx.op.code_of(r.shop_id)),
                r.instruction_id,
                e(&r.order),
                badge(&r.status, &r.status),
                e(&r.message),
                time(r.created_at, tz)
            );
        }
        body.push_str("</tbody></table>");
    }

    // Failed shipment results.
    let failed = sqlx::query!(
        r#"SELECT id, shop_id, amazon_order_id, api_error, tracking_numbers, shipped_on, updated_at
           FROM shipping_instructions WHERE shop_id = ANY($1) AND api_status = 'failed'
           ORDER BY updated_at DESC LIMIT 500"#,
        &shops
    )
    .fetch_all(&mut *conn)
    .await?;
    section(
        &mut body,
        "failed-shipments",
        t("出荷実績戻しの失敗", "Failed shipment results"),
        t(
            "Amazonのメッセージを確認し、問番・配送方法（外部連携先配送方法）を直してから再送してください（ctl shipping resend-shipment）。",
            "Read Amazon's message, fix the tracking number or delivery method (external delivery method), then send it again (ctl shipping resend-shipment).",
        ),
        failed.len(),
    );
    if !failed.is_empty() {
        body.push_str(r#"<table id="attention-failed"><tbody>"#);
        for r in failed {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td><a href="/instructions/{}">{}</a></td><td>{}</td><td><pre class="msg">{}</pre></td><td>{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                r.id,
                opt(r.amazon_order_id.as_deref()),
                e(r.tracking_numbers.join(", ")),
                opt(r.api_error.as_deref()),
                time(r.updated_at, tz)
            );
        }
        body.push_str("</tbody></table>");
    }

    // Stuck feeds.
    let stuck = sqlx::query!(
        r#"SELECT id, shop_id, feed_type, state, amazon_feed_id, processing_status, created_at, poll_attempts
           FROM feed_submissions
           WHERE shop_id = ANY($1) AND state IN ('pending', 'in_flight', 'submitted')
             AND created_at < now() - make_interval(hours => $2)
           ORDER BY created_at LIMIT 500"#,
        &shops,
        STUCK_AFTER_HOURS
    )
    .fetch_all(&mut *conn)
    .await?;
    section(
        &mut body,
        "stuck-feeds",
        t(
            "結果が返らないフィード（2時間以上）",
            "Stuck feeds (no result after 2 hours)",
        ),
        t(
            "フィード送信結果取得を実行してください。それでも終わらない場合はセラーセントラルのフィード状況を確認し、必要なら出荷実績戻し・在庫連携をやり直してください。",
            "Run feed-result retrieval. If it still does not finish, check the feed in Seller Central and, if needed, run shipment-result return or inventory sync again.",
        ),
        stuck.len(),
    );
    if !stuck.is_empty() {
        body.push_str(r#"<table id="attention-stuck"><tbody>"#);
        for r in stuck {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td><a href="/feeds/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                e(ctx.op.code_of(Some(r.shop_id))),
                r.id,
                e(&r.feed_type),
                badge(&r.state, &ctx.lang.feed_state(&r.state)),
                opt(r.amazon_feed_id.as_deref()),
                time(r.created_at, tz),
                r.poll_attempts
            );
        }
        body.push_str("</tbody></table>");
    }

    // Other attention entries of the last 7 days.
    let others = sqlx::query_as!(
        store::api_log::Record,
        r#"SELECT id, shop_id, run_id, action, level, amazon_order_id, sku, code, message, details, created_at
           FROM api_log
           WHERE shop_id = ANY($1) AND level = 'attention' AND created_at > now() - interval '7 days'
             AND code IS DISTINCT FROM 'amazon_cancelled_after_allocation'
           ORDER BY id DESC LIMIT 200"#,
        &shops
    )
    .fetch_all(&mut *conn)
    .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summarised() {
        let c = serde_json::json!({"new": 3, "updated": 0, "calls": {"searchOrders": 2}, "duration_ms": 5});
        assert_eq!(counts_summary(&c), "new: 3");
    }
}
