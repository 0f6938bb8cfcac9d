//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over W3C WebDriver: sign in, trigger an hours-mode import, see the run and the imported
//! instructions, open the API log, change a schedule (自動実行), switch language, and open
//! デッドレター once the operator is a console administrator. On failure a screenshot of the page is
//! saved to `target/console-screenshots/`; with `CONSOLE_SCREENSHOTS=all` every step is saved.

mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use chrono::Utc;
use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("console-screenshots")
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> anyhow::Result<Driver> {
    let bin = which(&["chromedriver"]).context(
        "chromedriver not found: install Debian's chromium and chromium-driver (.ci/run does)",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return Ok(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("chromedriver did not become ready")
}

/// A WebDriver session.
struct Browser {
    http: reqwest::Client,
    base: String,
    profile: PathBuf,
    step: u32,
}

impl Browser {
    async fn new(driver: &Driver) -> anyhow::Result<Self> {
        let chromium = which(&["chromium", "chromium-browser", "google-chrome"])
            .context("chromium not found")?;
        let profile = std::env::temp_dir().join(format!("console-chromium-{}", Uuid::now_v7()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1400,1000", "--lang=ja",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let id = v["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session: {v}"))?
            .to_owned();
        let b = Self {
            http,
            base: format!("{}/session/{id}", driver.url),
            profile,
            step: 0,
        };
        b.cmd(
            reqwest::Method::POST,
            "/timeouts",
            Some(json!({"implicit": 5000, "pageLoad": 30000, "script": 10000})),
        )
        .await?;
        Ok(b)
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await?.json().await?;
        if let Some(err) = v["value"].get("error") {
            bail!("webdriver {path}: {err} {}", v["value"]["message"]);
        }
        Ok(v["value"].clone())
    }

    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .with_context(|| format!("element {css:?}"))?;
        Ok(v[ELEMENT].as_str().context("element id")?.to_owned())
    }

    async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Marks the current document, so [`Self::wait_new_page`] can tell when it was replaced.
    async fn mark(&self) -> anyhow::Result<()> {
        self.execute("window.__consoleOld = true;").await?;
        Ok(())
    }

    /// Waits until a new document has replaced the marked one and finished loading.
    async fn wait_new_page(&self) -> anyhow::Result<()> {
        for _ in 0..300 {
            let state = self
                .execute("return window.__consoleOld === true ? 'old' : document.readyState;")
                .await
                .unwrap_or(Value::Null);
            if state == "complete" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the page did not change within 15 s")
    }

    /// Clicks something that loads a new page, and waits for it.
    async fn click_nav(&self, css: &str) -> anyhow::Result<()> {
        self.mark().await?;
        self.click(css).await?;
        self.wait_new_page().await
    }

    /// Runs a script that loads a new page, and waits for it.
    async fn execute_nav(&self, script: &str) -> anyhow::Result<()> {
        self.mark().await?;
        self.execute(script).await?;
        self.wait_new_page().await
    }

    /// Sets an input's value by script (date-time inputs take keys per locale segment).
    async fn set_value(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "document.querySelector(arguments[0]).value = arguments[1];", "args": [css, value]})),
        )
        .await?;
        Ok(())
    }

    async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self.find(css).await?;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    async fn text(&self, css: &str) -> anyhow::Result<String> {
        let el = self.find(css).await?;
        Ok(self
            .cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    async fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .cmd(reqwest::Method::GET, "/url", None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default())?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// With `CONSOLE_SCREENSHOTS=all`, keeps a screenshot of every step.
    async fn step(&mut self, name: &str) -> anyhow::Result<()> {
        self.step += 1;
        if std::env::var("CONSOLE_SCREENSHOTS").as_deref() == Ok("all") {
            self.screenshot(&format!("step-{:02}-{name}", self.step))
                .await?;
        }
        Ok(())
    }

    async fn quit(&self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// What order-ingest would have written for the command: a finished run and two instructions.
async fn simulate_import(pool: &PgPool, shop_id: Uuid, command_id: Uuid) -> anyhow::Result<()> {
    let now = Utc::now();
    sqlx::query(
        r#"INSERT INTO action_runs (id, shop_id, action, mode, status, command_id, requested_by, window_from, window_to,
                                    counts, amazon_calls, started_at, finished_at)
           VALUES ($1, $2, 'order-ingest', 'hours', 'succeeded', $3, 'alice', $4, $5,
                   '{"pages": 1, "orders": 2, "new": 2, "calls": {"searchOrders": 1}, "duration_ms": 2300}', 1, $5, $5)"#,
    )
    .bind(Uuid::now_v7())
    .bind(shop_id)
    .bind(command_id)
    .bind(now - chrono::Duration::hours(6))
    .bind(now)
    .execute(pool)
    .await?;
    instruction(
        pool,
        shop_id,
        "503-7777777-0000001",
        "山田 太郎",
        now - chrono::Duration::hours(2),
    )
    .await;
    instruction(
        pool,
        shop_id,
        "503-7777777-0000002",
        "佐藤 花子",
        now - chrono::Duration::hours(1),
    )
    .await;
    log(
        pool,
        shop_id,
        "order-ingest",
        "info",
        None,
        "import finished: 1 page, 2 orders (2 new)",
    )
    .await;
    log(
        pool,
        shop_id,
        "feed-poller",
        "error",
        Some("503-7777777-0000001"),
        "18028: The data you provided for the carrier code is invalid.",
    )
    .await;
    Ok(())
}

/// A fortnight of history for the dashboard, the feeds pages and the shops page.
async fn seed_history(pool: &PgPool, shop_id: Uuid) -> anyhow::Result<Uuid> {
    for day in 1..14i32 {
        let calls = json!({"searchOrders": {"calls": 3 + day % 4, "throttled": day % 3, "limiter_wait_ms": 1500 * day}, "getOrder": {"calls": day % 5, "throttled": 0, "limiter_wait_ms": 0}});
        sqlx::query(
            r#"INSERT INTO action_runs (id, shop_id, action, mode, status, requested_by, counts, amazon_calls, started_at, finished_at)
               VALUES (gen_random_uuid(), $1, 'status-sync', 'changes', $2, 'cron:status-sync',
                       jsonb_build_object('paid', $3, 'canceled', $4, 'calls', $5::jsonb, 'continuations', $6),
                       $7, now() - make_interval(days => $8), now() - make_interval(days => $8))"#,
        )
        .bind(shop_id)
        .bind(if day == 4 { "failed" } else { "succeeded" })
        .bind(2 + day % 5)
        .bind(day % 3)
        .bind(calls)
        .bind(day % 2)
        .bind(3 + day % 4 + day % 5)
        .bind(day)
        .execute(pool)
        .await?;
        sqlx::query(
            r#"INSERT INTO action_runs (id, shop_id, action, mode, status, requested_by, counts, amazon_calls, started_at, finished_at)
               VALUES (gen_random_uuid(), $1, 'shipment-feedback', NULL, 'succeeded', 'cron:shipment', '{"calls": {"createFeed": 1, "createFeedDocument": 1}}', 2,
                       now() - make_interval(days => $2), now() - make_interval(days => $2))"#,
        )
        .bind(shop_id)
        .bind(day)
        .execute(pool)
        .await?;
        let id = instruction(
            pool,
            shop_id,
            &format!("503-5555555-{day:07}"),
            "History Buyer",
            Utc::now(),
        )
        .await;
        sqlx::query("UPDATE shipping_instructions SET created_at = now() - make_interval(days => $2), status = 'shipped', shipped_at = now() - make_interval(days => $2) + interval '5 hours', tracking_numbers = ARRAY['1234567890' || $2::text] WHERE id = $1")
            .bind(id)
            .bind(day)
            .execute(pool)
            .await?;
    }
    let feed = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO feed_submissions (id, shop_id, feed_type, marketplace_ids, state, amazon_feed_id, processing_status, created_at, submitted_at, finished_at)
         VALUES ($1, $2, 'POST_ORDER_FULFILLMENT_DATA', ARRAY['A1VC38T7YXB528'], 'done', '50012345', 'DONE', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day')",
    )
    .bind(feed)
    .bind(shop_id)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO feed_messages (feed_submission_id, message_id, amazon_order_id, result, result_code, result_message)
         VALUES ($1, 1, '503-5555555-0000001', 'success', NULL, NULL),
                ($1, 2, '503-5555555-0000002', 'success', NULL, NULL),
                ($1, 3, '503-5555555-0000003', 'error', '18028', 'The data you provided for the carrier code is invalid. Value provided: Yamato-X')",
    )
    .bind(feed)
    .execute(pool)
    .await?;
    Ok(feed)
}

async fn scenario(
    b: &mut Browser,
    base: &str,
    pool: &PgPool,
    shop_id: Uuid,
    prefix: &str,
) -> anyhow::Result<()> {
    // Sign in (redirected from the dashboard).
    b.goto(&format!("{base}/")).await?;
    ensure!(
        b.url().await?.contains("/login"),
        "not redirected to sign-in"
    );
    b.step("login").await?;
    b.type_into("#username", "alice").await?;
    b.type_into("#password", PASSWORD).await?;
    b.click_nav("#sign-in").await?;
    ensure!(
        b.text("h1").await? == "ダッシュボード",
        "dashboard after sign-in"
    );
    b.find("svg#chart-orders").await?;
    b.step("dashboard").await?;

    // The range form refuses two weeks in the page, before anything is sent.
    b.goto(&format!("{base}/actions")).await?;
    b.set_value("#range-form input[name=from]", "2026-10-01T09:00")
        .await?;
    b.set_value("#range-form input[name=to]", "2026-10-15T09:00")
        .await?;
    b.click("#range-submit").await?;
    let msg = b.text("#range-form .form-error").await?;
    ensure!(msg.contains("最大7日間"), "page-side range check: {msg:?}");
    ensure!(
        b.url().await?.ends_with("/actions"),
        "the form was submitted"
    );
    b.step("range-refused").await?;
    // Bypassing the page (form.submit() skips its checks), the server refuses it too.
    b.execute_nav("document.getElementById('range-form').submit();")
        .await?;
    let refused = b.text("#refused").await?;
    ensure!(
        refused.contains("範囲が長すぎます") && refused.contains("何も送信していません"),
        "server-side refusal: {refused:?}"
    );
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?;
    ensure!(
        queued == 0,
        "a refused trigger published {queued} message(s)"
    );
    b.step("range-refused-by-server").await?;

    // Trigger an hours-mode import.
    b.type_into("#hours-form input[name=hours]", "6").await?;
    b.click_nav("#hours-submit").await?;
    let queued = b.text("#queued").await?;
    ensure!(
        queued.contains("時間指定で取得"),
        "queued flash: {queued:?}"
    );
    b.step("queued").await?;
    let (id, payload): (Uuid, Value) = sqlx::query_as(
        "SELECT id, payload FROM outbox WHERE routing_key = 'order-ingest' AND exchange = $1",
    )
    .bind(format!("{prefix}commands"))
    .fetch_one(pool)
    .await
    .context("one outbox row for the trigger")?;
    ensure!(
        payload["requested_by"] == "alice",
        "requested_by: {payload}"
    );
    ensure!(
        payload["params"]["mode"] == "hours" && payload["params"]["hours"] == 6,
        "{payload}"
    );

    // order-ingest runs (simulated here): the run appears, and the imported instructions.
    simulate_import(pool, shop_id, id).await?;
    let feed = seed_history(pool, shop_id).await?;
    b.goto(&format!("{base}/actions")).await?;
    let triggers = b.text("#triggers").await?;
    ensure!(
        triggers.contains("成功") && triggers.contains("alice"),
        "trigger row: {triggers}"
    );
    b.goto(&format!("{base}/runs")).await?;
    let runs = b.text("#runs").await?;
    ensure!(
        runs.contains("出荷指示取得")
            && runs.contains("時間指定で取得")
            && runs.contains("成功")
            && runs.contains("alice"),
        "runs: {runs}"
    );
    b.step("runs").await?;
    b.click_nav("header nav a[href='/instructions']").await?;
    let list = b.text("#instructions").await?;
    ensure!(
        list.contains("503-7777777-0000001") && list.contains("503-7777777-0000002"),
        "instructions: {list}"
    );
    ensure!(!list.contains("山田"), "PII in the list");
    b.step("instructions").await?;
    b.click_nav("#instructions a[href^='/instructions/']")
        .await?;
    b.find("#lines").await?;
    b.step("instruction-detail").await?;

    // API log, filtered by level.
    b.click_nav("header nav a[href='/api-log']").await?;
    ensure!(b.text("h1").await? == "APIログ", "API log heading");
    let log = b.text("#api-log").await?;
    ensure!(
        log.contains("18028: The data you provided for the carrier code is invalid."),
        "{log}"
    );
    b.goto(&format!("{base}/api-log?level=error")).await?;
    let errors = b.text("#api-log").await?;
    ensure!(
        errors.contains("18028") && !errors.contains("import finished"),
        "{errors}"
    );
    b.step("api-log").await?;

    // A parcel shipped two days ago that was never sent (issue 17, item 1).
    let late = instruction(
        pool,
        shop_id,
        "503-8888888-0000001",
        "Late Buyer",
        Utc::now(),
    )
    .await;
    sqlx::query("UPDATE shipping_instructions SET status = 'shipped', tracking_numbers = '{400012345678}', shipped_on = (now() - interval '2 days')::date WHERE id = $1")
        .bind(late)
        .execute(pool)
        .await?;

    // The attention list names the unmapped SKU of the imported orders and what to do.
    b.click_nav("header nav a[href='/attention']").await?;
    let unmapped = b.text("#attention-unmapped").await?;
    ensure!(unmapped.contains("SKU-UNMAPPED-1"), "attention: {unmapped}");
    let late_rows = b.text("#attention-late").await?;
    ensure!(
        late_rows.contains("503-8888888-0000001"),
        "late: {late_rows}"
    );
    b.step("attention").await?;
    // The operator resends it from the page.
    b.click_nav("#attention-late button.resend").await?;
    let flash = b.text("#resend-flash").await?;
    ensure!(
        flash.contains("再送を依頼しました") && flash.contains("503-8888888-0000001"),
        "resend flash: {flash}"
    );
    b.step("attention-resent").await?;

    // 外部商品: map a SKU to a product with handling days through the form.
    store::catalog::insert_product(
        &mut *pool.acquire().await?,
        shop_id,
        "P-GREEN",
        "緑茶 500ml",
    )
    .await?;
    b.click_nav("header nav a[href='/external-products']")
        .await?;
    b.type_into("#map-form input[name=sku]", "SKU-GREEN-1")
        .await?;
    b.type_into("#map-form input[name=product]", "P-GREEN")
        .await?;
    b.type_into("#map-form input[name=handling_days]", "2")
        .await?;
    b.click_nav("#map-submit").await?;
    ensure!(
        b.text("#done").await?.contains("登録しました"),
        "mapped flash"
    );
    let table = b.text("#external-products").await?;
    ensure!(
        table.contains("SKU-GREEN-1") && table.contains("緑茶 500ml"),
        "external products: {table}"
    );
    b.step("external-products").await?;

    // 配送方法: a delivery method saved through the form.
    b.click_nav("header nav a[href='/delivery']").await?;
    b.type_into("#method-form input[name=code]", "yamato")
        .await?;
    b.type_into("#method-form input[name=name]", "宅急便")
        .await?;
    b.type_into("#method-form input[name=external]", "yamato")
        .await?;
    b.click_nav("#method-submit").await?;
    let methods = b.text("#delivery-methods").await?;
    ensure!(methods.contains("宅急便"), "delivery methods: {methods}");
    b.step("delivery").await?;

    // 自動実行: the shop's schedule. A bad cadence is refused in the page with why (nothing
    // saved); a good one is saved with the operator's name.
    b.click_nav("header nav a[href='/schedules']").await?;
    ensure!(b.text("h1").await? == "自動実行", "schedules heading");
    let table = b.text("#schedules").await?;
    ensure!(
        table.contains("出荷指示取得（通常）")
            && table.contains("出荷実績戻し（終業時）")
            && table.contains("有効"),
        "schedules: {table}"
    );
    b.step("schedules").await?;
    let cron = "#schedule-order-ingest-default input[name=cron]";
    b.type_into(cron, "*/5 * * *").await?;
    b.click_nav("#schedule-order-ingest-default button.save")
        .await?;
    let refused = b.text("#schedule-error").await?;
    ensure!(
        refused.contains("実行間隔として使えません") && refused.contains("何も保存していません"),
        "schedule refusal: {refused:?}"
    );
    b.step("schedule-refused").await?;
    b.type_into(cron, "*/5 * * * *").await?;
    b.click_nav("#schedule-order-ingest-default button.save")
        .await?;
    let saved = b.text("#schedule-saved").await?;
    ensure!(
        saved.contains("自動実行を変更しました") && saved.contains("出荷指示取得（通常）"),
        "schedule saved: {saved:?}"
    );
    let (cron_saved, by): (String, String) = sqlx::query_as(
        "SELECT cron, updated_by FROM schedules WHERE shop_id = $1 AND action = 'order-ingest' AND entry = 'default'",
    )
    .bind(shop_id)
    .fetch_one(pool)
    .await?;
    ensure!(
        cron_saved == "*/5 * * * *" && by == "alice",
        "saved schedule: {cron_saved:?} by {by:?}"
    );
    b.step("schedule-changed").await?;
    b.click_nav("header nav a[href='/']").await?;
    b.find("svg#chart-calls").await?;
    b.find("svg#chart-operations").await?;
    b.step("dashboard-data").await?;

    // Shops, feeds and the per-message results, Amazon's message verbatim.
    b.click_nav("header nav a[href='/shops']").await?;
    ensure!(b.text("#shops").await?.contains("acme-jp"), "shops");
    b.step("shops").await?;
    b.click_nav("header nav a[href='/feeds']").await?;
    ensure!(
        b.text("#feeds")
            .await?
            .contains("POST_ORDER_FULFILLMENT_DATA"),
        "feeds"
    );
    b.step("feeds").await?;
    b.click_nav(&format!("a[href='/feeds/{feed}']")).await?;
    let msgs = b.text("#feed-messages").await?;
    ensure!(
        msgs.contains("Value provided: Yamato-X"),
        "feed messages: {msgs}"
    );
    b.step("feed").await?;
    b.goto(&format!("{base}/api-log")).await?;

    // Switch to English: the labels change, and stay changed on the next page.
    b.click_nav("#lang-switch").await?;
    ensure!(b.text("h1").await? == "API log", "English heading");
    let nav = b.text("header nav").await?;
    ensure!(
        nav.contains("Shipping instructions") && !nav.contains("タスク一覧"),
        "nav: {nav}"
    );
    b.step("api-log-en").await?;
    b.goto(&format!("{base}/actions")).await?;
    let card = b.text("#card-order-ingest").await?;
    ensure!(
        card.contains("Last N hours") && card.contains("Date range"),
        "actions in English: {card}"
    );
    b.goto(&format!("{base}/external-products")).await?;
    ensure!(
        b.text("h1").await? == "External products (mapping)",
        "external products in English"
    );
    b.goto(&format!("{base}/delivery")).await?;
    ensure!(
        b.text("#carriers").await? == "External delivery methods and carriers",
        "delivery in English"
    );
    b.goto(&format!("{base}/attention")).await?;
    let todo = b.text("#late-shipments").await?;
    ensure!(
        todo.contains("Shipments that missed their day"),
        "attention in English: {todo}"
    );
    b.goto(&format!("{base}/schedules")).await?;
    ensure!(b.text("h1").await? == "Schedules", "schedules in English");
    let row = b.text("#schedule-shipment-feedback-end-of-day").await?;
    ensure!(
        row.contains("Shipment-result return (end of day)")
            && row.contains("Enabled")
            && row.contains("Pause"),
        "schedule row in English: {row}"
    );
    let changed_by = b.text("#schedule-order-ingest-default").await?;
    ensure!(changed_by.contains("alice"), "changed by: {changed_by}");
    b.step("schedules-en").await?;
    b.goto(&format!("{base}/")).await?;
    b.step("dashboard-en").await?;
    b.click_nav("#lang-switch").await?;
    ensure!(b.text("h1").await? == "ダッシュボード", "back to Japanese");

    // デッドレター: not in the menu of an operator; once alice is a console administrator (no
    // new sign-in needed) it is, and the page shows each service's dead-letter queue, in
    // Japanese and in English.
    let nav = b.text("header nav").await?;
    ensure!(!nav.contains("デッドレター"), "nav of an operator: {nav}");
    let alice: Uuid = sqlx::query_scalar("SELECT id FROM console_users WHERE username = 'alice'")
        .fetch_one(pool)
        .await?;
    store::operators::set_admin(&mut *pool.acquire().await?, alice, true).await?;
    b.goto(&format!("{base}/")).await?;
    b.click_nav("header nav a[href='/dead-letters']").await?;
    ensure!(
        b.text("h1").await? == "デッドレター",
        "dead letters heading"
    );
    let section = b.text("#dlq-order-ingest").await?;
    ensure!(
        section.contains("出荷指示取得") && section.contains("空です"),
        "dead letters in Japanese: {section}"
    );
    b.step("dead-letters").await?;
    b.click_nav("#lang-switch").await?;
    ensure!(b.text("h1").await? == "Dead letters", "English heading");
    let section = b.text("#dlq-feed-poller").await?;
    ensure!(
        section.contains("Feed-result retrieval") && section.contains("Empty."),
        "dead letters in English: {section}"
    );
    b.step("dead-letters-en").await?;
    b.click_nav("#lang-switch").await?;
    Ok(())
}

#[sqlx::test(migrations = "../../migrations")]
async fn operator_flow_in_headless_chromium(pool: PgPool) {
    let shop_id = shop(&pool, "acme-jp", "JP", "Asia/Tokyo").await;
    user(&pool, "alice", &["acme-jp"]).await;
    // A queue prefix of its own: the dead-letters step declares the services' queues.
    let prefix = unique_prefix();
    let srv = start(pool.clone(), &prefix).await;
    let driver = start_driver().await.expect("chromedriver");
    let mut b = Browser::new(&driver).await.expect("a chromium session");
    let result = scenario(&mut b, &srv.base, &pool, shop_id, &prefix).await;
    delete_topology(&prefix).await;
    if let Err(err) = &result {
        let shot = b.screenshot("failure-operator_flow").await;
        b.quit().await;
        panic!("{err:#}\nscreenshot: {shot:?}");
    }
    b.quit().await;
}
