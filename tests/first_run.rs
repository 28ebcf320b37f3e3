//! The first hour (README "First run"): a one-time `/setup` page while no
//! user exists, the unattended bootstrap admin for containers, and `serve`
//! saying what to do next.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{TestServer, hidden};
use reqwest::{StatusCode, header};

#[tokio::test]
async fn the_setup_link_creates_the_first_org_and_admin_once() {
    let server = TestServer::start().await;
    let token = server.state.setup.open();
    let browser = server.browser();
    let wrong = browser
        .get(server.url("/setup?token=not-it"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let page = browser
        .get(server.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let mut form = vec![
        ("csrf", csrf.clone()),
        ("token", token.clone()),
        ("org", "Acme".to_owned()),
        ("email", "first@example.test".to_owned()),
        ("password", "short".to_owned()),
        ("confirm", "short".to_owned()),
    ];
    let weak = browser
        .post(server.url("/setup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    assert!(weak.text().await.unwrap().contains("at least 12"));
    form[4].1 = "the first admin's passphrase".into();
    form[5].1 = "the first admin's passphrase".into();
    let done = browser
        .post(server.url("/setup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let location = done.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with("/console/connect?org="), "{location}");
    let connect = browser.get(server.url(&location)).send().await.unwrap();
    assert_eq!(connect.status(), StatusCode::OK, "signed in");
    assert!(connect.text().await.unwrap().contains("Welcome"));
    let again = browser
        .get(server.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "setup is closed");
    server.stop().await;
}

#[tokio::test]
async fn the_bootstrap_admin_is_created_from_the_environment_only_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "a bootstrap passphrase\n").unwrap();
    let file = file.display().to_string();
    let env = |name: &str| match name {
        "PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL" => Some("ops@example.test".to_owned()),
        "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE" => Some(file.clone()),
        "PORTCULLIS_BOOTSTRAP_ADMIN_ORG" => Some("Ops".to_owned()),
        _ => None,
    };
    let made = portcullis::web::setup::bootstrap_from_env(&server.state.store, env)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(made.org_name, "Ops");
    assert_eq!(
        server
            .sign_in(
                &server.browser(),
                "ops@example.test",
                "a bootstrap passphrase"
            )
            .await,
        StatusCode::SEE_OTHER
    );
    let second = portcullis::web::setup::bootstrap_from_env(&server.state.store, env)
        .await
        .unwrap();
    assert!(second.is_none(), "users exist: nothing is created");
    server.stop().await;
}

#[tokio::test]
async fn serve_prints_the_setup_link_when_no_user_exists() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::database_url(dir.path()).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .env("PORTCULLIS_DATABASE_URL", &database_url)
        .env("PORTCULLIS_KEYS_DIR", dir.path().join("keys"))
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_METRICS_LISTEN", "off")
        .env("RUST_LOG", "portcullis=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut link = None;
    while link.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(start) = line.find("/setup?token=") {
                let rest = &line[start..];
                link = Some(rest[..rest.find(' ').unwrap_or(rest.len())].to_owned());
            }
            seen.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = seen.join("\n");
    let link = link.unwrap_or_else(|| panic!("no setup link in:\n{log}"));
    assert!(
        log.contains(&format!("http://localhost:{port}/setup?token=")),
        "{log}"
    );
    assert!(
        log.contains("database ready") && log.contains("created a signing key"),
        "{log}"
    );
    assert!(link.len() > "/setup?token=".len() + 40);
}
