//! ダッシュボード: orders per day, Amazon calls per action and operation, quota waits, feed
//! success rate, drawn as SVG on the server; tiles for what needs a look.

use std::collections::BTreeMap;

use axum::{extract::Query, response::Html};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::messages::Action;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use store::read::dashboard as read;

use crate::{
    AppError, Ctx,
    charts::{self, PALETTE, Series},
    html::url_enc,
    nz,
};

/// Most runs the charts add up.
const MAX_RUNS: i64 = 20_000;

#[derive(Deserialize)]
pub struct Q {
    shop: Option<String>,
    days: Option<i64>,
}

/// Day buckets: the last `days` days in the console's time zone, and the instant the first starts.
fn day_range(ctx: &Ctx, days: i64) -> (Vec<NaiveDate>, DateTime<Utc>) {
    let today = Utc::now().with_timezone(&ctx.state.tz).date_naive();
    let first = today - Duration::days(days - 1);
    let start = ctx
        .state
        .tz
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc::now() - Duration::days(days));
    (
        (0..days).map(|i| first + Duration::days(i)).collect(),
        start,
    )
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(0.0)
}

/// Per-operation counters from a run's `counts.calls`: either `{op: n}` or
/// `{op: {calls, throttled, limiter_wait_ms}}`.
#[derive(Default, Clone, Copy)]
struct OpTotals {
    calls: f64,
    throttled: f64,
    wait_ms: f64,
}

fn op_stats(counts: &Value) -> Vec<(&str, OpTotals)> {
    let Some(calls) = counts.get("calls").and_then(Value::as_object) else {
        return Vec::new();
    };
    calls
        .iter()
        .map(|(op, v)| {
            let t = match v {
                Value::Object(o) => OpTotals {
                    calls: num(o.get("calls")),
                    throttled: num(o.get("throttled")),
                    wait_ms: num(o.get("limiter_wait_ms")),
                },
                v => OpTotals {
                    calls: num(Some(v)),
                    ..Default::default()
                },
            };
            (op.as_str(), t)
        })
        .collect()
}

pub async fn page(ctx: Ctx, Query(q): Query<Q>) -> Result<Html<String>, AppError> {
    let shops = ctx.scope(nz(&q.shop))?;
    let days = q.days.unwrap_or(14).clamp(7, 90);
    let (dates, start) = day_range(&ctx, days);
    let tz = ctx.state.tz.name();
    let idx = |d: NaiveDate| dates.iter().position(|x| *x == d);
    let labels: Vec<String> = dates
        .iter()
        .map(|d| d.format("%m/%d").to_string())
        .collect();
    let mut conn = ctx.state.pool.acquire().await?;

    // Orders imported and shipped per day (instructions), paid and canceled (status-sync ledger).
    let mut imported = vec![0.0; dates.len()];
    let mut shipped = vec![0.0; dates.len()];
    for r in read::imported_per_day(&mut conn, &shops, tz, start).await? {
        if let Some(i) = idx(r.day) {
            imported[i] = r.n as f64;
        }
    }
    for r in read::shipped_per_day(&mut conn, &shops, tz, start).await? {
        if let Some(i) = idx(r.day) {
            shipped[i] = r.n as f64;
        }
    }
    let runs = read::runs_per_day(&mut conn, &shops, tz, start, MAX_RUNS).await?;
    let mut paid = vec![0.0; dates.len()];
    let mut canceled = vec![0.0; dates.len()];
    let mut waits = vec![0.0; dates.len()];
    let mut failed_runs = vec![0.0; dates.len()];
    let mut calls: Vec<(Action, Vec<f64>)> = Action::ALL
        .iter()
        .map(|a| (*a, vec![0.0; dates.len()]))
        .collect();
    let mut ops: BTreeMap<String, OpTotals> = BTreeMap::new();
    let mut op_days: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut throttled = vec![0.0; dates.len()];
    for r in &runs {
        let Some(i) = idx(r.day) else { continue };
        if r.action == Action::StatusSync.as_str() {
            paid[i] += num(r.counts.get("paid"));
            canceled[i] += num(r.counts.get("canceled"));
        }
        waits[i] += num(r.counts.get("continuations"));
        if r.status == "failed" {
            failed_runs[i] += 1.0;
        }
        if let Ok(a) = r.action.parse::<Action>()
            && let Some((_, v)) = calls.iter_mut().find(|(x, _)| *x == a)
        {
            v[i] += f64::from(r.amazon_calls);
        }
        for (op, v) in op_stats(&r.counts) {
            let t = ops.entry(op.to_owned()).or_default();
            t.calls += v.calls;
            t.throttled += v.throttled;
            t.wait_ms += v.wait_ms;
            op_days
                .entry(op.to_owned())
                .or_insert_with(|| vec![0.0; dates.len()])[i] += v.calls;
            throttled[i] += v.throttled;
        }
    }

    // Feed success rate per day (per-message results of feeds finished that day).
    let mut rate = vec![0.0; dates.len()];
    let feed_days = read::feed_results_per_day(&mut conn, &shops, tz, start).await?;
    for r in &feed_days {
        let total = r.ok + r.warn + r.err;
        if let Some(i) = idx(r.day)
            && total > 0
        {
            rate[i] = 100.0 * (r.ok + r.warn) as f64 / total as f64;
        }
    }

    // Tiles.
    let read::Tiles {
        open_instructions: open,
        attention,
        needs_reauthorization: reauth,
    } = read::tiles(&mut conn, &shops, Utc::now()).await?;

    let t = |ja, en| ctx.t(ja, en);
    let no_data = t("この期間のデータはありません", "No data in this period");
    let shop_q = nz(&q.shop).map(url_enc).unwrap_or_default();
    let filters = html! {
        form class="filters" method="get" {
            (ctx.shop_select(nz(&q.shop)))
            label {
                (t("期間", "Period"))
                select name="days" {
                    @for d in [7, 14, 30, 90] {
                        option value=(d) selected[d == days] { (d) " " (t("日", "days")) }
                    }
                }
            }
            button type="submit" { (t("表示", "Show")) }
        }
        div class="tiles" {
            div class="tile" {
                div { (t("未出荷の出荷指示", "Open shipping instructions")) }
                div class="n" { (open) }
                a href={ "/instructions?shop=" (shop_q) } { (t("タスク一覧へ", "Shipping instructions")) }
            }
            div class="tile" {
                div { (t("要対応", "Needs attention")) }
                div class="n" { (attention) }
                a href="/attention" { (t("要対応一覧へ", "Attention list")) }
            }
            div class="tile" {
                div { (t("再認可が必要なショップ", "Shops needing re-authorization")) }
                div class="n" { (reauth) }
                a href="/shops" { (t("ショップ一覧へ", "Shops")) }
            }
            div class="tile" {
                div { (t("期間内の実行", "Runs in period")) }
                div class="n" { (runs.len()) }
                a href={ "/runs?shop=" (shop_q) } { (t("実行履歴へ", "Runs")) }
            }
        }
    };

    let orders = charts::bars(
        "chart-orders",
        t(
            "日別の注文（取込・入金・キャンセル・出荷）",
            "Orders per day (imported, paid, canceled, shipped)",
        ),
        &labels,
        &[
            Series::new(t("取込", "Imported"), PALETTE[0], imported),
            Series::new(t("入金済み", "Paid"), PALETTE[1], paid),
            Series::new(t("キャンセル", "Canceled"), PALETTE[2], canceled),
            Series::new(t("出荷済み", "Shipped"), PALETTE[3], shipped),
        ],
        false,
        no_data,
    );
    let call_series = Series::in_palette(
        calls
            .into_iter()
            .map(|(a, values)| (ctx.lang.action(a).to_owned(), values)),
    );
    let calls_chart = charts::lines(
        "chart-calls",
        t(
            "アクション別のAmazon API呼び出し数（日別）",
            "Amazon calls per action per day",
        ),
        &labels,
        &call_series,
        no_data,
    );
    // The busiest operations, one line each.
    let mut busiest: Vec<(String, Vec<f64>)> = op_days.into_iter().collect();
    busiest.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()));
    busiest.truncate(PALETTE.len());
    let op_series = Series::in_palette(busiest);
    let ops_chart = charts::lines(
        "chart-operations",
        t(
            "オペレーション別のAmazon API呼び出し数（日別）",
            "Amazon calls per operation per day",
        ),
        &labels,
        &op_series,
        no_data,
    );
    let waits_chart = charts::bars(
        "chart-waits",
        t(
            "429応答・クォータ待ち（継続実行）・失敗した実行",
            "429 responses, quota waits (continuations) and failed runs",
        ),
        &labels,
        &[
            Series::new(t("429応答", "429 responses"), PALETTE[3], throttled),
            Series::new(t("クォータ待ち", "Quota waits"), PALETTE[4], waits),
            Series::new(t("失敗した実行", "Failed runs"), PALETTE[2], failed_runs),
        ],
        false,
        no_data,
    );
    let feed_chart = charts::bars(
        "chart-feeds",
        t(
            "フィード成功率（メッセージ単位・日別）",
            "Feed success rate (per message, per day)",
        ),
        &labels,
        &[Series::new(t("成功率", "Success rate"), PALETTE[1], rate)],
        true,
        no_data,
    );
    let body = html! {
        (filters)
        div class="charts" {
            div class="chart" { (orders) }
            div class="chart" { (calls_chart) }
            div class="chart" { (ops_chart) }
            div class="chart" { (waits_chart) }
            div class="chart" { (feed_chart) }
        }
        h2 { (t("オペレーション別のAmazon API呼び出し（期間合計）", "Amazon calls per operation (period total)")) }
        table {
            thead {
                tr {
                    th { (t("オペレーション", "Operation")) }
                    th class="num" { (t("呼び出し", "Calls")) }
                    th class="num" { (t("429（スロットリング）", "429 (throttled)")) }
                    th class="num" { (t("リミッター待ち（秒）", "Limiter wait (s)")) }
                }
            }
            tbody {
                @if ops.is_empty() {
                    tr { td colspan="4" { (no_data) } }
                }
                @for (op, v) in &ops {
                    tr {
                        td { (op) }
                        td class="num" { (v.calls) }
                        td class="num" { (v.throttled) }
                        td class="num" { (format!("{:.1}", v.wait_ms / 1000.0)) }
                    }
                }
            }
        }
        @if !feed_days.is_empty() {
            h2 { (t("フィード結果（日別）", "Feed results per day")) }
            table {
                thead {
                    tr {
                        th { (t("日付", "Day")) }
                        th class="num" { (t("成功", "Success")) }
                        th class="num" { (t("警告", "Warning")) }
                        th class="num" { (t("エラー", "Error")) }
                    }
                }
                tbody {
                    @for r in &feed_days {
                        tr {
                            td { (r.day) }
                            td class="num" { (r.ok) }
                            td class="num" { (r.warn) }
                            td class="num" { (r.err) }
                        }
                    }
                }
            }
        }
    };
    Ok(ctx.page(t("ダッシュボード", "Dashboard"), body))
}
