//! Configuration that cannot silently point clients elsewhere (README
//! "Safe configuration"): `public_url` follows a loopback `listen` port,
//! a mismatch is warned about, and a `public_url` with a path is refused.

use portcullis::Config;

fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
    Config::load(
        None,
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn the_default_public_url_follows_a_loopback_listen_port() {
    let c = load(&[("PORTCULLIS_LISTEN", "127.0.0.1:9000")]).unwrap();
    assert_eq!(c.public_url, "http://localhost:9000");
    assert!(c.warnings.is_empty());
    let c = load(&[]).unwrap();
    assert_eq!(c.public_url, "http://localhost:8080");
    // Not loopback: the operator must say what clients see.
    let c = load(&[("PORTCULLIS_LISTEN", "0.0.0.0:9000")]).unwrap();
    assert_eq!(c.public_url, "http://localhost:8080");
}

#[test]
fn a_loopback_public_url_on_another_port_is_warned_about() {
    let c = load(&[
        ("PORTCULLIS_LISTEN", "127.0.0.1:9000"),
        ("PORTCULLIS_PUBLIC_URL", "http://localhost:8080"),
    ])
    .unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("8080") && c.warnings[0].contains("9000"));
    let c = load(&[
        ("PORTCULLIS_LISTEN", "127.0.0.1:9000"),
        ("PORTCULLIS_PUBLIC_URL", "https://mcp.example.com"),
    ])
    .unwrap();
    assert!(c.warnings.is_empty(), "a proxy in front is normal");
}

#[test]
fn a_public_url_with_a_path_is_refused() {
    for url in [
        "https://example.com/portcullis",
        "https://example.com/a/b/",
        "https://example.com/?x=1",
    ] {
        let e = load(&[("PORTCULLIS_PUBLIC_URL", url)]).unwrap_err();
        assert!(e.contains("root of its host"), "{url}: {e}");
    }
    assert_eq!(
        load(&[("PORTCULLIS_PUBLIC_URL", "https://example.com/")])
            .unwrap()
            .public_url,
        "https://example.com"
    );
}

#[test]
fn builtin_tools_are_validated_at_start() {
    let c = load(&[("PORTCULLIS_BUILTIN_TOOLS", "whoami, list_members")]).unwrap();
    assert_eq!(
        c.builtin_tools.as_deref(),
        Some(&["whoami".to_owned(), "list_members".to_owned()][..])
    );
    assert_eq!(load(&[]).unwrap().builtin_tools, None, "all by default");
    let e = load(&[("PORTCULLIS_BUILTIN_TOOLS", "whoami,who_are_you")]).unwrap_err();
    assert!(e.contains("\"who_are_you\"") && e.contains("whoami"), "{e}");
}
