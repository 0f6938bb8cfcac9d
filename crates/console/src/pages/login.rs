//! サインイン: the sign-in form, signing in (a session cookie) and signing out.

use std::net::SocketAddr;

use axum::{
    Extension, Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use store::operators;

use crate::{
    AppError, AppState, Ctx, L,
    auth::{self, SESSION_COOKIE},
    cookie,
    html::{self, Frame},
    i18n::Lang,
};

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn login_form(lang: Lang, next: &str, error: Option<&str>) -> Html<String> {
    let body = html! {
        @if let Some(m) = error {
            p class="flash err" id="login-error" { (m) }
        }
        form class="login" method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="username" { (lang.t("ユーザー名", "Username")) }
            input id="username" name="username" autocomplete="username" required autofocus;
            label for="password" { (lang.t("パスワード", "Password")) }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" id="sign-in" { (lang.t("サインイン", "Sign in")) }
        }
    };
    let here = format!("/login?next={}", html::url_enc(next));
    Html(
        html::page(
            &Frame {
                lang,
                here: &here,
                user: None,
                admin: false,
            },
            lang.t("サインイン", "Sign in"),
            body,
        )
        .into_string(),
    )
}

pub async fn form(L(lang): L, Query(q): Query<LoginQuery>) -> Html<String> {
    login_form(lang, &safe_next(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// The client's address for sign-in throttling: the first `X-Forwarded-For` entry behind a
/// trusted proxy, else the peer.
fn client_address(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> String {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match (state.trust_forwarded_for, forwarded, peer) {
        (true, Some(f), _) => f.to_owned(),
        (_, _, Some(Extension(ConnectInfo(addr)))) => addr.ip().to_string(),
        _ => "unknown".to_owned(),
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    L(lang): L,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(f.next.as_deref());
    let username = f.username.trim();
    let address = client_address(&state, &headers, peer);
    let now = Utc::now();
    let mut conn = state.pool.acquire().await?;
    let failures =
        operators::sign_in_failures(&mut conn, username, &address, now - auth::FAILURE_WINDOW)
            .await?;
    if let Some(wait) = auth::sign_in_wait(failures, now) {
        let secs = wait.num_seconds().max(1);
        tracing::warn!(
            username,
            address,
            failures = failures.count,
            wait_secs = secs,
            "sign-in throttled"
        );
        let text = match lang {
            Lang::Ja => {
                format!("サインインの失敗が続いたため、{secs}秒後にもう一度お試しください。")
            }
            Lang::En => format!("Too many failed sign-ins: try again in {secs} seconds."),
        };
        let mut resp = login_form(lang, &next, Some(&text)).into_response();
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
        return Ok(resp);
    }
    drop(conn);
    match auth::sign_in(&state.pool, username, &f.password).await? {
        Some(token) => {
            tracing::info!(username, "operator signed in");
            let mut conn = state.pool.acquire().await?;
            operators::clear_sign_in_failures(&mut conn, username).await?;
            let secure = if state.secure_cookies { "; Secure" } else { "" };
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                auth::SESSION_TTL.num_seconds()
            );
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut()
                .append(header::SET_COOKIE, HeaderValue::from_str(&cookie)?);
            Ok(resp)
        }
        None => {
            // The user name and address only, never the password.
            tracing::warn!(username, address, "sign-in refused");
            let mut conn = state.pool.acquire().await?;
            operators::record_sign_in_failure(&mut conn, username, &address).await?;
            let mut resp = login_form(
                lang,
                &next,
                Some(lang.t(
                    "ユーザー名またはパスワードが正しくありません。",
                    "Wrong username or password.",
                )),
            )
            .into_response();
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn sign_out(
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf)?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        auth::sign_out(&ctx.state.pool, token).await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("console_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next(Some("/runs?shop=a")), "/runs?shop=a");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
