//! Shared setup: a real Portcullis on `127.0.0.1:0` backed by a fresh SQLite
//! file, or a fresh PostgreSQL database when `PORTCULLIS_TEST_POSTGRES_URL` is
//! set, plus a scripted browser that signs in and consents through the real
//! forms.
#![allow(dead_code)]

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use portcullis::{AppState, Config, identity::scope::Role};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use url::Url;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";

pub struct TestServer {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
    pub scope: String,
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Everything the server logs during the tests, for secrecy assertions.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("portcullis=debug,tower_http=debug")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// A fresh database for one test: a new PostgreSQL database when
/// `PORTCULLIS_TEST_POSTGRES_URL` is set, else a SQLite file in `dir`.
pub async fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("PORTCULLIS_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("pcl_test_{}", Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&admin_url)
                .await
                .expect("connect to PORTCULLIS_TEST_POSTGRES_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
            let mut url = Url::parse(&admin_url).expect("valid postgres URL");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => format!("sqlite://{}", dir.join("portcullis.db").display()),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://127.0.0.1:{}", addr.port());
        let mut config = Config::load(None, std::iter::empty()).unwrap();
        config.listen = addr;
        config.public_url = base.clone();
        config.database_url = database_url(dir.path()).await;
        config.keys_dir = dir.path().join("keys");
        config.cimd_allow_loopback = true;
        config.max_concurrent_hashes = 8;
        configure(&mut config);
        let state = portcullis::build(config).await.expect("server builds");
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        let done = tokio::spawn(async move {
            portcullis::run(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            state,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown: Some(tx),
            done: Some(done),
            _dir: dir,
        }
    }

    /// Stops the server gracefully and waits until it has flushed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn resource(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub async fn org(&self, name: &str) -> Uuid {
        let v = portcullis::admin::create_org(&self.state.store, name)
            .await
            .unwrap();
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn user(&self, org: Uuid, role: Role) -> TestUser {
        let email = format!("{}@example.test", Uuid::new_v4().simple());
        let v = portcullis::admin::create_user(
            &self.state.store,
            &self.state.passwords,
            &email,
            PASSWORD,
            org,
            role,
        )
        .await
        .unwrap();
        TestUser {
            id: v["id"].as_str().unwrap().parse().unwrap(),
            email,
            password: PASSWORD.into(),
        }
    }

    pub async fn add_to_org(&self, user: &TestUser, org: Uuid, role: Role) {
        portcullis::admin::add_to_org(&self.state.store, &user.email, org, role)
            .await
            .unwrap();
    }

    pub async fn api_key(&self, user: &TestUser, org: Uuid, scopes: &str) -> String {
        let v = portcullis::admin::create_api_key(
            &self.state.store,
            &self.state.config.api_key_prefix,
            &user.email,
            org,
            Some(scopes),
            Some("test key"),
        )
        .await
        .unwrap();
        v["key"].as_str().unwrap().to_owned()
    }

    pub async fn register(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register_public(&self, redirect_uris: &[&str]) -> RegisteredClient {
        let response = self
            .register(json!({ "client_name": "Test client", "redirect_uris": redirect_uris, "token_endpoint_auth_method": "none" }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        RegisteredClient {
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            client_secret: None,
        }
    }

    /// A cookie-keeping browser that does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Posts the sign-in form with `password` as a browser would (fetching
    /// the form first for its CSRF token) and returns the answer's status.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> StatusCode {
        self.sign_in_then(browser, email, password, "/")
            .await
            .status()
    }

    /// The same, asking to be sent to `next` afterwards; returns the answer.
    pub async fn sign_in_then(
        &self,
        browser: &reqwest::Client,
        email: &str,
        password: &str,
        next: &str,
    ) -> reqwest::Response {
        let login = browser
            .get(self.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&login, "csrf");
        browser
            .post(self.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("next", next),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Drives an authorization URL through sign-in and consent, approving
    /// `approve` (e.g. "mcp:read mcp:write"; unticked boxes are down-scoped),
    /// and returns the URL the browser was finally sent to (the callback).
    pub async fn authorize_in_browser(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        user: &TestUser,
        approve: &str,
    ) -> Url {
        let mut location = authorize_url.to_owned();
        for _ in 0..10 {
            let url = absolute(&self.base, &location);
            if !url.as_str().starts_with(&self.base) {
                return url;
            }
            let response = browser.get(url.clone()).send().await.unwrap();
            if response.status().is_redirection() {
                location = response.headers()[header::LOCATION]
                    .to_str()
                    .unwrap()
                    .to_owned();
                continue;
            }
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "unexpected page at {url}"
            );
            let html = response.text().await.unwrap();
            let next = if url.path() == "/login" {
                let form = [
                    ("csrf", hidden(&html, "csrf")),
                    ("next", hidden(&html, "next")),
                    ("email", user.email.clone()),
                    ("password", user.password.clone()),
                ];
                browser
                    .post(self.url("/login"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
            } else if html.contains("action=\"/consent\"") {
                let mut form = vec![
                    ("csrf", hidden(&html, "csrf")),
                    ("request", hidden(&html, "request")),
                    ("org_id", hidden(&html, "org_id")),
                    ("decision", "approve".to_owned()),
                ];
                if approve.contains("mcp:write") {
                    form.push(("grant_write", "on".into()));
                }
                if approve.contains("mcp:admin") {
                    form.push(("grant_admin", "on".into()));
                }
                browser
                    .post(self.url("/consent"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
            } else {
                panic!("unexpected page at {url}: {html}");
            };
            assert!(
                next.status().is_redirection(),
                "form post answered {}: {}",
                next.status(),
                next.text().await.unwrap()
            );
            location = next.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
        }
        panic!("too many redirects");
    }

    /// The complete flow for a fresh public client: DCR, authorize with PKCE,
    /// sign-in, consent, token exchange.
    pub async fn oauth_tokens(&self, user: &TestUser, scope: &str) -> Tokens {
        let client = self.register_public(&[CALLBACK]).await;
        let pkce = Pkce::new();
        let url = self.authorize_url(&client.client_id, CALLBACK, scope, &pkce, "st4te");
        let callback = self
            .authorize_in_browser(&self.browser(), &url, user, scope)
            .await;
        let code = query_param(&callback, "code").expect("callback carries a code");
        let response = self
            .http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &pkce.verifier),
                ("client_id", &client.client_id),
                ("resource", &self.resource()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let raw: Value = response.json().await.unwrap();
        Tokens {
            access_token: raw["access_token"].as_str().unwrap().to_owned(),
            refresh_token: raw["refresh_token"].as_str().unwrap().to_owned(),
            client_id: client.client_id,
            scope: raw["scope"].as_str().unwrap().to_owned(),
            raw,
        }
    }

    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        pkce: &Pkce,
        state: &str,
    ) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &self.resource());
        url.to_string()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

pub fn absolute(base: &str, location: &str) -> Url {
    Url::parse(base).unwrap().join(location).unwrap()
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of a hidden form field, with askama's HTML escaping undone.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').unwrap();
        let entity = &after[1..end];
        let ch = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&e[2..], 16).unwrap()).unwrap()
            }
            e if e.starts_with('#') => char::from_u32(e[1..].parse().unwrap()).unwrap(),
            e => panic!("unknown entity {e}"),
        };
        out.push(ch);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
