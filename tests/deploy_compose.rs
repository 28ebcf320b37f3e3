//! `deploy/multi-instance/docker-compose.yml` (two instances behind nginx,
//! with PostgreSQL and Redis) cannot be started here: there is no container
//! engine in CI. This checks what can go wrong without one: the YAML parses,
//! every service has a healthcheck and starts after what it needs, both
//! instances are configured alike and share the database, Redis and keys,
//! the configuration they would read is valid Portcullis configuration, and
//! the proxy sends to both.

use std::{collections::BTreeMap, path::Path};

use portcullis::Config;
use yaml_rust2::{Yaml, YamlLoader};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/multi-instance");

fn compose() -> Yaml {
    let text = std::fs::read_to_string(Path::new(DIR).join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .remove(0)
}

fn environment(service: &Yaml) -> BTreeMap<String, String> {
    service["environment"]
        .as_hash()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(n) => n.to_string(),
                other => panic!("unexpected value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[test]
fn every_service_has_a_healthcheck_and_waits_for_what_it_needs() {
    let doc = compose();
    let services = doc["services"].as_hash().expect("services");
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    for expected in ["postgres", "redis", "portcullis-1", "portcullis-2", "proxy"] {
        assert!(names.contains(&expected), "no service {expected}");
    }
    for (name, service) in services {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_vec().is_some_and(|t| t.len() >= 2),
            "{name:?} has no healthcheck"
        );
    }
    let waits_for = |service: &str, dependency: &str| {
        assert_eq!(
            doc["services"][service]["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "{service} must wait for a healthy {dependency}"
        );
    };
    waits_for("portcullis-1", "postgres");
    waits_for("portcullis-1", "redis");
    // The second instance starts once the first has created the signing key.
    waits_for("portcullis-2", "portcullis-1");
    waits_for("proxy", "portcullis-1");
    waits_for("proxy", "portcullis-2");
    assert!(
        doc["services"]["portcullis-1"]["healthcheck"]["test"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|part| part.as_str().is_some_and(|s| s.contains("/readyz"))),
        "instances report ready through /readyz"
    );
}

#[test]
fn both_instances_share_database_redis_and_keys_and_read_valid_configuration() {
    let doc = compose();
    let one = &doc["services"]["portcullis-1"];
    let two = &doc["services"]["portcullis-2"];
    assert_eq!(environment(one), environment(two));
    assert_eq!(one["volumes"], two["volumes"]);
    let env = environment(one);
    assert!(env["PORTCULLIS_DATABASE_URL"].starts_with("postgres://"));
    assert!(env["PORTCULLIS_DATABASE_URL"].contains("@postgres:"));
    assert_eq!(env["PORTCULLIS_REDIS_URL"], "redis://redis:6379");
    let keys = &env["PORTCULLIS_KEYS_DIR"];
    assert!(
        one["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(&format!("keys:{keys}"))),
        "the keys directory is the shared volume"
    );

    // What an instance would load: the mounted file plus the environment
    // (with compose's `${VAR:-default}` resolved to its default).
    let file = Path::new(DIR).join("portcullis.toml");
    let vars = env
        .iter()
        .filter(|(k, _)| *k != "PORTCULLIS_CONFIG")
        .map(|(k, v)| {
            let v = match v.strip_prefix("${").and_then(|r| r.split_once(":-")) {
                Some((_, default)) => default.trim_end_matches('}').to_owned(),
                None => v.clone(),
            };
            (k.clone(), v)
        });
    let config = Config::load(Some(&file), vars).expect("valid configuration");
    assert!(
        config.ignored_env_vars.is_empty(),
        "{:?}",
        config.ignored_env_vars
    );
    assert_eq!(config.redis_url.as_deref(), Some("redis://redis:6379"));
    assert_eq!(config.listen.port(), 8080);
    assert!(!config.trusted_proxies.is_empty());
    assert!(
        config.metrics_listen.is_some_and(|a| a.port() == 9090),
        "metrics on their own port"
    );
}

#[test]
fn the_proxy_balances_over_both_instances_and_keeps_the_host() {
    let doc = compose();
    let proxy = &doc["services"]["proxy"];
    assert!(
        proxy["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with("./nginx.conf:"))),
    );
    assert_eq!(proxy["ports"][0].as_str(), Some("8080:8080"));
    let nginx = std::fs::read_to_string(Path::new(DIR).join("nginx.conf")).unwrap();
    for upstream in ["server portcullis-1:8080", "server portcullis-2:8080"] {
        assert!(nginx.contains(upstream), "nginx.conf lacks {upstream}");
    }
    assert!(nginx.contains("listen 8080;"));
    assert!(nginx.contains("proxy_set_header Host $http_host;"));
    assert!(nginx.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
}
