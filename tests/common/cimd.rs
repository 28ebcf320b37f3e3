//! Client ID Metadata Documents served on loopback, as claude.ai and
//! chatgpt.com serve them on the public internet. The server under test
//! runs with the test-only `cimd_allow_loopback` switch.
#![allow(dead_code)]

use std::sync::Arc;

use axum::{Json, Router, routing::get};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves each `(path, document)` over http at `{base}{path}`, with
/// `client_id` set to that URL. Returns `base`.
pub async fn http_host(documents: Vec<(&'static str, Value)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut router = Router::new();
    for (path, mut doc) in documents {
        doc["client_id"] = Value::String(format!("{base}{path}"));
        router = router.route(
            path,
            get(move || async move { ([("cache-control", "max-age=60")], Json(doc)) }),
        );
    }
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// The same over https with a self-signed certificate for 127.0.0.1, for
/// clients that refuse an http metadata URL. One document at `path`;
/// returns its URL.
pub async fn https_document(path: &'static str, mut doc: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}{path}",
        listener.local_addr().unwrap().port()
    );
    doc["client_id"] = Value::String(url.clone());
    let body = doc.to_string();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let key =
        tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key.into())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let found = head
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|target| target == path);
                let response = if found {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .into()
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}
