//! Operator web console: server-rendered HTML (axum), Japanese and English, light on JavaScript.
//!
//! Operators sign in (argon2id hashes, server-side sessions) and see only their shops. Triggers
//! go through the transactional outbox like every other command, with `requested_by` = the
//! operator. Pages are [`maud`] templates (`html!`, in [`html`] and `pages`): every dynamic
//! value is escaped by default and the markup is checked at compile time (the `source_rules`
//! test keeps HTML built by string formatting out). PII (buyer, ship-to) is masked until an
//! operator reveals it, and each reveal is written to the API log (without the PII).

pub mod auth;
pub mod charts;
pub mod cli;
pub mod html;
pub mod i18n;
pub mod mapping_csv;
pub mod pages;

use std::{future::Future, net::SocketAddr};

use axum::{
    Router,
    extract::{FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono_tz::Tz;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    auth::{Operator, SESSION_COOKIE},
    html::Frame,
    i18n::Lang,
};
use maud::{Markup, html};

/// Cookie holding the chosen language.
pub const LANG_COOKIE: &str = "console_lang";

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Prefix of exchange names (`BUS_PREFIX`), as for every other publisher.
    pub bus_prefix: String,
    /// Time zone the console shows times and day buckets in (`CONSOLE_TZ`, default Asia/Tokyo).
    pub tz: Tz,
    /// Mark cookies `Secure` (`CONSOLE_SECURE_COOKIES=1` behind HTTPS).
    pub secure_cookies: bool,
    /// Opens the sealed buyer and ship-to data (`CONNECTOR_ENCRYPTION_KEYS`).
    pub keys: crypto::Keyring,
    /// Take the client's address from `X-Forwarded-For` (`CONSOLE_TRUST_X_FORWARDED_FOR=1`,
    /// only behind a proxy that sets it): sign-in throttling counts failures per address.
    pub trust_forwarded_for: bool,
    /// RabbitMQ (`AMQP_URL`), for the dead-letters page: connected per request, only when an
    /// administrator opens the page or replays.
    pub amqp_url: String,
}

impl AppState {
    pub fn new(pool: PgPool, bus_prefix: impl Into<String>, keys: crypto::Keyring) -> Self {
        Self {
            pool,
            keys,
            bus_prefix: bus_prefix.into(),
            tz: chrono_tz::Asia::Tokyo,
            secure_cookies: false,
            trust_forwarded_for: false,
            amqp_url: bus::DEFAULT_AMQP_URL.to_owned(),
        }
    }
}

/// `console serve` configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub addr: SocketAddr,
    pub bus_prefix: String,
    pub tz: Tz,
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
    /// `AMQP_URL` (default [`bus::DEFAULT_AMQP_URL`]): the dead-letters page's RabbitMQ.
    pub amqp_url: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |n: &str| {
            std::env::var(n)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let database_url =
            var("DATABASE_URL").unwrap_or_else(|| store::DEFAULT_DATABASE_URL.to_owned());
        let addr_s = var("CONSOLE_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let addr = addr_s.parse().map_err(|_| {
            anyhow::anyhow!(
                "CONSOLE_ADDR={addr_s:?} is not valid: expected host:port, e.g. 127.0.0.1:8080"
            )
        })?;
        let tz_s = var("CONSOLE_TZ").unwrap_or_else(|| "Asia/Tokyo".to_owned());
        let tz = tz_s.parse().map_err(|_| {
            anyhow::anyhow!("CONSOLE_TZ={tz_s:?} is not a time zone: expected e.g. Asia/Tokyo")
        })?;
        let amqp_url = checked_amqp_url(var("AMQP_URL"))?;
        Ok(Self {
            database_url,
            amqp_url,
            addr,
            bus_prefix: var("BUS_PREFIX").unwrap_or_default(),
            tz,
            secure_cookies: matches!(var("CONSOLE_SECURE_COOKIES").as_deref(), Some("1" | "true")),
            trust_forwarded_for: matches!(
                var("CONSOLE_TRUST_X_FORWARDED_FOR").as_deref(),
                Some("1" | "true")
            ),
        })
    }
}

/// `AMQP_URL` as set (default [`bus::DEFAULT_AMQP_URL`]), refused unless it is an `amqp://` or
/// `amqps://` URL (the error names the variable, as `runtime::Config` does).
fn checked_amqp_url(value: Option<String>) -> anyhow::Result<String> {
    let url = value.unwrap_or_else(|| bus::DEFAULT_AMQP_URL.to_owned());
    if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
        anyhow::bail!("AMQP_URL must be an amqp:// or amqps:// URL");
    }
    Ok(url)
}

/// Every route of the console.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::dashboard::page))
        .route(
            "/login",
            get(pages::login::form).post(pages::login::sign_in),
        )
        .route("/logout", post(pages::login::sign_out))
        .route("/shops", get(pages::shops::list))
        .route("/shops/{code}", get(pages::shops::detail))
        .route(
            "/shops/{code}/notifications/subscribe",
            post(pages::shops::subscribe),
        )
        .route(
            "/shops/{code}/notifications/unsubscribe",
            post(pages::shops::unsubscribe),
        )
        .route(
            "/actions",
            get(pages::actions::page).post(pages::actions::trigger),
        )
        .route(
            "/schedules",
            get(pages::schedules::page).post(pages::schedules::change),
        )
        .route("/runs", get(pages::runs::page))
        .route("/instructions", get(pages::instructions::list))
        .route("/instructions/{id}", get(pages::instructions::detail))
        .route(
            "/instructions/{id}/reveal",
            post(pages::instructions::reveal),
        )
        .route("/api-log", get(pages::api_log::page))
        .route("/feeds", get(pages::feeds::list))
        .route("/feeds/{id}", get(pages::feeds::detail))
        .route("/attention", get(pages::attention::page))
        .route("/dead-letters", get(pages::dead_letters::page))
        .route("/dead-letters/replay", post(pages::dead_letters::replay))
        .route("/delivery", get(pages::delivery::page))
        .route("/delivery/methods", post(pages::delivery::save_method))
        .route("/delivery/carriers", post(pages::delivery::save_carrier))
        .route(
            "/delivery/carriers/remove",
            post(pages::delivery::remove_carrier),
        )
        .route("/delivery/rules", post(pages::delivery::add_rule))
        .route("/delivery/rules/remove", post(pages::delivery::remove_rule))
        .route("/external-products", get(pages::external_products::page))
        .route(
            "/external-products/map",
            post(pages::external_products::map),
        )
        .route(
            "/external-products/handling",
            post(pages::external_products::handling),
        )
        .route(
            "/external-products/unmap",
            post(pages::external_products::unmap),
        )
        .route(
            "/external-products/share",
            post(pages::external_products::share),
        )
        .route(
            "/external-products/export",
            get(pages::external_products::export),
        )
        .route(
            "/external-products/import",
            post(pages::external_products::import),
        )
        .route("/shipments/{id}/resend", post(pages::attention::resend))
        .route(
            "/cancel-requests/{id}/{decision}",
            post(pages::attention::decide_cancel_request),
        )
        .route("/livez", get(|| async { "ok" }))
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn(lang_cookie))
        .with_state(state)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

/// The request's language: `?lang=`, then the cookie, then Japanese.
pub fn lang_of(parts: &Parts) -> Lang {
    query_lang(parts.uri.query())
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or_default()
}

/// Remembers `?lang=` in a cookie.
async fn lang_cookie(req: Request, next: Next) -> Response {
    let chosen = query_lang(req.uri().query());
    let mut resp = next.run(req).await;
    if let Some(l) = chosen
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            l.code()
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The request's language (no sign-in needed).
pub struct L(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for L {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(L(lang_of(parts)))
    }
}

/// A signed-in request: language, where we are, the operator and the state. Redirects to the
/// sign-in page when there is no valid session.
pub struct Ctx {
    pub lang: Lang,
    pub here: String,
    pub op: Operator,
    pub state: AppState,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(parts);
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let op = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => {
                let mut conn = state
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| AppError::from(e).into_response())?;
                auth::operator(&mut conn, token)
                    .await
                    .map_err(|e| AppError::Internal(e).into_response())?
            }
            None => None,
        };
        match op {
            Some(op) => Ok(Ctx {
                lang,
                here,
                op,
                state: state.clone(),
            }),
            None => {
                Err(Redirect::to(&format!("/login?next={}", html::url_enc(&here))).into_response())
            }
        }
    }
}

/// The fields every per-shop form posts: the session's CSRF token and the shop's code.
#[derive(Debug, serde::Deserialize)]
pub struct ShopForm {
    pub csrf: String,
    pub shop: String,
}

impl Ctx {
    /// The shop a per-shop form was posted for, after the CSRF check (403), if the operator sees
    /// it (404 otherwise).
    pub fn posted_shop(&self, f: &ShopForm) -> Result<&auth::ShopRef, AppError> {
        self.check_csrf(&f.csrf)?;
        self.op.shop_by_code(&f.shop).ok_or(AppError::NotFound)
    }

    pub fn t<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        self.lang.t(ja, en)
    }

    /// The shop a per-shop page shows: the one named (404 when the operator does not see it),
    /// else the operator's first.
    pub fn pick_shop(&self, code: Option<&str>) -> Result<Option<&auth::ShopRef>, AppError> {
        match code {
            Some(c) => self.op.shop_by_code(c).map(Some).ok_or(AppError::NotFound),
            None => Ok(self.op.shops.first()),
        }
    }

    /// A per-shop page for an operator who sees no shop: `body` (a flash) and what to do.
    pub fn no_shops_page(&self, title: &str, body: Markup, status: StatusCode) -> Response {
        let body = html! {
            (body)
            (html::message(self.t(
                "閲覧できるショップがありません。管理者に依頼してください。",
                "You have no shops. Ask an administrator to give you access.",
            )))
        };
        (status, self.page(title, body)).into_response()
    }

    /// The hidden fields every per-shop form posts ([`ShopForm`]).
    pub fn shop_form_fields(&self, shop_code: &str) -> Markup {
        html! {
            input type="hidden" name="csrf" value=(self.op.csrf);
            input type="hidden" name="shop" value=(shop_code);
        }
    }

    /// The form that switches a per-shop page to another of the operator's shops.
    pub fn shop_switch(&self, selected: &str) -> Markup {
        html! {
            form class="filters" method="get" {
                (self.shop_select_with(Some(selected), None))
                button type="submit" { (self.t("切り替え", "Switch")) }
            }
        }
    }

    /// Commits an operator's change of a shop's settings together with its API-log entry
    /// (action `console`, the operator's name in the details).
    pub async fn commit_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        shop_id: Uuid,
        sku: Option<&str>,
        code: &str,
        message: &str,
    ) -> Result<(), store::StoreError> {
        let entry = store::api_log::Entry {
            sku,
            code: Some(code),
            details: Some(serde_json::json!({ "operator": self.op.username })),
            ..store::api_log::Entry::new(
                Some(shop_id),
                "console",
                store::api_log::Level::Info,
                message,
            )
        };
        store::api_log::write(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A whole page in the layout.
    pub fn page(&self, title: &str, body: Markup) -> Html<String> {
        Html(
            html::page(
                &Frame {
                    lang: self.lang,
                    here: &self.here,
                    user: Some((&self.op.display_name, &self.op.csrf)),
                    admin: self.op.admin,
                },
                title,
                body,
            )
            .into_string(),
        )
    }

    /// The shops a list shows: the one named by a `shop` filter (404 unless the operator sees
    /// it), or all of the operator's shops.
    pub fn scope(&self, shop: Option<&str>) -> Result<Vec<Uuid>, AppError> {
        match shop.filter(|s| !s.is_empty()) {
            Some(code) => self
                .op
                .shop_by_code(code)
                .map(|s| vec![s.id])
                .ok_or(AppError::NotFound),
            None => Ok(self.op.shop_ids()),
        }
    }

    /// Refuses an operator who is not a console administrator ([`AppError::AdminOnly`], 403).
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.op.admin {
            Ok(())
        } else {
            Err(AppError::AdminOnly)
        }
    }

    /// Refuses a POST whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        if token == self.op.csrf {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// `<select name="shop">` of the operator's shops, with "all" first (no filter).
    pub fn shop_select(&self, selected: Option<&str>) -> Markup {
        self.shop_select_with(selected, Some(self.t("すべて", "All")))
    }

    /// `<select name="shop">` of the operator's shops; `all_label` adds a first "all" option.
    fn shop_select_with(&self, selected: Option<&str>, all_label: Option<&str>) -> Markup {
        let items: Vec<(String, String)> = self
            .op
            .shops
            .iter()
            .map(|s| (s.code.clone(), format!("{} ({})", s.name, s.code)))
            .collect();
        html! {
            label {
                (self.t("ショップ", "Shop"))
                select name="shop" { (html::options(&items, selected, all_label)) }
            }
        }
    }
}

/// An empty form field is no filter.
pub fn nz(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Errors of a handler.
#[derive(Debug)]
pub enum AppError {
    NotFound,
    Forbidden,
    /// A page or form for console administrators only, asked for by another operator (403).
    AdminOnly,
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, ja, en) = match &self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "ページが見つからないか、このショップを閲覧する権限がありません。",
                "Not found, or you have no access to this shop.",
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "この操作は許可されていません。ページを再読み込みしてからやり直してください。",
                "This request is not allowed. Reload the page and try again.",
            ),
            Self::AdminOnly => (
                StatusCode::FORBIDDEN,
                "この画面はコンソール管理者のみ利用できます。",
                "This page is for console administrators only.",
            ),
            Self::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "内部エラーが発生しました。時間をおいて再度お試しください。",
                    "Internal error. Please try again later.",
                )
            }
        };
        let body = html! {
            p class="flash err" { (ja) br; (en) }
            p { a href="/" { "ダッシュボード / Dashboard" } }
        };
        let page = html::page(
            &Frame {
                lang: Lang::Ja,
                here: "/",
                user: None,
                admin: false,
            },
            &status.to_string(),
            body,
        );
        (status, Html(page.into_string())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_text_and_attributes() {
        let hostile = r#"<a href="x">'&'</a>"#;
        let m = html! { span title=(hostile) { (hostile) } }.into_string();
        assert_eq!(
            m,
            "<span title=\"&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;\">\
             &lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</span>"
        );
        assert_eq!(
            html::badge("x\"><script>", "<b>").into_string(),
            r#"<span class="badge b-x&quot;&gt;&lt;script&gt;">&lt;b&gt;</span>"#
        );
    }

    #[test]
    fn amqp_url_is_checked() {
        assert_eq!(checked_amqp_url(None).unwrap(), bus::DEFAULT_AMQP_URL);
        assert_eq!(
            checked_amqp_url(Some("amqps://u:p@mq:5671/%2f".into())).unwrap(),
            "amqps://u:p@mq:5671/%2f"
        );
        let err = checked_amqp_url(Some("http://mq:5672".into())).unwrap_err();
        assert!(err.to_string().contains("AMQP_URL"), "{err}");
    }

    #[test]
    fn language_switch_keeps_the_query() {
        assert_eq!(
            html::with_lang("/runs?shop=a&lang=ja", Lang::En),
            "/runs?shop=a&lang=en"
        );
        assert_eq!(html::with_lang("/", Lang::Ja), "/?lang=ja");
    }
}
