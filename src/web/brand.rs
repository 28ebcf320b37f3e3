//! Branding on every page (README "Branding"): the configured product name,
//! logo, accent colour and support link. Templates carry two markers, one
//! in the header and one at the end of the page; one layer over the page
//! routers fills them in, so no page can forget them and no template needs
//! the configuration. Every configured value is escaped for HTML here.

use axum::{
    body::Body,
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{config::Config, state::AppState};

/// Where the brand (logo and name) goes: the top of every page.
pub const HEADER_MARK: &str = "<!--pcl:brand-->";
/// Where the support link goes: the end of every page.
pub const FOOTER_MARK: &str = "<!--pcl:support-->";
/// Pages are small; a larger body is passed through untouched.
const MAX_PAGE_BYTES: usize = 1 << 20;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn header_html(config: &Config) -> String {
    let logo = config.logo_url.as_deref().map_or_else(String::new, |url| {
        format!(
            "<img class=\"brand-logo\" src=\"{}\" alt=\"\">",
            escape(url)
        )
    });
    format!(
        "<span class=\"brand-line\">{logo}<span class=\"brand-name\">{}</span></span>",
        escape(&config.product_name)
    )
}

fn footer_html(config: &Config) -> String {
    match &config.support_url {
        Some(url) => format!(
            "<p class=\"support\"><a href=\"{}\">Help and support</a></p>",
            escape(url)
        ),
        None => String::new(),
    }
}

/// Fills the brand markers of an HTML page and puts the product name in
/// its title.
pub async fn fill(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        return (parts.status, "The page could not be rendered.").into_response();
    };
    let Ok(html) = String::from_utf8(bytes.to_vec()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let config = &state.config;
    let html = html
        .replace(HEADER_MARK, &header_html(config))
        .replace(FOOTER_MARK, &footer_html(config))
        .replace(
            "· Portcullis</title>",
            &format!("· {}</title>", escape(&config.product_name)),
        );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(html))
}

/// `/static/brand.css`: the accent colour, after the stylesheet.
pub async fn stylesheet(State(state): State<AppState>) -> impl IntoResponse {
    let css = match &state.config.accent_color {
        // Validated at start: `#` and 3 or 6 hex digits.
        Some(color) => format!(":root {{ --accent: {color}; }}\n"),
        None => String::new(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
}
