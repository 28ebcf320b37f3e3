//! The catalog reloads on SIGHUP in a running `portcullis serve`, and a bad
//! file keeps the previous tools. Runs the real binary as an operator would.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn catalog(extra_tool: bool) -> String {
    let mut text = String::from(
        r#"
[[upstream]]
name = "crm"
base_url = "http://127.0.0.1:9/api"

[[tool]]
name = "get_contact"
description = "Get a contact."
upstream = "crm"
method = "GET"
path = "/contacts/{id}"
input_schema = { type = "object", properties = { id = { type = "string" } }, required = ["id"] }
"#,
    );
    if extra_tool {
        text.push_str(
            r#"
[[tool]]
name = "list_deals"
description = "List deals."
upstream = "crm"
method = "GET"
path = "/deals"
"#,
        );
    }
    text
}

fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--json")
        .arg("--config")
        .arg(dir.join("portcullis.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn tool_names(base: &str, key: &str, org: &str) -> Vec<String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("X-Organization-Id", org)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hangup(server: &Server) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sighup_reloads_the_catalog_and_a_bad_file_keeps_the_old_tools() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let catalog_path = dir.path().join("catalog.toml");
    std::fs::write(&catalog_path, catalog(false)).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\ndatabase_url = \"sqlite://{}\"\nkeys_dir = \"{}\"\ncatalog = \"{}\"\n",
            dir.path().join("p.db").display(),
            dir.path().join("keys").display(),
            catalog_path.display()
        ),
    )
    .unwrap();

    // Administration commands never create a database; `migrate` does.
    cli(dir.path(), &["migrate"], None);
    let org = cli(dir.path(), &["org", "create", "--name", "Acme"], None)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ops@example.test",
            "--org",
            &org,
            "--role",
            "member",
            "--password-stdin",
        ],
        Some("long enough password\n"),
    );
    let key = cli(
        dir.path(),
        &[
            "apikey",
            "create",
            "--email",
            "ops@example.test",
            "--org",
            &org,
        ],
        None,
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(dir.path().join("portcullis.toml"))
        .env("RUST_LOG", "portcullis=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let server = Server(child);
    until("the server to listen", || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let names = tool_names(&base, &key, &org).await;
    assert!(names.contains(&"get_contact".to_owned()) && !names.contains(&"list_deals".to_owned()));

    std::fs::write(&catalog_path, catalog(true)).unwrap();
    hangup(&server);
    until("the new tool to appear", || async {
        tool_names(&base, &key, &org)
            .await
            .contains(&"list_deals".to_owned())
    })
    .await;

    std::fs::write(&catalog_path, "[[tool]]\nname = \"broken\"\n").unwrap();
    hangup(&server);
    until("the rejected reload to be logged", || async {
        log.lock().unwrap().contains("not reloaded")
    })
    .await;
    assert!(
        log.lock().unwrap().contains("catalog.toml:"),
        "the log names the file and line"
    );
    let names = tool_names(&base, &key, &org).await;
    assert!(names.contains(&"get_contact".to_owned()) && names.contains(&"list_deals".to_owned()));
}
