//! The command line an operator uses (SPEC §2.2), run as the real binary
//! against a SQLite file; every admin command prints one JSON object.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn run(dir: &Path, args: &[&str], stdin: &str) -> (bool, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.join("p.db").display()),
        )
        .env("PORTCULLIS_KEYS_DIR", dir.join("keys"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object on stdout: {text}");
    (out.status.success(), serde_json::from_str(&text).unwrap())
}

fn ok(dir: &Path, args: &[&str]) -> Value {
    let (success, value) = run(dir, args, "");
    assert!(success, "{args:?}: {value}");
    value
}

#[test]
fn an_operator_sets_up_orgs_users_and_keys_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert_eq!(ok(dir, &["migrate"])["migrated"], true);
    let org = ok(dir, &["org", "create", "--name", "Acme"]);
    let org_id = org["id"].as_str().unwrap();
    assert_eq!(org["name"], "Acme");
    let other = ok(dir, &["org", "create", "--name", "Beta"])["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (success, user) = run(
        dir,
        &[
            "user",
            "create",
            "--email",
            "ana@example.test",
            "--org",
            org_id,
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "a long enough password\n",
    );
    assert!(success, "{user}");
    assert_eq!(user["email"], "ana@example.test");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
    let (success, short) = run(
        dir,
        &[
            "user",
            "create",
            "--email",
            "bo@example.test",
            "--org",
            org_id,
            "--role",
            "viewer",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!success && short["error"].as_str().unwrap().contains("at least 12"));

    // A viewer's key cannot carry write; a member's can.
    let (success, refused) = run(
        dir,
        &[
            "apikey",
            "create",
            "--email",
            "ana@example.test",
            "--org",
            org_id,
            "--scopes",
            "mcp:read mcp:write",
        ],
        "",
    );
    assert!(
        !success
            && refused["error"]
                .as_str()
                .unwrap()
                .contains("at most mcp:read"),
        "{refused}"
    );
    ok(
        dir,
        &[
            "user",
            "add-to-org",
            "--email",
            "ana@example.test",
            "--org",
            &other,
            "--role",
            "member",
        ],
    );
    let key = ok(
        dir,
        &[
            "apikey",
            "create",
            "--email",
            "ana@example.test",
            "--org",
            &other,
            "--scopes",
            "mcp:read mcp:write",
            "--name",
            "laptop",
        ],
    );
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with(&format!("pcl_{}_", key["id"].as_str().unwrap())));
    assert_eq!(key["scopes"], serde_json::json!(["mcp:read", "mcp:write"]));

    let listed = ok(dir, &["apikey", "list", "--email", "ana@example.test"]);
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let printed = listed.to_string();
    let (_, key_secret) = portcullis::identity::api_key::parse("pcl", secret).unwrap();
    let stored_hash = portcullis::identity::secret::hash(key_secret);
    assert!(!printed.contains(secret) && !printed.contains(key_secret));
    assert!(
        !printed.contains(&stored_hash),
        "the stored hash is never printed"
    );
    ok(dir, &["apikey", "revoke", key["id"].as_str().unwrap()]);
    assert_eq!(
        ok(dir, &["apikey", "list", "--email", "ana@example.test"])["keys"],
        serde_json::json!([])
    );
    let (success, _) = run(dir, &["apikey", "revoke", key["id"].as_str().unwrap()], "");
    assert!(!success, "revoking twice reports the key as not found");

    assert_eq!(
        ok(dir, &["client", "list"])["clients"],
        serde_json::json!([])
    );
    let (success, _) = run(dir, &["client", "revoke", "no-such-client"], "");
    assert!(!success);

    let first = ok(dir, &["keys", "rotate"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = ok(dir, &["keys", "rotate"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    assert!(
        dir.join("keys").join(format!("{first}.pem")).exists(),
        "the previous key is kept"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keys/active")).unwrap(),
        second
    );
}
