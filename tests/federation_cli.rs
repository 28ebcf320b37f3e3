//! Org external ids from the command line (`org create --external-id`,
//! `org set-external-id`), run as the real binary like tests/cli.rs.

use std::{path::Path, process::Command};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn run(dir: &Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.join("p.db").display()),
        )
        .env("PORTCULLIS_KEYS_DIR", dir.join("keys"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    (out.status.success(), serde_json::from_str(&text).unwrap())
}

#[test]
fn an_operator_gives_orgs_the_ids_their_identity_provider_uses() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Administration commands never create a database; `migrate` does.
    let migrated = Command::new(BIN)
        .arg("migrate")
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.join("p.db").display()),
        )
        .env("PORTCULLIS_KEYS_DIR", dir.join("keys"))
        .status()
        .unwrap();
    assert!(migrated.success());
    let (ok, org) = run(
        dir,
        &["org", "create", "--name", "Eng", "--external-id", "eng"],
    );
    assert!(ok, "{org}");
    assert_eq!(org["external_id"], "eng");
    let id = org["id"].as_str().unwrap().to_owned();

    // External ids are unique: nothing is created for a taken one.
    let (ok, answer) = run(
        dir,
        &["org", "create", "--name", "Other", "--external-id", "eng"],
    );
    assert!(!ok, "{answer}");
    let (ok, plain) = run(dir, &["org", "create", "--name", "Ops"]);
    assert!(ok);
    let ops = plain["id"].as_str().unwrap().to_owned();
    let (ok, answer) = run(
        dir,
        &[
            "org",
            "set-external-id",
            "--org",
            &ops,
            "--external-id",
            "eng",
        ],
    );
    assert!(!ok, "{answer}");

    // Set later, renamed, cleared.
    let (ok, answer) = run(
        dir,
        &[
            "org",
            "set-external-id",
            "--org",
            &ops,
            "--external-id",
            "ops",
        ],
    );
    assert!(ok, "{answer}");
    assert_eq!(answer["external_id"], "ops");
    let (ok, answer) = run(
        dir,
        &["org", "set-external-id", "--org", &id, "--external-id", ""],
    );
    assert!(ok, "{answer}");
    assert_eq!(answer["external_id"], Value::Null);
    // Now free again.
    let (ok, answer) = run(
        dir,
        &[
            "org",
            "set-external-id",
            "--org",
            &ops,
            "--external-id",
            "eng",
        ],
    );
    assert!(ok, "{answer}");
    // An unknown org.
    let (ok, _) = run(
        dir,
        &[
            "org",
            "set-external-id",
            "--org",
            "00000000-0000-0000-0000-000000000000",
            "--external-id",
            "x",
        ],
    );
    assert!(!ok);
}
