//! HTML pages for people: sign-in, consent, the console, errors. Every page
//! carries the anti-framing and no-cache headers of SPEC §3.5.

pub mod brand;
pub mod console;
pub mod csrf;
pub mod device;
pub mod login;
pub mod reset;
pub mod session;
pub mod setup;
pub mod throttle;

use askama::Template;
use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// The console's pages load one script of ours (`/static/console.js`, the copy
/// buttons) and only post forms to this server. `form-action` is not in the
/// general policy because Chromium applies it to the redirect that follows the
/// consent form, which must reach the client's own redirect URI.
const CSP_WITH_OWN_SCRIPT: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Put in a response's extensions by a page that loads `/static/console.js`;
/// `security_headers` then allows same-origin scripts for that page only.
#[derive(Debug, Clone, Copy)]
pub struct OwnScript;

/// Adds the security headers of SPEC §3.5 to every page response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    secured(next.run(request).await)
}

/// The headers of SPEC §3.5, for a page served outside the pages router.
pub fn secured(mut response: Response) -> Response {
    let csp = if response.extensions().get::<OwnScript>().is_some() {
        CSP_WITH_OWN_SCRIPT
    } else {
        CSP
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// An error shown to a person as a readable page, never a stack trace.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            title: "This request cannot be completed",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            message: message.into(),
        }
    }

    pub fn internal() -> PageError {
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong",
            message: "The server could not complete the request. Please try again.".into(),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure on a page");
        PageError::internal()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = render(&ErrorPage {
            title: self.title,
            message: &self.message,
        });
        *response.status_mut() = self.status;
        response
    }
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/style.css"),
    )
}

pub async fn console_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../templates/console/console.js"),
    )
}
