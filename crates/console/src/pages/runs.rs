//! 実行履歴: the run ledger with shop, action and outcome filters.

use axum::{extract::Query, response::Html};
use maud::{Markup, html};
use serde::Deserialize;
use store::{
    read::runs::{RunFilter, counts_summary},
    runs::Run,
};

use crate::{
    AppError, Ctx,
    html::{Col, badge, div_msg, opt, options, table, time, time_s},
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
    let body = html! {
        form class="filters" method="get" {
            (ctx.shop_select(nz(&q.shop)))
            (action_select(&ctx, nz(&q.action), false))
            label {
                (ctx.t("結果", "Outcome"))
                select name="status" { (options(&statuses, nz(&q.status), Some(ctx.t("すべて", "All")))) }
            }
            button type="submit" { (ctx.t("絞り込み", "Filter")) }
        }
        (runs_table(&ctx, &rows))
    };
    Ok(ctx.page(ctx.t("実行履歴", "Runs"), body))
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
pub fn runs_table(ctx: &Ctx, rows: &[Run]) -> Markup {
    let t = |ja, en| ctx.t(ja, en);
    let tz = ctx.state.tz;
    let body = html! {
        @for r in rows {
            tr id={ "run-" (r.id) } {
                td { (time_s(r.started_at, tz)) }
                td { (ctx.op.code_of(Some(r.shop_id))) }
                td { (ctx.lang.action_str(&r.action)) }
                td { (opt(r.mode.as_deref().map(|m| ctx.lang.mode(m)))) }
                td { (badge(&r.status, &ctx.lang.run_status(&r.status))) }
                td { (opt(r.requested_by.as_deref())) }
                td {
                    @match (r.window_from, r.window_to) {
                        (Some(f), Some(to)) => { (time(f, tz)) " – " (time(to, tz)) }
                        _ => "—",
                    }
                }
                td { (counts_summary(&r.counts)) }
                td class="num" { (r.amazon_calls) }
                td class="num" { (duration(r)) }
                td { (div_msg(r.error.as_deref())) }
            }
        }
    };
    table(
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
        body,
    )
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
