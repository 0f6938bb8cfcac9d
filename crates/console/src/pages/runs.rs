//! 実行履歴: the run ledger with shop, action and outcome filters.

use std::fmt::Write as _;

use axum::{extract::Query, response::Html};
use serde::Deserialize;
use store::{
    read::runs::{RunFilter, counts_summary},
    runs::Run,
};

use crate::{
    AppError, Ctx,
    html::{Col, badge, e, opt, options, table_open, time, time_s},
    nz,
    pages::action_select,
};

/// Runs the page lists.
const LIMIT: i64 = 300;

#[derive(Deserialize)]
pub struct RunsQ {
    shop: Option<String>,
    action: Option<String>,
    status: Option<String>,
}

pub async fn page(ctx: Ctx, Query(q): Query<RunsQ>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let mut conn = ctx.state.pool.acquire().await?;
    let rows = store::read::runs::list(
        &mut conn,
        &RunFilter {
            shops: Some(&shops),
            action: nz(&q.action),
            status: nz(&q.status),
            limit: LIMIT,
        },
    )
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
        action_select(&ctx, nz(&q.action), false),
        e(ctx.t("結果", "Outcome")),
        options(&statuses, nz(&q.status), ctx.t("すべて", "All")),
        e(ctx.t("絞り込み", "Filter")),
    );
    body.push_str(&runs_table(&ctx, &rows));
    Ok(ctx.page(ctx.t("実行履歴", "Runs"), &body))
}

/// The run's own `duration_ms`, else finished − started.
fn duration(run: &Run) -> String {
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

/// Runs as a table (this page and a shop's page).
pub fn runs_table(ctx: &Ctx, rows: &[Run]) -> String {
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let mut h = table_open(
        Some("runs"),
        &[
            Col::text(t("開始", "Started")),
            Col::text(t("ショップ", "Shop")),
            Col::text(t("アクション", "Action")),
            Col::text(t("モード", "Mode")),
            Col::text(t("結果", "Outcome")),
            Col::text(t("依頼者", "Requested by")),
            Col::text(t("対象期間", "Window")),
            Col::text(t("件数", "Counts")),
            Col::num(t("API呼び出し", "Amazon calls")),
            Col::num(t("所要時間", "Duration")),
            Col::text(t("エラー", "Error")),
        ],
        rows.is_empty()
            .then(|| t("実行履歴はありません", "No runs")),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(counts: serde_json::Value, secs: Option<i64>) -> Run {
        let started = chrono::Utc::now();
        Run {
            id: uuid::Uuid::now_v7(),
            shop_id: uuid::Uuid::now_v7(),
            action: "order-ingest".into(),
            mode: None,
            status: "succeeded".into(),
            command_id: None,
            requested_by: None,
            window_from: None,
            window_to: None,
            watermark: None,
            cursor: None,
            counts,
            amazon_calls: 0,
            error: None,
            started_at: started,
            finished_at: secs.map(|s| started + chrono::Duration::seconds(s)),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            duration(&run(serde_json::json!({"duration_ms": 2300}), None)),
            "2.3s"
        );
        assert_eq!(duration(&run(serde_json::json!({}), Some(125))), "2m05s");
        assert_eq!(duration(&run(serde_json::json!({}), None)), "—");
    }
}
