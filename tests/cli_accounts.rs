//! Account administration from the command line (README "Accounts"), run as
//! the real binary against a fresh database (SQLite, or PostgreSQL when
//! `PORTCULLIS_TEST_POSTGRES_URL` is set): tables for people, one JSON
//! object with `--json`, and the same rules as the console.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Cli {
    database_url: String,
    dir: tempfile::TempDir,
}

struct Out {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one JSON object: {}",
            self.stdout
        );
        serde_json::from_str(&self.stdout).unwrap()
    }
}

impl Cli {
    async fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let database_url = common::database_url(dir.path()).await;
        Cli { database_url, dir }
    }

    fn run_with(&self, database_url: &str, args: &[&str], stdin: &str) -> Out {
        let mut child = Command::new(BIN)
            .args(args)
            .env("PORTCULLIS_DATABASE_URL", database_url)
            .env("PORTCULLIS_KEYS_DIR", self.dir.path().join("keys"))
            .env("PORTCULLIS_PUBLIC_URL", "https://mcp.example.test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Out {
            success: out.status.success(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_with(&self.database_url, args, stdin)
    }

    /// Runs with `--json` and expects success.
    fn ok(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args, "");
        assert!(out.success, "{args:?}: {} {}", out.stdout, out.stderr);
        out.json()
    }

    /// Runs with `--json` and expects failure; returns the error text.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args, stdin);
        assert!(!out.success, "{args:?} should fail: {}", out.stdout);
        out.json()["error"].as_str().unwrap().to_owned()
    }
}

fn create_user(cli: &Cli, email: &str, org: &str, role: &str) -> Value {
    let out = cli.run(
        &[
            "user",
            "create",
            "--email",
            email,
            "--org",
            org,
            "--role",
            role,
            "--password-stdin",
            "--json",
        ],
        "a long enough password\n",
    );
    assert!(out.success, "{}", out.stdout);
    out.json()
}

#[tokio::test]
async fn an_operator_lists_disables_removes_and_deletes_accounts() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    let acme = cli.ok(&["org", "create", "--name", "Acme"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let taken = cli.fails(&["org", "create", "--name", "ACME"], "");
    assert!(taken.contains("already exists"), "{taken}");
    let globex = cli.ok(&["org", "create", "--name", "Globex"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_user(&cli, "ana@example.test", &acme, "admin");
    create_user(&cli, "bob@example.test", &acme, "member");
    cli.ok(&[
        "user",
        "add-to-org",
        "--email",
        "bob@example.test",
        "--org",
        &globex,
        "--role",
        "viewer",
    ]);

    let orgs = cli.ok(&["org", "list"]);
    assert_eq!(orgs["orgs"].as_array().unwrap().len(), 2);
    assert_eq!(orgs["orgs"][0]["name"], "Acme");
    assert_eq!(orgs["orgs"][0]["members"], 2);
    let table = cli.run(&["org", "list"], "");
    assert!(table.success);
    let header = table.stdout.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("NAME") && header.contains("MEMBERS"));
    assert!(table.stdout.contains("Globex"));

    let renamed = cli.ok(&["org", "rename", "--org", &globex, "--name", "Globex Corp"]);
    assert_eq!(renamed["name"], "Globex Corp");
    let clash = cli.fails(&["org", "rename", "--org", &globex, "--name", "acme"], "");
    assert!(clash.contains("already exists"), "{clash}");

    let users = cli.ok(&["user", "list", "--org", &globex]);
    let users = users["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "bob@example.test");
    assert_eq!(users[0]["memberships"].as_array().unwrap().len(), 2);
    assert_eq!(users[0]["disabled"], false);
    let people = cli.run(&["user", "list"], "");
    assert!(people.stdout.contains("ana@example.test") && people.stdout.contains("Acme (admin)"));

    let key = cli.ok(&[
        "apikey",
        "create",
        "--email",
        "bob@example.test",
        "--org",
        &acme,
    ]);
    assert!(key["key"].is_string());

    assert_eq!(
        cli.ok(&["user", "disable", "--email", "BOB@example.test"])["disabled"],
        true
    );
    let listed = cli.ok(&["user", "list", "--org", &acme]);
    let bob = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "bob@example.test")
        .unwrap()
        .clone();
    assert_eq!(bob["disabled"], true);
    assert_eq!(
        cli.ok(&["user", "enable", "--email", "bob@example.test"])["disabled"],
        false
    );

    let last = cli.fails(
        &[
            "member",
            "remove",
            "--email",
            "ana@example.test",
            "--org",
            &acme,
        ],
        "",
    );
    assert!(last.contains("only admin"), "{last}");
    let removed = cli.ok(&[
        "member",
        "remove",
        "--email",
        "bob@example.test",
        "--org",
        &acme,
    ]);
    assert_eq!(removed["revoked_api_keys"], 1);
    let deleted = cli.ok(&["user", "delete", "--email", "bob@example.test"]);
    assert_eq!(deleted["deleted"], true);
    let gone = cli.fails(&["user", "disable", "--email", "bob@example.test"], "");
    assert!(gone.contains("no user"), "{gone}");
}

#[tokio::test]
async fn passwords_reset_links_and_unlocks_from_the_command_line() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]);
    let acme = cli.ok(&["org", "create", "--name", "Acme"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_user(&cli, "ana@example.test", &acme, "admin");

    let link = cli.ok(&["user", "reset-password", "--email", "ana@example.test"]);
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://mcp.example.test/reset?token="),
        "{url}"
    );
    let ttl = link["expires_at"].as_i64().unwrap() - portcullis::store::now();
    assert!((1700..=1800).contains(&ttl), "{ttl}");
    let human = cli.run(
        &["user", "reset-password", "--email", "ana@example.test"],
        "",
    );
    assert!(human.stdout.contains("30 minutes") && human.stdout.contains("/reset?token="));

    let short = cli.fails(
        &[
            "user",
            "set-password",
            "--email",
            "ana@example.test",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(short.contains("at least 12"), "{short}");
    let out = cli.run(
        &[
            "user",
            "set-password",
            "--email",
            "ana@example.test",
            "--password-stdin",
            "--json",
        ],
        "another long password\n",
    );
    assert!(out.success, "{}", out.stdout);
    assert!(!out.stdout.contains("another long password") && !out.stderr.contains("another long"));
    assert_eq!(
        cli.ok(&["user", "unlock", "--email", "ana@example.test"])["unlocked"],
        true
    );
}

#[tokio::test]
async fn admin_commands_never_create_an_empty_database() {
    let cli = Cli::new().await;
    let missing = cli.dir.path().join("nowhere.db");
    let url = format!("sqlite://{}", missing.display());
    let out = cli.run_with(&url, &["org", "list"], "");
    assert!(!out.success);
    assert!(
        out.stderr.contains("no database at") && out.stderr.contains("portcullis migrate"),
        "{}",
        out.stderr
    );
    let out = cli.run_with(&url, &["org", "create", "--name", "Acme"], "");
    assert!(!out.success && out.stderr.contains("no database at"));
    assert!(!missing.exists(), "no empty database was created");
    let out = cli.run_with("mysql://root@localhost/p", &["org", "list"], "");
    assert!(
        out.stderr.contains("\"mysql\" is not supported"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_subcommand_explains_itself_with_an_example() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&[]);
    for group in [
        "serve", "migrate", "org", "user", "member", "apikey", "client", "keys", "catalog",
    ] {
        assert!(top.contains(group), "{group} in the overview");
    }
    for leaf in [
        vec!["serve"],
        vec!["migrate"],
        vec!["org", "create"],
        vec!["org", "list"],
        vec!["org", "rename"],
        vec!["user", "create"],
        vec!["user", "add-to-org"],
        vec!["user", "list"],
        vec!["user", "disable"],
        vec!["user", "enable"],
        vec!["user", "delete"],
        vec!["user", "reset-password"],
        vec!["user", "set-password"],
        vec!["user", "unlock"],
        vec!["member", "remove"],
        vec!["apikey", "create"],
        vec!["apikey", "revoke"],
        vec!["apikey", "list"],
        vec!["client", "list"],
        vec!["client", "revoke"],
        vec!["keys", "rotate"],
        vec!["catalog", "check"],
    ] {
        let text = help(&leaf);
        assert!(text.contains("Example"), "{leaf:?} --help has an example");
        assert!(
            text.contains(&format!("portcullis {}", leaf.join(" "))),
            "{leaf:?}: {text}"
        );
    }
}
