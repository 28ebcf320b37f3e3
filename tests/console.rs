//! The web console over HTTP, as a person's browser uses it: sign in, manage
//! keys and apps, members and activity, with the server deciding who may do
//! what. The same flows run in real Chromium in `browser.rs`.

mod common;

use common::{CALLBACK, TestServer, TestUser, hidden};
use portcullis::{identity::scope::Role, store::ToolCall};
use reqwest::{StatusCode, header};
use uuid::Uuid;

/// A cookie-keeping client signed in as `user` through the real sign-in form.
async fn signed_in(server: &TestServer, user: &TestUser) -> reqwest::Client {
    let browser = server.browser();
    let status = server.sign_in(&browser, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    browser
}

async fn get(browser: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = browser.get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post(
    browser: &reqwest::Client,
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The CSRF token the console's forms carry, read from any console page.
async fn csrf(browser: &reqwest::Client, server: &TestServer) -> String {
    let (status, html) = get(browser, server, "/console/connect").await;
    assert_eq!(status, StatusCode::OK);
    hidden(&html, "csrf")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of the input with this id.
fn input_value(html: &str, id: &str) -> String {
    let tag_start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let marker = "value=\"";
    let start = tag_start + html[tag_start..].find(marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_back() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2F");
    let response = server
        .http
        .get(server.url("/console/activity?tool=whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&response),
        "/login?next=%2Fconsole%2Factivity%3Ftool%3Dwhoami"
    );

    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let browser = signed_in(&server, &user).await;
    // Nothing connected yet: the front door points to Connect.
    let response = browser.get(server.url("/")).send().await.unwrap();
    assert_eq!(location(&response), "/console/connect?notice=welcome");
    server.api_key(&user, org, "mcp:read").await;
    let response = browser.get(server.url("/")).send().await.unwrap();
    assert_eq!(location(&response), "/console/keys");
    let response = browser
        .get(server.url("/console/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    let html = response.text().await.unwrap();
    assert!(html.contains(&user.email));
    assert!(html.contains("Acme"));
    assert!(!html.contains("<script>"), "no inline scripts");

    // The sign-in page of the OAuth flow keeps its script-free policy.
    let response = server.http.get(server.url("/login")).send().await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains("script-src"), "{csp}");
}

#[tokio::test]
async fn a_member_creates_a_key_sees_it_once_and_revokes_it() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let browser = signed_in(&server, &user).await;
    let token = csrf(&browser, &server).await;
    let org_id = org.to_string();

    let response = post(
        &browser,
        &server,
        "/console/keys",
        &[
            ("csrf", &token),
            ("name", "laptop"),
            ("org", &org_id),
            ("mcp_read", "on"),
            ("mcp_write", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await.unwrap();
    let key = input_value(&html, "secret");
    assert!(key.starts_with("pcl_"), "{key}");
    assert!(html.contains(&format!(
        "claude mcp add --transport http portcullis {}/mcp",
        server.base
    )));
    assert!(html.contains(&format!("X-Organization-Id: {org}")));
    assert!(html.contains("[mcp_servers.portcullis]"));
    assert!(html.contains("mcpServers"), "Cursor's mcp.json");

    let keys = server
        .state
        .store
        .api_keys(Some(user.id), None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].scopes.to_string(), "mcp:read mcp:write");
    assert_eq!(keys[0].name, "laptop");
    assert!(key.contains(&keys[0].id));

    // The list shows the key by its prefix, never the secret again.
    let (_, list) = get(&browser, &server, "/console/keys").await;
    assert!(list.contains("<td data-label=\"Name\"><bdi>laptop</bdi></td>"));
    assert!(list.contains(&format!("pcl_{}…", &keys[0].id[..8])));
    assert!(!list.contains(&key));

    let response = post(
        &browser,
        &server,
        "/console/keys/revoke",
        &[("csrf", &token), ("id", &keys[0].id), ("org", &org_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, list) = get(&browser, &server, &location(&response)).await;
    assert!(list.contains("The API key was revoked"));
    assert!(!list.contains("<td data-label=\"Name\"><bdi>laptop</bdi></td>"));
    let stored = server
        .state
        .store
        .api_key(&keys[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some());
}

#[tokio::test]
async fn a_viewer_cannot_create_a_write_key() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let viewer = server.user(org, Role::Viewer).await;
    let browser = signed_in(&server, &viewer).await;
    let (_, html) = get(&browser, &server, "/console/keys").await;
    assert!(
        html.contains("name=\"mcp_write\" value=\"on\" disabled"),
        "write is offered as unavailable"
    );
    let token = hidden(&html, "csrf");
    let org_id = org.to_string();

    // A crafted post gets the same answer as the form would.
    let response = post(
        &browser,
        &server,
        "/console/keys",
        &[
            ("csrf", &token),
            ("name", "sneaky"),
            ("org", &org_id),
            ("mcp_read", "on"),
            ("mcp_write", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("As a viewer in Acme, you can create keys with at most mcp:read."),
        "{html}"
    );
    assert!(
        server
            .state
            .store
            .api_keys(Some(viewer.id), None)
            .await
            .unwrap()
            .is_empty()
    );

    // Read only is fine.
    let response = post(
        &browser,
        &server,
        "/console/keys",
        &[
            ("csrf", &token),
            ("name", "reader"),
            ("org", &org_id),
            ("mcp_read", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let browser = signed_in(&server, &admin).await;
    let org_id = org.to_string();
    for (path, form) in [
        (
            "/console/keys",
            vec![("name", "k"), ("org", org_id.as_str()), ("mcp_read", "on")],
        ),
        ("/console/keys/revoke", vec![("id", "x")]),
        ("/console/apps/revoke", vec![("grant_id", "x")]),
        (
            "/console/org/members",
            vec![
                ("org", org_id.as_str()),
                ("email", "a@b.c"),
                ("role", "viewer"),
            ],
        ),
    ] {
        let response = post(&browser, &server, path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let mut forged = form.clone();
        forged.push(("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let response = post(&browser, &server, path, &forged).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("did not come from this site")
        );
    }
    assert!(
        server
            .state
            .store
            .api_keys(Some(admin.id), None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Signing out changes state, so a link or a forged form cannot do it: GET
/// asks, and only the form with the CSRF token ends the session.
#[tokio::test]
async fn signing_out_takes_the_form_with_its_csrf_token() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let browser = signed_in(&server, &user).await;

    let (status, page) = get(&browser, &server, "/logout").await;
    assert_eq!(status, StatusCode::OK);
    let token = hidden(&page, "csrf");
    assert_eq!(
        get(&browser, &server, "/console/keys").await.0,
        StatusCode::OK
    );

    let forged = post(
        &browser,
        &server,
        "/logout",
        &[("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&browser, &server, "/console/keys").await.0,
        StatusCode::OK
    );

    let response = post(&browser, &server, "/logout", &[("csrf", token.as_str())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let response = browser
        .get(server.url("/console/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed out");
}

/// `next` after sign-in stays on this site, whatever a crafted link says.
#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    for next in [
        "//evil.example/",
        "/\t/evil.example/",
        "https://evil.example/",
        "/caf\u{e9}",
    ] {
        let response = server
            .sign_in_then(&server.browser(), &user.email, &user.password, next)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&response), "/", "{next:?}");
    }
}

#[tokio::test]
async fn only_admins_see_and_change_the_organization() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let admin = server.user(org, Role::Admin).await;
    let member = server.user(org, Role::Member).await;
    let org_id = org.to_string();

    let browser = signed_in(&server, &member).await;
    let (_, keys) = get(&browser, &server, "/console/keys").await;
    assert!(!keys.contains("/console/org"), "no Organization tab");
    let (status, html) = get(&browser, &server, "/console/org").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Only admins of Acme can manage its members"));
    let token = hidden(&keys, "csrf");
    let promote = [
        ("csrf", token.as_str()),
        ("org", org_id.as_str()),
        ("user_id", &member.id.to_string()),
        ("role", "admin"),
    ];
    let response = post(&browser, &server, "/console/org/role", &promote).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        server.state.store.role(member.id, org).await.unwrap(),
        Some(Role::Member)
    );

    let browser = signed_in(&server, &admin).await;
    let (status, html) = get(&browser, &server, "/console/org").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&member.email) && html.contains(&admin.email));
    let token = hidden(&html, "csrf");

    // Change a role.
    let response = post(
        &browser,
        &server,
        "/console/org/role",
        &[
            ("csrf", &token),
            ("org", &org_id),
            ("user_id", &member.id.to_string()),
            ("role", "viewer"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.state.store.role(member.id, org).await.unwrap(),
        Some(Role::Viewer)
    );

    // The last admin cannot step down.
    let response = post(
        &browser,
        &server,
        "/console/org/role",
        &[
            ("csrf", &token),
            ("org", &org_id),
            ("user_id", &admin.id.to_string()),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("the only admin"));

    // Create a user with a password; they can then sign in.
    let email = format!("{}@example.test", Uuid::new_v4().simple());
    let response = post(
        &browser,
        &server,
        "/console/org/users",
        &[
            ("csrf", &token),
            ("org", &org_id),
            ("email", &email),
            ("password", "short"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("at least 12"));
    let response = post(
        &browser,
        &server,
        "/console/org/users",
        &[
            ("csrf", &token),
            ("org", &org_id),
            ("email", &email),
            ("password", common::PASSWORD),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let created = server
        .state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    signed_in(
        &server,
        &TestUser {
            id: created.id,
            email: email.clone(),
            password: common::PASSWORD.into(),
        },
    )
    .await;

    // Add an existing user of another org by email.
    let other = server.org("Elsewhere").await;
    let outsider = server.user(other, Role::Admin).await;
    let add = |email: String| {
        let token = token.clone();
        let org_id = org_id.clone();
        let browser = browser.clone();
        let url = server.url("/console/org/members");
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf", token),
                    ("org", org_id),
                    ("email", email),
                    ("role", "viewer".into()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let response = add("nobody@example.test".into()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no user with the email")
    );
    let response = add(outsider.email.clone()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.state.store.role(outsider.id, org).await.unwrap(),
        Some(Role::Viewer)
    );
    let response = add(outsider.email.clone()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // An admin of Acme has no say in Elsewhere.
    let response = post(
        &browser,
        &server,
        "/console/org/role",
        &[
            ("csrf", &token),
            ("org", &other.to_string()),
            ("user_id", &outsider.id.to_string()),
            ("role", "viewer"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn people_see_and_revoke_only_their_own_keys_and_apps() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let alice = server.user(org, Role::Admin).await;
    let bob = server.user(org, Role::Admin).await;
    server.api_key(&alice, org, "mcp:read").await;
    let alice_key = server
        .state
        .store
        .api_keys(Some(alice.id), None)
        .await
        .unwrap()
        .remove(0);
    let tokens = server.oauth_tokens(&alice, "mcp:read").await;
    let grant = server
        .state
        .store
        .grants(Some(alice.id), None)
        .await
        .unwrap()
        .remove(0);

    let browser = signed_in(&server, &bob).await;
    let (_, keys) = get(&browser, &server, "/console/keys").await;
    assert!(!keys.contains(&alice_key.id[..8]));
    let (_, apps) = get(&browser, &server, "/console/apps").await;
    assert!(apps.contains("No apps are connected"));
    let token = hidden(&keys, "csrf");
    let response = post(
        &browser,
        &server,
        "/console/keys/revoke",
        &[("csrf", &token), ("id", &alice_key.id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post(
        &browser,
        &server,
        "/console/apps/revoke",
        &[("csrf", &token), ("client_id", &grant.client_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        server
            .state
            .store
            .api_key(&alice_key.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(!server.state.revoked.is_revoked(grant.id));
    assert_eq!(tokens.client_id, grant.client_id);
}

#[tokio::test]
async fn disconnecting_an_app_stops_its_token_at_once() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let user = server.user(org, Role::Member).await;
    let tokens = server
        .oauth_tokens(&user, "openid email mcp:read mcp:write")
        .await;
    let userinfo = || {
        server
            .http
            .get(server.url("/userinfo"))
            .bearer_auth(&tokens.access_token)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), StatusCode::OK);

    let browser = signed_in(&server, &user).await;
    let (status, html) = get(&browser, &server, "/console/apps").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Test client"));
    let callback_host = url::Url::parse(CALLBACK).unwrap();
    assert!(html.contains(&format!(
        "{}:{}",
        callback_host.host_str().unwrap(),
        callback_host.port().unwrap()
    )));
    assert!(html.contains("mcp:read mcp:write"));
    let response = post(
        &browser,
        &server,
        "/console/apps/revoke",
        &[
            ("csrf", &hidden(&html, "csrf")),
            ("client_id", &hidden(&html, "client_id")),
            ("org", &org.to_string()),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(userinfo().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (_, html) = get(&browser, &server, &location(&response)).await;
    assert!(html.contains("No apps are connected"));
    let (status, _) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", &tokens.client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn call(org: Uuid, user: Uuid, at: i64, tool: &str, outcome: &str) -> ToolCall {
    ToolCall {
        id: Uuid::new_v4(),
        at,
        org_id: org,
        user_id: user,
        source: "mcp-bearer".into(),
        client_id: None,
        api_key_id: Some("0123456789abcdef0123456789abcdef".into()),
        tool: tool.into(),
        outcome: outcome.into(),
        duration_ms: 3,
        upstream_status: None,
        detail: None,
    }
}

#[tokio::test]
async fn activity_is_filtered_and_paged_without_losing_calls_in_the_same_second() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let other = server.org("Elsewhere").await;
    let viewer = server.user(org, Role::Viewer).await;
    let now = portcullis::store::now();
    // 60 calls within two seconds, so a page boundary falls inside a second.
    let mut calls: Vec<ToolCall> = (0..60)
        .map(|i| call(org, viewer.id, now - (i % 2), "list_widgets", "ok"))
        .collect();
    calls.push(call(org, viewer.id, now - 3600, "delete_widget", "denied"));
    calls.push(call(other, viewer.id, now, "secret_tool", "ok"));
    server.state.store.insert_tool_calls(&calls).await.unwrap();

    let browser = signed_in(&server, &viewer).await;
    let (status, first) = get(&browser, &server, "/console/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first
            .matches("<code><bdi>list_widgets</bdi></code>")
            .count(),
        50
    );
    assert!(!first.contains("secret_tool"), "other orgs' calls stay out");
    assert!(first.contains(&viewer.email));
    let next = first
        .split("href=\"/console/activity?")
        .find_map(|rest| {
            let (query, tail) = rest.split_once('"')?;
            tail.starts_with(" rel=\"next\"")
                .then(|| query.replace("&#38;", "&").replace("&amp;", "&"))
        })
        .expect("a link to older calls");
    let (_, second) = get(&browser, &server, &format!("/console/activity?{next}")).await;
    assert_eq!(
        second
            .matches("<code><bdi>list_widgets</bdi></code>")
            .count(),
        10
    );
    assert_eq!(
        second
            .matches("<code><bdi>delete_widget</bdi></code>")
            .count(),
        1
    );
    assert!(!second.contains("rel=\"next\""));

    let (_, denied) = get(
        &browser,
        &server,
        "/console/activity?outcome=denied&tool=&user=",
    )
    .await;
    assert_eq!(
        denied
            .matches("<code><bdi>delete_widget</bdi></code>")
            .count(),
        1
    );
    assert!(!denied.contains("<code><bdi>list_widgets</bdi></code>"));
    let (_, by_tool) = get(&browser, &server, "/console/activity?tool=delete_widget").await;
    assert_eq!(by_tool.matches("<tbody>").count(), 1);
    assert!(!by_tool.contains("<code><bdi>list_widgets</bdi></code>"));
    let today = time::OffsetDateTime::now_utc().date();
    let tomorrow = today.next_day().unwrap();
    let (_, future) = get(
        &browser,
        &server,
        &format!("/console/activity?from={tomorrow}"),
    )
    .await;
    assert!(future.contains("No calls match"));
    let (status, _) = get(&browser, &server, "/console/activity?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Another org's log is not reachable by naming it.
    let (status, html) = get(&browser, &server, &format!("/console/activity?org={other}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("not a member of that organization"));
}

#[tokio::test]
async fn someone_in_two_orgs_switches_between_them() {
    let server = TestServer::start().await;
    let acme = server.org("Acme").await;
    let globex = server.org("Globex").await;
    let user = server.user(acme, Role::Viewer).await;
    server.add_to_org(&user, globex, Role::Admin).await;
    let browser = signed_in(&server, &user).await;
    let (_, html) = get(&browser, &server, "/console/keys").await;
    assert!(html.contains("id=\"org-switch\""));
    assert!(
        !html.contains("/console/org?"),
        "a viewer in Acme, the first org"
    );
    let (_, html) = get(&browser, &server, &format!("/console/keys?org={globex}")).await;
    assert!(html.contains(&format!("<option value=\"{globex}\" selected>")));
    assert!(html.contains(&format!("/console/org?org={globex}")));
    let (status, _) = get(&browser, &server, &format!("/console/org?org={globex}")).await;
    assert_eq!(status, StatusCode::OK);
    // The admin scope is offered (Globex allows it) but Acme refuses it.
    let token = hidden(&html, "csrf");
    let response = post(
        &browser,
        &server,
        "/console/keys",
        &[
            ("csrf", &token),
            ("name", "k"),
            ("org", &acme.to_string()),
            ("mcp_admin", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post(
        &browser,
        &server,
        "/console/keys",
        &[
            ("csrf", &token),
            ("name", "k"),
            ("org", &globex.to_string()),
            ("mcp_admin", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
