//! サインイン: the sign-in form, signing in (a session cookie) and signing out.

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    AppError, AppState, Ctx, L,
    auth::{self, SESSION_COOKIE},
    cookie,
    html::{self, Frame, e},
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
    let err = error
        .map(|m| format!(r#"<p class="flash err" id="login-error">{}</p>"#, e(m)))
        .unwrap_or_default();
    let body = format!(
        r#"{err}<form class="login" method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label for="username">{user}</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">{pw}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">{btn}</button></form>"#,
        next = e(next),
        user = e(lang.t("ユーザー名", "Username")),
        pw = e(lang.t("パスワード", "Password")),
        btn = e(lang.t("サインイン", "Sign in")),
    );
    let here = format!("/login?next={}", html::url_enc(next));
    Html(html::page(
        &Frame {
            lang,
            here: &here,
            user: None,
        },
        lang.t("サインイン", "Sign in"),
        &body,
    ))
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

pub async fn sign_in(
    State(state): State<AppState>,
    L(lang): L,
    Form(f): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(f.next.as_deref());
    match auth::sign_in(&state.pool, f.username.trim(), &f.password).await? {
        Some(token) => {
            tracing::info!(username = %f.username.trim(), "operator signed in");
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
            tracing::info!("sign-in refused");
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
