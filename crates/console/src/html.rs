//! The layout and the small pieces every page shares, as [`maud`] templates: `html!` escapes
//! every spliced value (text and attribute values alike) unless it is a [`Markup`] built by
//! another template, so nothing an operator, Amazon or a buyer typed can break out of its
//! element or attribute, and the markup is checked when the crate compiles. `PreEscaped` wraps
//! only trusted constants (the stylesheet below, the actions page's script), never a value from
//! the database or a request: `tests/source_rules.rs` lists them and fails on any other, and on
//! HTML built with `format!`/`write!` again.

use std::fmt::{Display, Write as _};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::Lang;

/// An optional value, or an em dash.
pub fn opt<T: Display>(v: Option<T>) -> Markup {
    html! {
        @match v {
            Some(v) => (v),
            None => "—",
        }
    }
}

/// Percent-encodes a query-string component.
pub fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `2026-11-28 14:05` in the console's time zone.
pub fn time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// `2026-11-28 14:05:09`.
pub fn time_s(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional time or an em dash.
pub fn time_opt(t: Option<DateTime<Utc>>, tz: Tz) -> String {
    t.map(|t| time(t, tz)).unwrap_or_else(|| "—".to_owned())
}

/// A coloured status badge (`kind` picks the colour).
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge b-" (kind) } { (text) } }
}

/// `<option>`s of a select; `selected` marks the current value. `all_label`, when given, is a
/// first option with an empty value (no filter).
pub fn options(
    items: &[(String, String)],
    selected: Option<&str>,
    all_label: Option<&str>,
) -> Markup {
    html! {
        @if let Some(all) = all_label {
            option value="" { (all) }
        }
        @for (v, label) in items {
            option value=(v) selected[Some(v.as_str()) == selected] { (label) }
        }
    }
}

/// Navigation entries: (path, ja, en).
const NAV: &[(&str, &str, &str)] = &[
    ("/", "ダッシュボード", "Dashboard"),
    ("/shops", "ショップ", "Shops"),
    ("/actions", "アクション実行", "Actions"),
    ("/schedules", "自動実行", "Schedules"),
    ("/runs", "実行履歴", "Runs"),
    ("/instructions", "タスク一覧", "Shipping instructions"),
    ("/api-log", "APIログ", "API log"),
    ("/feeds", "フィード", "Feeds"),
    ("/external-products", "外部商品", "External products"),
    ("/delivery", "配送方法", "Delivery"),
    ("/attention", "要対応", "Attention"),
];

/// Navigation entries only console administrators see (pages across every shop): (path, ja, en).
const ADMIN_NAV: &[(&str, &str, &str)] = &[("/dead-letters", "デッドレター", "Dead letters")];

/// What the layout needs to know about the request.
pub struct Frame<'a> {
    pub lang: Lang,
    /// Path and query of this page (for the language switch).
    pub here: &'a str,
    /// Signed-in operator's display name, and the CSRF token for the sign-out form.
    pub user: Option<(&'a str, &'a str)>,
    /// The signed-in operator is a console administrator (shows [`ADMIN_NAV`]).
    pub admin: bool,
}

/// The same URL with `lang=` replaced.
pub fn with_lang(here: &str, lang: Lang) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut parts: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    let l = format!("lang={}", lang.code());
    parts.push(&l);
    format!("{path}?{}", parts.join("&"))
}

/// A whole page.
pub fn page(f: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let l = f.lang;
    let path = f.here.split('?').next().unwrap_or("/");
    let other = l.other();
    let app = l.t("Amazon連携コンソール", "Amazon connector console");
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (app) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    span.brand { (app) }
                    nav {
                        @if f.user.is_some() {
                            @let admin_nav = if f.admin { ADMIN_NAV } else { &[] };
                            @for (href, ja, en) in NAV.iter().chain(admin_nav) {
                                @let active = *href == path || (*href != "/" && path.starts_with(href));
                                a href=(href) class=[active.then_some("active")] { (l.t(ja, en)) }
                            }
                        }
                    }
                    span.right {
                        a class="lang" id="lang-switch" href=(with_lang(f.here, other)) hreflang=(other.code()) {
                            (other.name())
                        }
                        @if let Some((name, csrf)) = f.user {
                            span.user { (name) }
                            form method="post" action="/logout" class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                button class="link" type="submit" { (l.t("サインアウト", "Sign out")) }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,"Noto Sans CJK JP","Hiragino Sans","Yu Gothic",Meiryo,sans-serif;font-size:15px;color:#1d2733;background:#f4f6f8}
header{display:flex;align-items:center;gap:16px;background:#1f3a5f;color:#fff;padding:8px 16px;flex-wrap:wrap}
header a{color:#dfe9f5;text-decoration:none;padding:6px 8px;border-radius:4px}
header a.active,header a:hover{background:#2f5484;color:#fff}
header nav{display:flex;flex-wrap:wrap;gap:2px}
.brand{font-weight:700;margin-right:8px}
.right{margin-left:auto;display:flex;align-items:center;gap:10px}
.user{color:#fff}
main{padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:8px 0 16px}
h2{font-size:18px;margin:24px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0 16px}
th,td{border:1px solid #d5dbe1;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#e8edf2;font-weight:600;white-space:nowrap}
tr:nth-child(even) td{background:#fafbfc}
td:first-child{white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;white-space:nowrap;border:1px solid transparent}
.b-ok,.b-succeeded,.b-success,.b-shipped,.b-paid,.b-info,.b-done{background:#e3f4e8;color:#145c2e;border-color:#9fd3b0}
.b-warning,.b-waiting,.b-printed,.b-partially_shipped,.b-pending,.b-submitted,.b-in_flight,.b-running,.b-skipped{background:#fff4d6;color:#6b4c00;border-color:#f0cf78}
.b-error,.b-failed,.b-fatal,.b-rejected,.b-needs_reauthorization,.b-canceled,.b-cancelled{background:#fde3e3;color:#8a1c1c;border-color:#efa3a3}
.b-attention{background:#f3e0ff;color:#5a1a85;border-color:#c9a0e8}
.b-neutral,.b-unpaid,.b-hold,.b-awaiting_shipment,.b-awaiting_print,.b-allocated{background:#e8edf2;color:#2a3a4a;border-color:#c2ccd6}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;background:#fff;padding:10px;border:1px solid #d5dbe1;margin-bottom:8px}
form.filters label{display:flex;flex-direction:column;font-size:13px;gap:2px}
input,select,button{font:inherit;padding:5px 8px;border:1px solid #9aa7b4;border-radius:4px;background:#fff}
button,.button{background:#1f5fa8;color:#fff;border-color:#1f5fa8;cursor:pointer;text-decoration:none;display:inline-block;padding:6px 14px;border-radius:4px}
button:hover{background:#174b86}
button.secondary{background:#fff;color:#1f5fa8}
button.link{background:none;border:none;color:#dfe9f5;padding:4px;text-decoration:underline}
form.inline{display:inline}
.msg{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;margin:0}
.flash{padding:10px 14px;border-radius:4px;margin:8px 0 16px;border:1px solid}
.flash.ok{background:#e3f4e8;border-color:#9fd3b0;color:#145c2e}
.flash.err{background:#fde3e3;border-color:#efa3a3;color:#8a1c1c;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
.card{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:12px 16px}
.card h3{margin:0 0 8px;font-size:16px}
.card.wide{grid-column:1/-1}
.card form{margin:6px 0;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.tile{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:10px 16px;min-width:170px}
.tile .n{font-size:26px;font-weight:700}
.tile a{color:inherit}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
.chart{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:8px}
.chart svg{width:100%;height:auto}
.masked{color:#6b7785;letter-spacing:2px}
.hint{color:#4a5866;font-size:13px}
.todo{background:#fff8e6;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0 10px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #d5dbe1;padding:10px 14px}
dl.kv dt{font-weight:600;color:#44515e}
dl.kv dd{margin:0}
.login{max-width:380px;background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:20px}
.login label{display:block;margin:10px 0 4px}
.login input{width:100%}
.login button{margin-top:16px;width:100%}
a{color:#1f5fa8}
"#;

/// A plain message page body.
pub fn message(text: &str) -> Markup {
    html! { p class="flash err" { (text) } }
}

/// One header cell of a table: its (untranslated-by-now) label and whether it is right-aligned.
pub struct Col<'a> {
    label: &'a str,
    num: bool,
}

impl<'a> Col<'a> {
    /// A text column.
    pub fn text(label: &'a str) -> Self {
        Col { label, num: false }
    }

    /// A numeric column (right-aligned, `class="num"`).
    pub fn num(label: &'a str) -> Self {
        Col { label, num: true }
    }
}

/// A whole table: the header cells and `rows` (the `<tr>`s); when `empty` is given (the table
/// has no rows), one row across all columns saying so comes first.
pub fn table(id: Option<&str>, cols: &[Col<'_>], empty: Option<&str>, rows: Markup) -> Markup {
    html! {
        table id=[id] {
            thead {
                tr {
                    @for c in cols {
                        th class=[c.num.then_some("num")] { (c.label) }
                    }
                }
            }
            tbody {
                @if let Some(text) = empty {
                    tr { td colspan=(cols.len()) { (text) } }
                }
                (rows)
            }
        }
    }
}

/// `<pre class="msg">`: a message shown verbatim (line breaks kept).
pub fn pre_msg(text: &str) -> Markup {
    html! { pre class="msg" { (text) } }
}

/// `<div class="msg">`, or nothing without a message.
pub fn div_msg(text: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = text {
            div class="msg" { (m) }
        }
    }
}

/// A flash message: `class` is `ok` or `err` (or another colour), `id` the element's id.
pub fn flash(class: &str, id: &str, text: &str) -> Markup {
    html! { p class={ "flash " (class) } id=(id) { (text) } }
}
